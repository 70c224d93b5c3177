# An example root: the module with a bucket name, the region, and who may assume each workload's role.
# terraform init && terraform apply, then point the workers at the outputs (deploy/README.md).

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "bucket_name" {
  type = string
}

variable "workload_principals" {
  description = "IAM principals (IRSA or pod-identity roles of the Kubernetes service accounts, people's SSO roles)"
  type = object({
    stream   = list(string)
    sink     = list(string)
    verifier = list(string)
    auditor  = list(string)
    admin    = list(string)
  })
}

variable "eks_oidc_provider" {
  description = "The EKS cluster's OIDC provider, for the service accounts of deploy/k8s (IRSA); null without EKS"
  type = object({
    arn       = string
    url       = string
    namespace = optional(string, "sealtrail")
  })
  default = null
}

module "sealtrail" {
  source              = "../../modules/sealtrail"
  bucket_name         = var.bucket_name
  prefix              = "trail/"
  chains              = 6
  workload_principals = var.workload_principals
  eks_oidc_provider   = var.eks_oidc_provider
  tags                = { "app" = "sealtrail" }
}

output "sealtrail" {
  value = module.sealtrail
}
