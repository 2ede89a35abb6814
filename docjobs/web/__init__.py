"""The web app: self-trigger endpoint, health, and (later) the admin board."""
