# The trail's topics on an MSK cluster with IAM authentication, by Terraform (the alternative is
# `sealtrail topics init` with the same settings). Run it as a principal with kafka-cluster:CreateTopic,
# AlterTopic and DescribeTopic* on the cluster's topics.

terraform {
  required_version = ">= 1.6"
  required_providers {
    kafka = {
      source  = "Mongey/kafka"
      version = ">= 0.7"
    }
  }
}

variable "bootstrap_brokers_sasl_iam" {
  description = "The cluster's IAM bootstrap brokers (aws kafka get-bootstrap-brokers), host:9098 each"
  type        = list(string)
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

provider "kafka" {
  bootstrap_servers = var.bootstrap_brokers_sasl_iam
  tls_enabled       = true
  sasl_mechanism    = "aws-iam"
  sasl_aws_region   = var.region
}

module "topics" {
  source = "../../modules/sealtrail-topics"
}

output "topics" {
  value = module.topics.topics
}
