"""Webhooks: events, the document payload, the SSRF guard, delivery and fan-out."""
