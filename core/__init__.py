"""sealtrail: the trail's format and vocabulary, and nothing else (an independent verifier needs only this).

    event       the audit event: fields, categories, validation (pydantic, the reference)
    encoding    RFC 8785 canonical JSON, timestamp text
    columns     the column table, declared once: names, Arrow types, JSON text, Event fields (everything else derives)
    flatten     an event as stored columns: flatten (through the model) and fast_columns (the stream's fast path)
    record      one sealed row: hashed_bytes, row_check, chain_hash, SealedRecord and its wire form
    chain       chain heads, recent event ids, seal_batch
    signing     Ed25519 signers, public keys, the signed head message, key rotation statements   kms (AWS KMS)
    publication public keys and rotation statements written locked into the store, before they are needed
    merkle      RFC 6962 tree hashes and inclusion proofs
    layout      object and digest names (a pure function of chain and seq)
    objects     the Parquet object format: schema, metadata (prev hash, format version), read, text columns
    contents    every row's canonical content and chain hash, column-wise (what verify, the sink and prove share)
    digest      the signed digest document over a chain's objects
    store       ObjectStore, the one storage seam (S3Store, DirectoryStore), and what it returns; versions: the sink's version
    index       a chain's object or digest by seq, without listing the bucket
    retention   the retention policy: which lock each object needs
    reasons     why an input is not an event: the one vocabulary of the SDK, the stream and the trail
    ocsf        the OCSF classification columns, and the one cache of them
    retry       calling again what may succeed later (Transient errors), for the sink, recovery, the relay and the spool
    config, errors, kafka (msk_iam: MSK's IAM tokens), topics, logs, printable, redact, metrics_server:
                settings and shared plumbing

The writing side (producers, stream, sinks) and the reading side (evidence) build
on this package; cli and stack sit on top (tests/unit/test_layering.py).
"""
