"""A TCP proxy that can be cut: the fault runs' "self-trigger endpoint unreachable".

Senders reach the web app through it; while it is cut, every connection is closed
as soon as it is accepted, as a crashed or firewalled endpoint would answer.
"""

from __future__ import annotations

import socket
import threading

from docjobs.testing.services import free_port

BUFFER = 65536


class CuttableProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_port`` until :meth:`cut`.

    Args:
        target_port: Where the web app listens.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.reachable = threading.Event()
        self.reachable.set()
        self.refused = 0
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._accept, name="chaos-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CuttableProxy:
        self._thread.start()
        return self

    def cut(self) -> None:
        self.reachable.clear()

    def mend(self) -> None:
        self.reachable.set()

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            if not self.reachable.is_set():
                self.refused += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(BUFFER):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
