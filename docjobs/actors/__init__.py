"""docjobs' own job types. Importing this package declares every actor.

The real job types (emails, sealing, webhooks, maintenance) arrive in their own
modules; ``docjobs.demo.actors`` holds the demo jobs.
"""
