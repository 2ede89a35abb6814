"""The systems docjobs is measured against: Dramatiq's RedisBroker, pgqueuer, plain psycopg."""
