"""The auditor's side: what the trail proves, read from the bucket or an exported bundle.

    check       verify_evidence, the one entry point every command calls (bucket or bundle, anchor, window, keys)
    walk        verify_store: lists and fetches the store, schedules the checks (threads, process pool), collects a Report
    checks/     the pure checks: rows (one object alone), chain (ChainWalk), listing (plan, windows), locks, digests
    keys        the public keys a run trusts and the bucket's record of them (publication, rotations)
    scope       what a bundle's verification covers, from the signed data alone
    findings    what verification found, as values (Finding, FindingKind, Report)
    key_history which keys signed a chain, and when
    anchor      each chain's latest signed digest, kept outside the bucket
    bundle      an exported bundle read through the store's seam (DirectoryStore)
    export      evidence bundles: a date range copied out, verified, with a manifest
    manifest    the bundle's manifest
    proof/      inclusion proofs for one event: build (reads the store), check (pure)
    query       DuckDB over the trail in place
    workers     the process pool verify hashes rows in
    api/        `sealtrail serve`, the admin query API
    report/     the SOC 2 evidence page
"""
