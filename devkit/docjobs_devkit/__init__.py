"""docjobs-devkit: what docjobs' tests, benchmarks and demo start, kept out of the docjobs wheel.

Real servers on free loopback ports (PostgreSQL, Redis, SMTP, HTTP, a time-stamping
authority), an Inngest server emulator with fault injection (``inngest``), sample PDFs,
and ``docjobs demo`` (``demo``). For unit-testing your own jobs without any server, use
``docjobs.testing.stub_runtime()``, which ships with docjobs.
"""

from docjobs_devkit.services import FAST_SETTINGS, PostgresServer, RedisServer

__all__ = ["FAST_SETTINGS", "PostgresServer", "RedisServer"]
