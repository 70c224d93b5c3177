"""The `sealtrail` command: one module per command family; main maps errors to messages and exit codes once."""
