"""HTTP plumbing shared by the simulators: :class:`LoopbackSimulator` runs a
:class:`LoopbackHttpServer` (127.0.0.1, connections tracked) in a thread;
:class:`SimulatorRequestHandler` reads a request's body, answers it or drops the
connection, and leaves the answer itself to its subclass."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from engine.domain.errors import ConflictError

HOST = "127.0.0.1"
REUSE_ADDRESS = os.name != "nt"
"""Restart on a port at once (POSIX); on Windows the option would let two servers share
a port, so a port in use would not be reported."""

S = TypeVar("S")


class SimulatorPortError(ConflictError):
    """Signals that the simulator's port cannot be listened on (in use, not allowed)."""

    def __init__(self, port: int, reason: str) -> None:
        self.port = port
        self.reason = reason
        super().__init__(self.explained("port"))

    def explained(self, option: str) -> str:
        """The message, asking for another ``option``."""
        return (f"port {self.port} on {HOST} {self.reason}; choose another {option} "
                "(0: any free port)")


class SimulatorInputError(ValueError):
    """Signals seed data, a generation request or fault settings the simulator cannot
    use; the message is one line naming the problem."""


class LoopbackHttpServer(ThreadingHTTPServer, Generic[S]):
    """Serves ``handler`` on ``port`` (0: any free port) of 127.0.0.1 for ``simulator``,
    one daemon thread per connection.

    :raises SimulatorPortError: if the port is in use or cannot be listened on.
    """

    daemon_threads = True
    allow_reuse_address = REUSE_ADDRESS
    request_queue_size = 128

    def __init__(self, simulator: S, port: int,
                 handler: type[SimulatorRequestHandler]) -> None:
        self.simulator = simulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        try:
            super().__init__((HOST, port), handler)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise SimulatorPortError(port, "is in use") from None
            reason = error.strerror or str(error)
            raise SimulatorPortError(port, f"cannot be listened on ({reason})") from None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed, timed out) is not an error of the simulator;
        anything else is printed as usual."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """End the kept-alive connections, so a stopped simulator answers nothing."""
        with self.connections_lock:
            connections, self.connections = self.connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class SimulatorRequestHandler(BaseHTTPRequestHandler, ABC):
    """HTTP/1.1, quiet, for a :class:`LoopbackHttpServer`: GET, POST, PUT and DELETE go
    to :meth:`_dispatch` with a body of at most ``max_body`` bytes sent with a
    Content-Length; a body refused is answered by :meth:`_refuse_body` and closes the
    connection; a body cut short closes it without an answer."""

    server: LoopbackHttpServer[Any]
    protocol_version = "HTTP/1.1"
    max_body: int

    def setup(self) -> None:
        super().setup()
        # headers and body are two writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold every answer about 40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the simulator prints nothing per request."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        target = urlsplit(self.path)
        segments = tuple(unquote(part) for part in target.path.split("/") if part)
        query = {name: values[-1]
                 for name, values in parse_qs(target.query, keep_blank_values=True).items()}
        raw = self._body()
        if raw is not None:
            self._dispatch(method, target.path, segments, query, raw)

    @abstractmethod
    def _dispatch(self, method: str, path: str, segments: tuple[str, ...],
                  query: dict[str, str], raw: bytes) -> None:
        """Answer the request (``path`` split and unquoted into ``segments``; ``query``
        keeps the last value of each name) or drop its connection."""

    @abstractmethod
    def _refuse_body(self, status: int, detail: str) -> None:
        """Answer a body refused: 411 (not sent with a Content-Length), 400 (the
        Content-Length is not a number) or 413 (over ``max_body``)."""

    def _body(self) -> bytes | None:
        """The request's body; None once it was refused or the client went away."""
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            refusal = (411, "send the body with a Content-Length")
        elif length is None:
            return b""
        elif not length.strip().isdigit():
            refusal = (400, "Content-Length is not a number")
        elif int(length) > self.max_body:
            refusal = (413, f"the body is over {self.max_body} bytes")
        else:
            raw = self.rfile.read(int(length))
            if len(raw) == int(length):
                return raw
            self.close_connection = True  # the client went away mid-body: nothing is done
            return None
        self.close_connection = True
        self._refuse_body(*refusal)
        return None

    def _respond(self, status: int, content_type: str | None, body: bytes,
                 headers: Iterable[tuple[str, str]]) -> None:
        """Send one answer; without ``content_type``, no Content-Type header."""
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _drop(self) -> None:
        """Close the connection without an answer (a reset: RST, not FIN, where the
        platform allows it)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()


class LoopbackSimulator(ABC):
    """A simulator served on ``port`` (0: any free port) of 127.0.0.1 by the server
    :meth:`_server` makes; use it as a context manager, or ``start`` and ``stop``."""

    _label: ClassVar[str]
    """Names it in messages (``"partner simulator"``) and, hyphenated, its thread."""

    def __init__(self, port: int) -> None:
        self._requested = port
        self._http: LoopbackHttpServer[Any] | None = None
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _server(self, port: int) -> LoopbackHttpServer[Any]:
        """A server answering for this simulator on ``port``."""

    @property
    def port(self) -> int:
        """The port listened on (the one asked for before ``start``)."""
        return self._http.server_address[1] if self._http else self._requested

    def start(self) -> None:
        """Listen; return once requests are answered.

        :raises SimulatorPortError: if the port is in use or not allowed.
        """
        if self._http is not None:
            raise RuntimeError(f"the {self._label} is already running")
        self._http = self._server(self._requested)
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,),
                                        name=self._label.lower().replace(" ", "-"),
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (connections in progress are dropped)."""
        http, thread, self._http, self._thread = self._http, self._thread, None, None
        if http is not None:
            http.shutdown()
            http.close_connections()
            http.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
