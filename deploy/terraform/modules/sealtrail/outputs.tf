output "bucket" {
  description = "The audit bucket (SEALTRAIL_S3__BUCKET)"
  value       = aws_s3_bucket.audit.bucket
}

output "prefix" {
  description = "The trail prefix (SEALTRAIL_S3__PREFIX)"
  value       = var.prefix
}

output "role_arns" {
  description = "One role per workload: stream, sink, verifier, auditor, admin"
  value       = { for k, r in aws_iam_role.workload : k => r.arn }
}

output "signing_key_arns" {
  description = "SEALTRAIL_KEYS__KMS_KEY_ID of the stream and of the sink"
  value       = { for k, key in aws_kms_key.signing : k => key.arn }
}

output "athena_workgroup" {
  value = aws_athena_workgroup.trail.name
}

output "glue_database" {
  value = aws_glue_catalog_database.trail.name
}
