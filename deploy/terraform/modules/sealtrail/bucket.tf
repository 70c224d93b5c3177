# The audit bucket: versioned, Object Lock in the policy's mode with its default retention, SSE-KMS with a
# customer-managed key, no public access, TLS only, and sealtrail's lifecycle rules. The retention values and
# the rules come from generated.tf.json (`sealtrail bucket terraform`), the same values `sealtrail bucket init`
# writes, so `sealtrail bucket init --check` and `sealtrail doctor` find nothing to change.

resource "aws_kms_key" "bucket" {
  description             = "${var.name}: encryption of the audit bucket"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.bucket_key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "bucket" {
  name          = "alias/${var.name}-bucket"
  target_key_id = aws_kms_key.bucket.key_id
}

resource "aws_s3_bucket" "audit" {
  #checkov:skip=CKV_AWS_144:cross-region replication copies objects without their retention unless set up per rule; a second region is the platform's choice, made with replication of Object Lock settings
  #checkov:skip=CKV2_AWS_62:nothing consumes bucket events; the sink's digests and verify are the change record
  bucket              = var.bucket_name
  object_lock_enabled = true
  tags                = var.tags
}

resource "aws_s3_bucket_versioning" "audit" {
  bucket = aws_s3_bucket.audit.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "audit" {
  bucket = aws_s3_bucket.audit.id
  rule {
    default_retention {
      mode  = local.sealtrail_default_retention.mode
      days  = local.sealtrail_default_retention.days
      years = local.sealtrail_default_retention.years
    }
  }
  depends_on = [aws_s3_bucket_versioning.audit]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "audit" {
  bucket = aws_s3_bucket.audit.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.bucket.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "audit" {
  bucket                  = aws_s3_bucket.audit.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "audit" {
  bucket = aws_s3_bucket.audit.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_logging" "audit" {
  count         = var.access_log_bucket == "" ? 0 : 1
  bucket        = aws_s3_bucket.audit.id
  target_bucket = var.access_log_bucket
  target_prefix = "s3/${var.bucket_name}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "audit" {
  #checkov:skip=CKV_AWS_300:the data rule aborts incomplete uploads after 7 days; digests, keys and delete markers are never multipart
  bucket = aws_s3_bucket.audit.id

  dynamic "rule" {
    for_each = local.sealtrail_lifecycle_rules
    content {
      id     = rule.value.id # generated.tf.json's strings are templates: ${var.prefix} is already filled in
      status = "Enabled"
      filter {
        prefix = rule.value.prefix
      }
      dynamic "expiration" {
        for_each = rule.value.expiration_days != null || rule.value.expired_object_delete_marker != null ? [1] : []
        content {
          days                         = rule.value.expiration_days
          expired_object_delete_marker = rule.value.expired_object_delete_marker
        }
      }
      dynamic "noncurrent_version_expiration" {
        for_each = rule.value.noncurrent_days == null ? [] : [rule.value.noncurrent_days]
        content {
          noncurrent_days = noncurrent_version_expiration.value
        }
      }
      dynamic "abort_incomplete_multipart_upload" {
        for_each = rule.value.abort_incomplete_upload_days == null ? [] : [rule.value.abort_incomplete_upload_days]
        content {
          days_after_initiation = abort_incomplete_multipart_upload.value
        }
      }
      dynamic "transition" {
        for_each = rule.value.transitions
        content {
          days          = transition.value.days
          storage_class = transition.value.storage_class
        }
      }
    }
  }
  depends_on = [aws_s3_bucket_versioning.audit]
}

resource "aws_s3_bucket_policy" "audit" {
  bucket     = aws_s3_bucket.audit.id
  policy     = templatefile("${path.module}/policies/bucket.json.tftpl", local.policy_values)
  depends_on = [aws_s3_bucket_public_access_block.audit]
}
