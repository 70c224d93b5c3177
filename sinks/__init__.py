"""The sink worker: audit.chained -> Parquet objects and signed digests, Object-Locked in S3.

    worker      the consume loop: buffer, cut objects, PUT them locked, write digests, then commit offsets
    buffer      per-chain buffers and the decision of what to flush (pure)
    s3          S3Store, the only module that speaks boto3 for the trail: every S3 error mapped here, once
    bucket      the bucket's settings from the retention policy; legal holds
    metrics     Prometheus metrics
    athena      Athena tables generated from the Parquet schema
"""
