# The signing keys: Ed25519 in KMS (ECC_NIST_EDWARDS25519, as core/kms.py expects), one for the stream's signed
# heads and one for the sink's digests, each usable for signing only by its own workload's role. Asymmetric
# keys cannot rotate automatically; rotation is a new key and `sealtrail` publishing its public key (docs/operations.md).

resource "aws_kms_key" "signing" {
  for_each = toset(["stream", "sink"])
  #checkov:skip=CKV_AWS_7:KMS does not rotate asymmetric keys; sealtrail rotates by a new key whose public half it publishes

  description              = "${var.name}: Ed25519 signing key of the ${each.key}"
  customer_master_key_spec = "ECC_NIST_EDWARDS25519"
  key_usage                = "SIGN_VERIFY"
  deletion_window_in_days  = var.kms_deletion_window_days
  policy                   = data.aws_iam_policy_document.signing_key[each.key].json
  tags                     = var.tags
}

resource "aws_kms_alias" "signing" {
  for_each      = aws_kms_key.signing
  name          = "alias/${var.name}-${each.key}-signing"
  target_key_id = each.value.key_id
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

# Key policies: the account administers the keys (so IAM policies apply and a lost role is not a lost key);
# only the workload's role may sign, everyone in the account may read the public key.
data "aws_iam_policy_document" "signing_key" {
  for_each = toset(["stream", "sink"])
  #checkov:skip=CKV_AWS_111:a key policy's Resource "*" is the key itself; the account root administers it so IAM policies apply
  #checkov:skip=CKV_AWS_356:a key policy's Resource "*" is the key itself, there is nothing narrower to name
  #checkov:skip=CKV_AWS_109:a key policy's Resource "*" is the key itself; only the account's own principals are named

  source_policy_documents = [data.aws_iam_policy_document.bucket_key.json] # the account administers, as for every key
  statement {
    sid       = "OnlyTheWorkloadSigns"
    effect    = "Deny"
    actions   = ["kms:Sign"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "ArnNotEquals"
      variable = "aws:PrincipalArn"
      values   = [aws_iam_role.workload[each.key].arn]
    }
  }
}

data "aws_iam_policy_document" "bucket_key" {
  #checkov:skip=CKV_AWS_111:a key policy's Resource "*" is the key itself; the account root administers it so IAM policies apply
  #checkov:skip=CKV_AWS_356:a key policy's Resource "*" is the key itself, there is nothing narrower to name
  #checkov:skip=CKV_AWS_109:a key policy's Resource "*" is the key itself; only the account's own principals are named
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}
