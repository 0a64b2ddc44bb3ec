"""`healthpay notify`: the consumer group that turns events into SMS (docs/notifications.md)."""
