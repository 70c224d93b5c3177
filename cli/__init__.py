"""The `sealtrail` command: one module per command family; main maps errors to messages and exit codes once.

    main            the group, its global flags, and the one place errors become messages and exit codes
    commands_*      one family each: stack, workers, producers, topics, bucket, evidence, export, report, serve, doctor
    doctor          the preflight's checks (topics, bucket locks, keys, clocks, anchors): verdicts over what it reads
    progress        progress on a terminal, plain lines otherwise
"""
