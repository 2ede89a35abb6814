"""The bullmq provider: Dramatiq's Redis broker with a doorbell, batched acks and a keeper."""
