"""Outgoing email: what each says (emails.py), how it looks (templates/), how it leaves (transport.py)."""
