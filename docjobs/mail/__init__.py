"""Outgoing email: what each says (emails.py), how it looks (templates/), how it leaves (transport.py).

User text reaches headers only through headers.py; why an email cannot be delivered is errors.py.
"""
