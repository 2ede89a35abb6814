"""Every setting's default, named with its unit; :mod:`docjobs.settings` reads them."""

from __future__ import annotations

DEFAULT_WEBAPP_URL = "http://localhost:3000"
DEFAULT_PORT = 3000
DEFAULT_REDIS_PREFIX = "documenso"
DEFAULT_BULLMQ_CONCURRENCY = 10
DEFAULT_INNGEST_APP_ID = "documenso-app"
DEFAULT_CONCURRENCY = 8
DEFAULT_POLL_INTERVAL_SECONDS = 1.0
DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_MIN_BACKOFF_SECONDS = 1.0
DEFAULT_MAX_BACKOFF_SECONDS = 3600.0
DEFAULT_POOL_SIZE = 10
DEFAULT_RETENTION_DAYS = 30.0
DEFAULT_DATA_DIR = ".docjobs"
DEFAULT_SMTP_HOST = "localhost"
DEFAULT_SMTP_PORT = 587
DEFAULT_SMTP_FROM_NAME = "Documenso"
DEFAULT_SMTP_FROM_ADDRESS = "noreply@documenso.com"
#: The largest request body any endpoint reads; bigger ones get 413 while they arrive.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
#: How long a request's head, and then its body, may take to arrive; later ones are refused.
DEFAULT_READ_TIMEOUT_SECONDS = 10.0
#: The largest job payload (its JSON); bigger ones are refused at send.
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024

#: Where the app serves Inngest, under the base path, unless INNGEST_SERVE_PATH says otherwise.
INNGEST_SERVE_PATH = "/api/jobs"
