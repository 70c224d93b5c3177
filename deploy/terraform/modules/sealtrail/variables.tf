variable "name" {
  description = "Prefix of every resource's name (bucket, keys, roles, Glue database)"
  type        = string
  default     = "sealtrail"
}

variable "bucket_name" {
  description = "The audit bucket (globally unique); Object Lock is enabled at creation and cannot be added later"
  type        = string
}

variable "prefix" {
  description = "The trail's key prefix in the bucket (settings s3.prefix); ends with a slash"
  type        = string
  default     = "trail/"
  validation {
    condition     = can(regex("^([A-Za-z0-9._-]+/)*$", var.prefix))
    error_message = "prefix is empty or ends with a slash, like trail/ (the same value as SEALTRAIL_S3__PREFIX)."
  }
}

variable "chains" {
  description = "Partitions of audit.events (settings kafka.partitions): one chain each, projected in Athena"
  type        = number
  default     = 6
}

variable "workload_principals" {
  description = <<-EOT
    Who may assume each role, by workload: stream, sink, verifier, auditor, admin. Each value is a list of
    IAM principal ARNs (an EKS pod identity or IRSA role, a CI role, a person's SSO role). The module adds
    no principal of its own: a role nobody is named for can be assumed by nobody.
  EOT
  type = object({
    stream   = list(string)
    sink     = list(string)
    verifier = list(string)
    auditor  = list(string)
    admin    = list(string)
  })
}

variable "eks_oidc_provider" {
  description = <<-EOT
    The EKS cluster's OIDC provider (IRSA), or null. When set, the service accounts of deploy/k8s in
    `namespace` take their roles directly: sealtrail-stream the stream's, sealtrail-sink the sink's,
    sealtrail-serve the auditor's. `url` is the issuer without https:// (oidc.eks.REGION.amazonaws.com/id/X).
  EOT
  type = object({
    arn       = string
    url       = string
    namespace = optional(string, "sealtrail")
  })
  default = null
}

variable "athena_bytes_scanned_cutoff" {
  description = "Largest scan of one Athena query in the workgroup, in bytes (at least 10 MB)"
  type        = number
  default     = 107374182400 # 100 GiB
}

variable "kms_deletion_window_days" {
  description = "Waiting period before a scheduled key deletion takes effect (7 to 30 days)"
  type        = number
  default     = 30
}

variable "access_log_bucket" {
  description = "Bucket for S3 server access logs of the audit bucket (empty: none; CloudTrail data events are the usual record)"
  type        = string
  default     = ""
}

variable "msk_cluster_arn" {
  description = "MSK cluster with IAM authentication (empty: the Kafka is elsewhere, e.g. Confluent with SASL credentials)"
  type        = string
  default     = ""
}

variable "tags" {
  description = "Tags on every resource"
  type        = map(string)
  default     = {}
}
