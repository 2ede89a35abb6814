"""Real HTTP servers for tests and the demo: the docjobs app on uvicorn, and a recording receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn

from docjobs_devkit.services import free_port


@contextmanager
def serve(app: Any, *, access_log: bool = True, port: int | None = None, **options: Any) -> Iterator[str]:
    """Serve an ASGI app on loopback, on ``port`` or a free one; yields its base URL.

    Args:
        options: More ``uvicorn.Config`` options (those ``docjobs web`` chose, say).
    """
    port = port or free_port()
    defaults = {"host": "127.0.0.1", "log_config": None, "lifespan": "on", "access_log": access_log}
    config = uvicorn.Config(app, **{**defaults, **options, "port": port})
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://{config.host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A threaded HTTP server that records every POST and answers ``status``.

    ``headers`` are added to every answer (a ``Location`` for redirects);
    ``on_request`` runs before answering (to change the world mid-delivery).
    """

    status: int = 202
    delay_seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    on_request: Callable[[Received], None] | None = None
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                received = Received(self.path, dict(self.headers.items()), body)
                receiver.requests.append(received)
                if receiver.on_request is not None:
                    receiver.on_request(received)
                time.sleep(receiver.delay_seconds)
                try:
                    self.send_response(receiver.status)
                    for name, value in receiver.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(receiver.body)))
                    self.end_headers()
                    self.wfile.write(receiver.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
