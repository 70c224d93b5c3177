# One role per workload, each with only what its commands do (docs in deploy/README.md):
#   stream   Kafka; the signing key of heads; reads the trail to recover its heads; publishes its public key under keys/
#   sink     Kafka; PutObject with retention under the trail prefix; the signing key of digests; never delete or unlock
#   verifier read only: objects, versions, locks, holds, bucket settings, public keys (`sealtrail verify`, `doctor`)
#   auditor  the verifier's reads plus the Glue catalog and the workgroup's query results; writes nothing
#   admin    legal holds and `sealtrail bucket init`; never delete or bypass a retention
# The policy documents are JSON templates in policies/, linted with parliament by tests/unit/test_terraform.py.

locals {
  workloads = toset(["stream", "sink", "verifier", "auditor", "admin"])
  # The service accounts of deploy/k8s/base, by the role they take (serve reads as the auditor does).
  service_accounts = { stream = "sealtrail-stream", sink = "sealtrail-sink", auditor = "sealtrail-serve" }
  policy_values = {
    bucket_arn        = aws_s3_bucket.audit.arn
    prefix            = var.prefix
    data              = local.sealtrail_layout.data
    digests           = local.sealtrail_layout.digests
    keys              = local.sealtrail_layout.keys
    bucket_key_arn    = aws_kms_key.bucket.arn
    stream_key_arn    = aws_kms_key.signing["stream"].arn
    sink_key_arn      = aws_kms_key.signing["sink"].arn
    glue_catalog_arn  = "arn:${data.aws_partition.current.partition}:glue:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:catalog"
    glue_database_arn = aws_glue_catalog_database.trail.arn
    glue_tables_arn   = "arn:${data.aws_partition.current.partition}:glue:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:table/${aws_glue_catalog_database.trail.name}/*"
    workgroup_arn     = aws_athena_workgroup.trail.arn
    cluster_arn       = var.msk_cluster_arn
    topic_arn_prefix  = replace(var.msk_cluster_arn, ":cluster/", ":topic/")
    group_arn_prefix  = replace(var.msk_cluster_arn, ":cluster/", ":group/")
  }
}

data "aws_region" "current" {}

data "aws_iam_policy_document" "assume" {
  for_each = local.workloads
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "AWS"
      identifiers = var.workload_principals[each.key]
    }
  }
  # IRSA: the Kubernetes service account of deploy/k8s that runs this workload takes the role directly.
  dynamic "statement" {
    for_each = var.eks_oidc_provider != null && contains(keys(local.service_accounts), each.key) ? [each.key] : []
    content {
      actions = ["sts:AssumeRoleWithWebIdentity"]
      principals {
        type        = "Federated"
        identifiers = [var.eks_oidc_provider.arn]
      }
      condition {
        test     = "StringEquals"
        variable = "${var.eks_oidc_provider.url}:sub"
        values   = ["system:serviceaccount:${var.eks_oidc_provider.namespace}:${local.service_accounts[statement.value]}"]
      }
      condition {
        test     = "StringEquals"
        variable = "${var.eks_oidc_provider.url}:aud"
        values   = ["sts.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role" "workload" {
  for_each             = local.workloads
  name                 = "${var.name}-${each.key}"
  assume_role_policy   = data.aws_iam_policy_document.assume[each.key].json
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_iam_role_policy" "workload" {
  for_each = local.workloads
  name     = "${var.name}-${each.key}"
  role     = aws_iam_role.workload[each.key].id
  policy   = templatefile("${path.module}/policies/${each.key}.json.tftpl", local.policy_values)
}

resource "aws_iam_role_policy" "kafka" {
  for_each = var.msk_cluster_arn == "" ? toset([]) : toset(["stream", "sink"])
  name     = "${var.name}-${each.key}-kafka"
  role     = aws_iam_role.workload[each.key].id
  policy   = templatefile("${path.module}/policies/kafka-${each.key}.json.tftpl", local.policy_values)
}
