output "topics" {
  description = "The topic of each role (SEALTRAIL_KAFKA__TOPICS__EVENTS, __CHAINED, __DLQ, __QUARANTINE)"
  value       = { for role, topic in kafka_topic.trail : role => topic.name }
}
