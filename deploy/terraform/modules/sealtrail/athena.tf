# Athena over the trail in place: a Glue database with the events table (partition projection on dt and chain,
# so no crawler), and a workgroup whose results go to their own encrypted bucket, with a per-query scan limit.
# The columns come from generated.tf.json, the Parquet schema itself (the same as deploy/athena/events.sql).

resource "aws_glue_catalog_database" "trail" {
  name = replace("${var.name}_trail", "-", "_")
}

resource "aws_glue_catalog_table" "events" {
  name          = "sealtrail_events"
  database_name = aws_glue_catalog_database.trail.name
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                  = "TRUE"
    "parquet.compression"       = "ZSTD"
    "projection.enabled"        = "true"
    "projection.dt.type"        = "date"
    "projection.dt.format"      = "yyyy-MM-dd"
    "projection.dt.range"       = "2026-01-01,NOW"
    "projection.chain.type"     = "enum"
    "projection.chain.values"   = join(",", [for i in range(var.chains) : format("p%03d", i)])
    "storage.location.template" = "s3://${aws_s3_bucket.audit.bucket}/${var.prefix}${local.sealtrail_layout.data}dt=$${dt}/chain=$${chain}/"
  }

  partition_keys {
    name = "dt"
    type = "string"
  }
  partition_keys {
    name = "chain"
    type = "string"
  }

  storage_descriptor {
    location      = "s3://${aws_s3_bucket.audit.bucket}/${var.prefix}${local.sealtrail_layout.data}"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }
    dynamic "columns" {
      for_each = local.sealtrail_event_columns
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

resource "aws_s3_bucket" "results" {
  #checkov:skip=CKV_AWS_18:query results are transient (expired after 30 days); access to them is logged by CloudTrail's Athena events
  #checkov:skip=CKV_AWS_144:query results are not replicated; they can be run again
  #checkov:skip=CKV_AWS_145:results are encrypted with SSE-KMS by the workgroup itself (enforced configuration)
  #checkov:skip=CKV2_AWS_62:nothing consumes events of the results bucket
  #checkov:skip=CKV_AWS_21:results are written once per query; versions of them protect nothing
  bucket = "${var.bucket_name}-athena-results"
  tags   = var.tags
}

resource "aws_s3_bucket_public_access_block" "results" {
  bucket                  = aws_s3_bucket.results.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "results" {
  bucket = aws_s3_bucket.results.id
  rule {
    id     = "expire-query-results"
    status = "Enabled"
    filter {
      prefix = ""
    }
    expiration {
      days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_athena_workgroup" "trail" {
  name = "${var.name}-trail"
  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff
    result_configuration {
      output_location = "s3://${aws_s3_bucket.results.bucket}/results/"
      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.bucket.arn
      }
    }
  }
  tags = var.tags
}
