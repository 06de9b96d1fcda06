"""The KSeF simulator's HTTP side: :class:`KsefSimulator` serves :class:`KsefApi` under
``/v2`` on 127.0.0.1 with :class:`KsefFaults`, and its ``/_sim`` control endpoints."""

from __future__ import annotations

import json
import math
import random
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from stdnum.pl import nip as nip_number

from engine.simulators.http_server import (
    HOST,
    LoopbackHttpServer,
    LoopbackSimulator,
    SimulatorInputError,
    SimulatorRequestHandler,
)
from engine.simulators.ksef.api import KsefApi
from engine.simulators.ksef.keys import KeyRing
from engine.simulators.ksef.wire import Answer, Request, json_answer

DEFAULT_PORT = 8040
MAX_BODY = 16 * 1024 * 1024
RETRY_AFTER_SECONDS = 1
FAULT_FIELDS = ("error_rate", "latency_ms", "throttle_rate", "lost_rate", "lose_next_uploads")


@dataclass(frozen=True)
class KsefFaults:
    """Faults for every ``/v2`` request (never ``/_sim``): ``error_rate`` of them answered
    503 before the work or 500 after it (half each); ``throttle_rate`` answered 429 with
    ``Retry-After: 1``; ``lost_rate`` done but closed without an answer; every answer
    delayed ``latency_ms``; the next ``lose_next_uploads`` invoice uploads stored and
    processed, then closed without an answer.

    :raises SimulatorInputError: for a value out of range.
    """

    error_rate: float = 0.0
    latency_ms: int = 0
    throttle_rate: float = 0.0
    lost_rate: float = 0.0
    lose_next_uploads: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "throttle_rate", "lost_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    0 <= value <= 1):
                raise SimulatorInputError(f"{name} must be a number from 0 to 1, not {value!r}")
        for name in ("latency_ms", "lose_next_uploads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SimulatorInputError(f"{name} must be a whole number >= 0, not {value!r}")

    @classmethod
    def from_json(cls, data: Any, base: KsefFaults) -> KsefFaults:
        """``base`` with the fields given in ``data`` (a JSON object) changed."""
        if not isinstance(data, dict):
            raise SimulatorInputError("expected a JSON object of fault settings")
        unknown = sorted(set(data) - set(FAULT_FIELDS))
        if unknown:
            raise SimulatorInputError(f"unknown fault setting(s): {', '.join(unknown)}; "
                                      f"known: {', '.join(FAULT_FIELDS)}")
        return cls(**{**asdict(base), **data})


def check_nip(nip: Any) -> str:
    """``nip`` if it is a valid Polish NIP (10 digits, check digit).

    :raises SimulatorInputError: otherwise.
    """
    if not isinstance(nip, str) or not (len(nip) == 10 and nip.isdigit()) or not (
            nip_number.is_valid(nip)):
        raise SimulatorInputError(f"nip must be a valid Polish NIP of 10 digits, not {nip!r}")
    return nip


def _problem(status: int, title: str, detail: str, *headers: tuple[str, str]) -> Answer:
    return json_answer(status, {"title": title, "status": status, "detail": detail,
                                "timestamp": datetime.now(UTC).isoformat()},
                       "application/problem+json", *headers)


def _too_many() -> Answer:
    return json_answer(429, {"status": {
        "code": 429, "description": "Too Many Requests",
        "details": [f"Przekroczono limit żądań. Spróbuj ponownie po {RETRY_AFTER_SECONDS} "
                    "sekundach."]}}, "application/json",
        ("Retry-After", str(RETRY_AFTER_SECONDS)))


def _unavailable() -> Answer:
    return _problem(503, "Service Unavailable", "Symulowana awaria: usługa niedostępna; "
                    "nic nie zostało zrobione.", ("Retry-After", str(RETRY_AFTER_SECONDS)))


def _failed_after() -> Answer:
    return _problem(500, "Internal Server Error", "Symulowana awaria po wykonaniu pracy.")


@dataclass(frozen=True)
class _Plan:
    """What goes wrong with one request: a delay, an answer instead of the work
    (``before``), or after the work (``after``: ``"500"`` or ``"lost"``)."""

    latency: float = 0.0
    before: Answer | None = None
    after: str | None = None


class KsefSimulator(LoopbackSimulator):
    """KSeF 2.0 on ``port`` (0: any free port) of 127.0.0.1, in memory; ``seed`` makes
    faults and numbers repeatable; an uploaded invoice is in status 150 for
    ``processing_seconds``; ``rate_limit`` admits that many requests per second (0: no
    limit). Use it as a context manager, or ``start`` and ``stop``. Thread-safe.
    """

    _label = "KSeF simulator"

    def __init__(self, port: int = 0, *, faults: KsefFaults | None = None,
                 seed: int | None = None, processing_seconds: float = 0.0,
                 rate_limit: int = 0) -> None:
        if processing_seconds < 0 or rate_limit < 0:
            raise SimulatorInputError("processing_seconds and rate_limit must be >= 0")
        super().__init__(port)
        self._lock = threading.Lock()
        self._faults = faults or KsefFaults()
        self._rate_limit = rate_limit
        self._fault_rng = random.Random(seed)
        self._window = (0, 0)
        self._counts = dict.fromkeys(("throttled", "errors", "lost"), 0)
        self._keys = KeyRing(datetime.now(UTC))
        self._api = KsefApi(self._keys, lambda: self.url, seed=seed,
                            processing_seconds=processing_seconds)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the SDK's ``base_url`` (it adds ``/v2``)."""
        return f"http://{HOST}:{self.port}"

    def _server(self, port: int) -> LoopbackHttpServer[KsefSimulator]:
        return LoopbackHttpServer(self, port, _Handler)

    def issue_token(self, nip: str) -> str:
        """A KSeF token the simulator accepts for context ``nip``.

        :raises SimulatorInputError: if ``nip`` is not a valid NIP.
        """
        return self._api.issue_token(check_nip(nip))

    def issue_certificate(self, nip: str) -> tuple[str, str]:
        """``(certificate_pem, private_key_pem)``: a certificate of the simulator's CA
        naming ``nip`` (organizationIdentifier ``VATPL-<nip>``), for XAdES login.

        :raises SimulatorInputError: if ``nip`` is not a valid NIP.
        """
        return self._keys.issue_certificate(check_nip(nip))

    @property
    def faults(self) -> KsefFaults:
        return self._faults

    def set_faults(self, faults: KsefFaults) -> None:
        """Use ``faults`` from the next request on."""
        with self._lock:
            self._faults = faults

    def state(self) -> dict[str, Any]:
        """What ``GET /_sim/state`` answers: ``accepted`` (invoices: seller_nip, kind,
        invoice_number, ksef_number, session, reference, uploads), ``rejected`` (the same
        with code, description, details), ``processing``, ``uploads``, ``logins`` by
        method, ``sessions``, ``faults`` (counts of throttled, errors, lost) and
        ``settings``."""
        data = self._api.state()
        with self._lock:
            data["faults"] = dict(self._counts)
            data["settings"] = {**asdict(self._faults), "rate_limit": self._rate_limit}
        return data

    def reset(self) -> None:
        """Forget tokens, logins, sessions, invoices and counts (faults, keys and the CA
        stay, so certificates issued before stay valid)."""
        self._api.reset()
        with self._lock:
            self._counts = dict.fromkeys(self._counts, 0)

    # --- used by the HTTP handler ----------------------------------------------------

    def _plan(self, header: str | None) -> _Plan:
        """This request's faults (counted): the rate limit first, then ``X-Sim-Fault``
        or the random faults."""
        with self._lock:
            faults = self._faults
            latency = faults.latency_ms / 1000
            if self._rate_limit:
                second, admitted = self._window
                now = math.floor(time.monotonic())
                admitted = admitted if second == now else 0
                if admitted >= self._rate_limit:
                    self._counts["throttled"] += 1
                    return _Plan(latency, _too_many())
                self._window = (now, admitted + 1)
            plan = (self._header_plan(header, latency) if header is not None
                    else self._random_plan(faults, latency))
            if plan.before is not None:
                self._counts["throttled" if plan.before.status == 429 else "errors"] += 1
            if plan.after is not None:
                self._counts["errors" if plan.after == "500" else "lost"] += 1
            return plan

    def _random_plan(self, faults: KsefFaults, latency: float) -> _Plan:
        rng = self._fault_rng
        if faults.throttle_rate and rng.random() < faults.throttle_rate:
            return _Plan(latency, _too_many())
        if faults.error_rate and rng.random() < faults.error_rate:
            return _Plan(latency, _unavailable()) if rng.random() < 0.5 else _Plan(
                latency, after="500")
        if faults.lost_rate and rng.random() < faults.lost_rate:
            return _Plan(latency, after="lost")
        return _Plan(latency)

    @staticmethod
    def _header_plan(header: str, latency: float) -> _Plan:
        """``X-Sim-Fault``: comma-separated ``429``, ``503``, ``500-after``, ``lost``,
        ``latency=MS``."""
        before: Answer | None = None
        after: str | None = None
        for part in (piece.strip() for piece in header.split(",") if piece.strip()):
            if part.startswith("latency=") and part.removeprefix("latency=").isdigit():
                latency = int(part.removeprefix("latency=")) / 1000
            elif part in ("429", "503"):
                before = _too_many() if part == "429" else _unavailable()
            elif part in ("500-after", "lost"):
                after = "500" if part == "500-after" else "lost"
            else:
                return _Plan(latency, _problem(400, "Bad Request", "X-Sim-Fault takes 429, "
                                               "503, 500-after, lost, latency=MS"))
        return _Plan(latency, before, after)

    def _take_lost_upload(self, request: Request, answer: Answer) -> bool:
        """Whether this answered upload is one of the next ``lose_next_uploads``."""
        if not (request.method == "POST" and len(request.path) == 4 and request.path[:2] == (
                "sessions", "online") and request.path[3] == "invoices"
                and answer.status == 202):
            return False
        with self._lock:
            if self._faults.lose_next_uploads <= 0:
                return False
            left = self._faults.lose_next_uploads - 1
            self._faults = KsefFaults(**{**asdict(self._faults), "lose_next_uploads": left})
            self._counts["lost"] += 1
            return True

    def _control(self, method: str, segments: tuple[str, ...], raw: bytes) -> Answer:
        """The ``/_sim`` endpoints (no auth, no faults)."""
        action = segments[0] if len(segments) == 1 else ""
        allowed = {"state": "GET", "tokens": "POST", "certificates": "POST",
                   "faults": "POST", "reset": "POST"}
        if action not in allowed:
            return _problem(404, "Not Found", f"nothing at /_sim/{'/'.join(segments)}"[:200])
        if method != allowed[action] and not (action == "faults" and method == "GET"):
            return _problem(405, "Method Not Allowed", f"/_sim/{action} takes "
                            f"{allowed[action]}")
        try:
            if action == "state":
                return json_answer(200, self.state())
            if action == "reset":
                self.reset()
                return json_answer(200, {"reset": True})
            body = _json_object(raw)
            if action == "faults":
                if method == "POST":
                    self.set_faults(KsefFaults.from_json(body, self._faults))
                return json_answer(200, asdict(self._faults))
            if action == "tokens":
                return json_answer(200, {"token": self.issue_token(check_nip(body.get("nip")))})
            certificate, key = self.issue_certificate(check_nip(body.get("nip")))
            return json_answer(200, {"certificate": certificate, "private_key": key})
        except (SimulatorInputError, TypeError) as error:
            return _problem(400, "Bad Request", str(error).splitlines()[0][:300] or "bad body")


def _json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SimulatorInputError("the body is not JSON in UTF-8") from None
    if not isinstance(body, dict):
        raise SimulatorInputError("expected a JSON object")
    return body


# --- HTTP --------------------------------------------------------------------------


class _Handler(SimulatorRequestHandler):
    server: LoopbackHttpServer[KsefSimulator]
    server_version = "soa-ksef-simulator"
    max_body = MAX_BODY

    def _dispatch(self, method: str, path: str, segments: tuple[str, ...],
                  query: dict[str, str], raw: bytes) -> None:
        simulator = self.server.simulator
        if segments[:1] == ("_sim",):
            self._send(simulator._control(method, segments[1:], raw))
            return
        if segments[:1] != ("v2",):
            self._send(_problem(404, "Not Found", "the KSeF API is under /v2"))
            return
        request = Request(method, segments[1:], query,
                          {name.lower(): value for name, value in self.headers.items()}, raw)
        plan = simulator._plan(self.headers.get("X-Sim-Fault"))
        if plan.latency:
            time.sleep(plan.latency)
        if plan.before is not None:
            self._send(plan.before)
            return
        answer = simulator._api.answer(request)
        if plan.after == "lost" or simulator._take_lost_upload(request, answer):
            self._drop()
        else:
            self._send(_failed_after() if plan.after == "500" else answer)

    def _refuse_body(self, status: int, detail: str) -> None:
        if status == 411:
            self._send(_problem(411, "Length Required", detail))
        else:  # not a number, or too large: one answer for both
            self._send(_problem(413, "Content Too Large",
                                f"Content-Length must be a number up to {MAX_BODY}"))

    def _send(self, answer: Answer) -> None:
        self._respond(answer.status, answer.content_type if answer.body or answer.status != 204
                      else None, answer.body, answer.headers)
