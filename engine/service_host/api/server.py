"""The HTTP server of the host: uvicorn on a thread of its own, on a socket bound before
the host session begins (so the session records the real URL, also for port 0)."""

from __future__ import annotations

import logging
import socket
import threading
from typing import TYPE_CHECKING

import uvicorn

from engine.domain.errors import ConflictError

if TYPE_CHECKING:
    from fastapi import FastAPI

STOP_SECONDS = 10.0


class ApiBindError(ConflictError):
    """Signals that the API's address cannot be bound (in use, or not this machine's)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one).

    :raises ApiBindError: if it cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on accepted sockets whose proto says
    # TCP; without it Nagle holds the body (written after the headers) for the client's ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise ApiBindError(
            f"cannot serve the API on {host}:{port} ({error.strerror}); set SOA_API_BIND "
            "to a free HOST:PORT (port 0 picks one) or to an empty value for no API"
        ) from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """The URL clients use for the socket (the machine's name when bound to all)."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class ApiServer:
    """Serves ``app`` on ``sock`` from :meth:`start` until :meth:`stop`."""

    def __init__(self, app: FastAPI, sock: socket.socket, logger: logging.Logger) -> None:
        self.sock = sock
        self.url = url_of(sock)
        self._logger = logger
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=5, server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="soa-api", daemon=True)

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self.sock])
        except Exception:  # the API must never take the host down with it
            self._logger.exception("the HTTP API stopped")

    def start(self) -> None:
        self._thread.start()
        self._logger.info("HTTP API and dashboard at %s", self.url)

    def stop(self) -> None:
        """Stop serving (also when never started: the socket is closed)."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(STOP_SECONDS)
        self.sock.close()
