"""A TCP proxy that can be cut, in front of one or more copies of the web app.

Senders (and, on inngest, the Inngest emulator) reach the web app through it.
While it is cut, every connection is closed as soon as it is accepted, as a
crashed or firewalled endpoint would answer. With several targets it spreads
connections over them in turn and, like a load balancer, passes over one that
refuses the connection (a copy being restarted).
"""

from __future__ import annotations

import socket
import threading

from docjobs_devkit.services import free_port

BUFFER = 65536


class CuttableProxy:
    """Forwards ``127.0.0.1:<port>`` to the ``target_ports`` until :meth:`cut`.

    Args:
        target_ports: Where the copies of the web app listen.
    """

    def __init__(self, *target_ports: int) -> None:
        self.targets = list(target_ports)
        self.port = free_port()
        self.reachable = threading.Event()
        self.reachable.set()
        self.refused = 0
        self._turn = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._accept, name="chaos-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CuttableProxy:
        self._thread.start()
        return self

    def add(self, port: int) -> None:
        with self._lock:
            self.targets.append(port)

    def remove(self, port: int) -> None:
        with self._lock:
            if port in self.targets:
                self.targets.remove(port)

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
            upstream = self._connect()
            if upstream is None:
                client.close()
                continue
            for end in (client, upstream):  # no Nagle delay on what is relayed in pieces
                end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def _connect(self) -> socket.socket | None:
        """A connection to the next target that takes one, or None when none does."""
        with self._lock:
            self._turn += 1
            first = self._turn % max(len(self.targets), 1)
            targets = self.targets[first:] + self.targets[:first]
        for port in targets:
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                continue
            upstream.settimeout(None)  # the timeout was for connecting: an answer may take long
            return upstream
        return None


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
