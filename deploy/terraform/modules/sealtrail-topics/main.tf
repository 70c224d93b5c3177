# The four Kafka topics of one trail, as `sealtrail topics check` wants them (optional: `sealtrail topics init`
# creates the same topics without Terraform). Partitions, replicas and every config come from
# generated.tf.json, which `sealtrail topics terraform` writes from the Kafka settings in effect; the tests
# fail when it drifts. The provider (Mongey/kafka) is configured by the caller, for MSK with IAM or SCRAM
# (deploy/terraform/examples/msk-topics).
#
# Kafka can add partitions to a topic but never remove them, and audit.chained must have at least as many
# as audit.events: raise both together, and never lower one.

resource "kafka_topic" "trail" {
  for_each           = local.sealtrail_topics
  name               = each.value.name
  partitions         = each.value.partitions
  replication_factor = each.value.replication_factor
  config             = each.value.config
}
