"""The stream worker: audit.events -> validated, sealed, signed records on audit.chained.

    app         the Faust worker: lifecycle, signals, supervision of the sealing loop
    worker      SealWorker, the hot loop: consume in bulk, validate, seal_batch, publish, commit
    validate    raw bytes -> flat columns, or a rejection with its reason
    recovery    where each chain stands, from the bucket's signed heads and audit.chained's tail
    metrics     Prometheus metrics
"""
