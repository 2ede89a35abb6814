"""Brokers, one per provider. Each imports its client library only inside its own module."""
