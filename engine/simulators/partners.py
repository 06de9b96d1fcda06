"""The partner simulator: one HTTP server on 127.0.0.1 speaking the seven partner contracts
of ``docs/partners`` (``soa simulate partners``), each under its own path prefix
(``/wszystkopl``, ``/esklep``, ``/detal``, ``/mobile``, ``/xl``, ``/hrm``, ``/apfino``).

- State lives in memory only, behind one lock; ``POST /_sim/reset`` forgets it.
- Received collections keep the last version of each object by its key and how often
  each key arrived in accepted, non-duplicate requests (``received_counts``); deletes
  land in ``<collection>_deleted``. Tests use the counts to prove exactly-once delivery.
- Import collections (feeds) are served in insertion order; the cursor is the position
  after the last item served, as a string.
- Idempotency: per partner, the first answer to a write's ``Idempotency-Key`` is kept
  and replayed with ``Idempotent-Replayed: true`` (a duplicate, nothing changes).
- Faults (:class:`Faults`, or the per-request ``X-Sim-Fault`` header) apply to partner
  requests only, never to ``/_sim``: latency, throttling (429 with ``Retry-After: 1``),
  5xx before the work or after it (the work is kept), and connections reset before or
  after the work (closed without an answer).
"""

from __future__ import annotations

import json
import math
import random
import secrets
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from email.message import Message
from pathlib import Path
from typing import Any

from stdnum.pl import nip as nip_number

from engine.simulators.http_server import HOST as HOST
from engine.simulators.http_server import REUSE_ADDRESS as REUSE_ADDRESS
from engine.simulators.http_server import (
    LoopbackHttpServer,
    LoopbackSimulator,
    SimulatorRequestHandler,
)
from engine.simulators.http_server import SimulatorInputError as SimulatorInputError
from engine.simulators.http_server import SimulatorPortError as SimulatorPortError

DEFAULT_PORT = 8030
PARTNERS = ("wszystkopl", "esklep", "detal", "mobile", "xl", "hrm", "apfino")
FEEDS: Mapping[str, tuple[str, ...]] = {
    "wszystkopl": ("sales",),
    "esklep": ("orders", "customers"),
    "detal": ("documents", "cash", "customers_new"),
    "mobile": ("orders", "customers_new", "payments"),
    "xl": ("products", "customers", "prices"),
    "hrm": ("leave",),
    "apfino": (),
}
"""The import collections each partner serves (and ``/_sim/seed`` fills)."""
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_KEY_CHARS = 200
MAX_BODY = 64 * 1024 * 1024
MAX_GENERATE = 100_000
TOKEN_SECONDS = 3600
DEVICE_CODE_SECONDS = 600
WRITES = frozenset({"POST", "PUT", "DELETE", "PATCH"})
COUNTERS = ("accepted", "duplicates", "faults", "refused")

Obj = dict[str, Any]


@dataclass(frozen=True)
class Faults:
    """Fault settings for every partner request: ``error_rate`` and ``reset_rate`` are
    fractions (half of each before the work, half after it), ``latency_ms`` delays every
    answer, ``throttle`` admits that many requests per partner per second (0: no limit).

    :raises SimulatorInputError: for a value out of range.
    """

    error_rate: float = 0.0
    latency_ms: int = 0
    reset_rate: float = 0.0
    throttle: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "reset_rate"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 <= value <= 1:
                raise SimulatorInputError(f"{name} must be a number from 0 to 1, not {value!r}")
        for name in ("latency_ms", "throttle"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SimulatorInputError(f"{name} must be a whole number >= 0, not {value!r}")

    @classmethod
    def from_json(cls, data: Any, base: Faults) -> Faults:
        """``base`` with the fields given in ``data`` (a JSON object) changed."""
        if not isinstance(data, dict):
            raise SimulatorInputError("expected a JSON object of fault settings")
        unknown = sorted(set(data) - {"error_rate", "latency_ms", "reset_rate", "throttle"})
        if unknown:
            raise SimulatorInputError(f"unknown fault setting(s): {', '.join(unknown)}")
        return cls(**{**asdict(base), **data})


class _Refused(Exception):
    """An answer ``{"error": message}`` with ``status`` instead of the work."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def _encode(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _reply(status: int, data: Any, *headers: tuple[str, str]) -> _Reply:
    return _Reply(status, _encode(data), headers)


def _error(status: int, message: str, *headers: tuple[str, str]) -> _Reply:
    return _reply(status, {"error": message}, *headers)


# --- collections -------------------------------------------------------------------


class _Received:
    """The last version of each object received, by key, and how often each key came."""

    __slots__ = ("counts", "items")

    def __init__(self) -> None:
        self.items: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def put(self, key: str, obj: Any) -> None:
        self.items[key] = obj
        self.counts[key] = self.counts.get(key, 0) + 1


class _Feed:
    """Import objects in insertion order; those with an ``id`` are found by it."""

    __slots__ = ("by_id", "items")

    def __init__(self) -> None:
        self.items: list[Obj] = []
        self.by_id: dict[str, Obj] = {}

    def add(self, obj: Obj) -> None:
        ident = obj.get("id")
        if ident is not None:
            if str(ident) in self.by_id:
                raise SimulatorInputError(f"id {ident!r} is there already")
            self.by_id[str(ident)] = obj
        self.items.append(obj)

    def page(self, query: Mapping[str, str],
             keep: Callable[[Obj], bool] | None = None) -> tuple[list[Obj], str]:
        """The items after ``query``'s cursor (up to its limit) and the next cursor."""
        start = self._cursor(query.get("cursor", ""))
        limit = _limit(query.get("limit"))
        if keep is None:
            served = self.items[start:start + limit]
            return served, str(start + len(served))
        served, position = [], start
        while position < len(self.items) and len(served) < limit:
            if keep(self.items[position]):
                served.append(self.items[position])
            position += 1
        return served, str(position)

    def _cursor(self, text: str) -> int:
        if not text:
            return 0
        if not text.isdigit() or int(text) > len(self.items):
            raise _Refused(400, f"cursor {text[:40]!r} was not given by this partner")
        return int(text)


def _limit(text: str | None) -> int:
    """``limit`` as asked (default 100); more than 1000 is served as 1000."""
    if text is None or text == "":
        return DEFAULT_LIMIT
    if not text.isdigit() or int(text) < 1:
        raise _Refused(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return min(int(text), MAX_LIMIT)


# --- requests ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """A partner request reaching its handler: body (JSON object for writes), query
    parameters, path parameters."""

    body: Obj
    query: Mapping[str, str]
    params: tuple[str, ...]


Handler = Callable[[_Call], tuple[int, Any]]


@dataclass(frozen=True)
class _Route:
    method: str
    path: tuple[str, ...]
    """Segments; ``{}`` matches any one segment (a path parameter)."""
    handler: Handler
    public: bool = False

    def match(self, method: str, segments: tuple[str, ...]) -> tuple[str, ...] | None:
        if method != self.method or len(segments) != len(self.path):
            return None
        params = []
        for pattern, segment in zip(self.path, segments, strict=True):
            if pattern == "{}":
                params.append(segment)
            elif pattern != segment:
                return None
        return tuple(params)


def _items(body: Obj, name: str) -> list[Obj]:
    items = body.get(name)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise _Refused(400, f'expected {{"{name}": [objects]}}')
    return items


def _key(item: Obj, fields: tuple[str, ...], where: str) -> str:
    values = [item.get(name) for name in fields]
    texts = [value for value in values if isinstance(value, str) and value]
    if len(texts) != len(fields):
        wanted = " and ".join(f'"{name}"' for name in fields)
        raise _Refused(400, f"{where}: each object needs {wanted} (non-empty text)")
    return "|".join(texts)


def _delete_keys(body: Obj, fields: tuple[str, ...]) -> list[str]:
    if len(fields) == 1:
        codes = body.get("codes")
        if not isinstance(codes, list) or not all(isinstance(c, str) and c for c in codes):
            raise _Refused(400, 'expected {"codes": [text, ...]}')
        return codes
    keys = body.get("keys")
    shape = "[" + ", ".join(f'"{name}"' for name in fields) + "]"
    if not isinstance(keys, list) or not all(
        isinstance(k, list) and len(k) == len(fields) and all(isinstance(v, str) for v in k)
        for k in keys
    ):
        raise _Refused(400, f'expected {{"keys": [{shape}, ...]}}')
    return ["|".join(k) for k in keys]


class _Partner:
    """One partner's state: received collections, feeds, idempotent answers, counters,
    and its routes (relative to its prefix)."""

    name = ""

    def __init__(self, simulator: PartnerSimulator) -> None:
        self.simulator = simulator
        self.received: dict[str, _Received] = {}
        self.feeds: dict[str, _Feed] = {name: _Feed() for name in FEEDS[self.name]}
        self.answers: dict[str, _Reply] = {}
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.window = (0, 0)
        self.routes: list[_Route] = []
        self.declare()

    def declare(self) -> None:
        """Add the partner's routes."""

    def authorize(self, header: str | None) -> None:
        """Accept any non-empty bearer token (the API key).

        :raises _Refused: 401 without one.
        """
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Refused(401, "expected Authorization: Bearer <token>")

    def collection(self, name: str) -> _Received:
        return self.received.setdefault(name, _Received())

    def route(self, method: str, path: str, handler: Handler, public: bool = False) -> None:
        self.routes.append(_Route(method, tuple(path.strip("/").split("/")), handler, public))

    def upserts(self, path: str, name: str, fields: tuple[str, ...],
                delete: bool = True) -> None:
        """``POST path {name: [...]}`` -> ``{"upserted": n}`` (by ``fields``), and with
        ``delete`` ``POST path/delete`` -> ``{"deleted": n}`` (those known)."""
        kept, deleted = self.collection(name), self.collection(f"{name}_deleted")

        def upsert(call: _Call) -> tuple[int, Any]:
            items = _items(call.body, name)
            keys = [_key(item, fields, f"POST {path}") for item in items]
            for key, item in zip(keys, items, strict=True):
                kept.put(key, item)
                deleted.items.pop(key, None)
            return 200, {"upserted": len(items)}

        def remove(call: _Call) -> tuple[int, Any]:
            count = 0
            for key in _delete_keys(call.body, fields):
                count += kept.items.pop(key, None) is not None
                deleted.put(key, dict(zip(fields, key.split("|"), strict=False)))
            return 200, {"deleted": count}

        self.route("POST", path, upsert)
        if delete:
            self.route("POST", f"{path}/delete", remove)

    def serves(self, path: str, feed: str, answer: str, next_key: str = "next_cursor",
               keep: Callable[[_Call], Callable[[Obj], bool] | None] | None = None) -> None:
        """``GET path?cursor=&limit=`` -> ``{answer: [...], next_key: cursor}``."""
        items = self.feeds[feed]

        def serve(call: _Call) -> tuple[int, Any]:
            served, cursor = items.page(call.query, keep(call) if keep else None)
            return 200, {answer: served, next_key: cursor}

        self.route("GET", path, serve)

    def state(self) -> Obj:
        """Every collection as a list, and ``received_counts`` per received one."""
        data: Obj = {name: list(kept.items.values()) for name, kept in self.received.items()}
        data.update({name: list(feed.items) for name, feed in self.feeds.items()})
        data["received_counts"] = {name: dict(kept.counts)
                                   for name, kept in self.received.items()}
        return data


class _Wszystkopl(_Partner):
    """The marketplace: device-code login, offers, sales."""

    name = "wszystkopl"

    def declare(self) -> None:
        self.devices: dict[str, float] = {}
        self.tokens: dict[str, float] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.offers = self.collection("offers")
        for name in ("offer_updates", "offers_ended", "sale_statuses", "tracking_numbers"):
            self.collection(name)
        self.route("GET", "integration/register", self.register, public=True)
        self.route("GET", "integration/token", self.token, public=True)
        self.route("GET", "integration/refresh", self.refresh, public=True)
        self.route("POST", "me/offers", self.put_offers)
        self.route("PUT", "me/update-offers", self.update_offers)
        self.route("POST", "me/offers/end", self.end_offers)
        self.route("GET", "me/offers",
                   lambda call: (200, {"offers": list(self.offers.items.values())}))
        self.serves("me/sales", "sales", "sales", next_key="nextCursor")
        self.route("PUT", "me/sales/updateStatus", self.update_status)
        self.route("PUT", "me/sales/{}/trackingNumbers", self.tracking_numbers)

    def authorize(self, header: str | None) -> None:
        scheme, _, token = (header or "").partition(" ")
        expires = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expires is None or expires < time.monotonic():
            raise _Refused(401, "invalid_token")

    def register(self, call: _Call) -> tuple[int, Any]:
        device = secrets.token_urlsafe(24)
        user = "".join(secrets.choice("ABCDEFGHJKLMNPRSTUWXYZ") for _ in range(8))
        self.devices[device] = time.monotonic() + DEVICE_CODE_SECONDS
        return 200, {
            "deviceCode": device, "userCode": f"{user[:4]}-{user[4:]}",
            "verificationUriPrettyComplete":
                f"{self.simulator.url}/wszystkopl/activate?userCode={user}",
            "expiresIn": DEVICE_CODE_SECONDS, "interval": 1,
        }

    def token(self, call: _Call) -> tuple[int, Any]:
        expires = self.devices.get(call.query.get("deviceCode", ""))
        if expires is None or expires < time.monotonic():
            raise _Refused(400, "invalid_grant")
        return 200, self._issue()

    def refresh(self, call: _Call) -> tuple[int, Any]:
        access = self.refresh_tokens.pop(call.query.get("refreshToken", ""), None)
        if access is None:
            raise _Refused(400, "invalid_grant")
        self.tokens.pop(access, None)
        return 200, self._issue()

    def _issue(self) -> Obj:
        access, refresh = f"wa-{secrets.token_hex(16)}", f"wr-{secrets.token_hex(16)}"
        self.tokens[access] = time.monotonic() + TOKEN_SECONDS
        self.refresh_tokens[refresh] = access
        return {"accessToken": access, "refreshToken": refresh, "expiresIn": TOKEN_SECONDS,
                "tokenType": "Bearer"}

    def put_offers(self, call: _Call) -> tuple[int, Any]:
        offers = _items(call.body, "offers")
        keys = [_key(offer, ("externalId",), "POST /me/offers") for offer in offers]
        created = 0
        for key, offer in zip(keys, offers, strict=True):
            created += key not in self.offers.items
            self.offers.put(key, {**offer, "status": "active"})
        return 200, {"created": created, "updated": len(offers) - created}

    def update_offers(self, call: _Call) -> tuple[int, Any]:
        changes = _items(call.body, "offers")
        keys = [_key(change, ("externalId",), "PUT /me/update-offers") for change in changes]
        updates, missing = self.collection("offer_updates"), []
        for key, change in zip(keys, changes, strict=True):
            offer = self.offers.items.get(key)
            if offer is None:
                missing.append(key)
                continue
            offer.update({name: change[name] for name in ("price", "quantity") if name in change})
            updates.put(key, change)
        return 200, {"updated": len(changes) - len(missing), "missing": missing}

    def end_offers(self, call: _Call) -> tuple[int, Any]:
        ids = call.body.get("externalIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise _Refused(400, 'expected {"externalIds": [text, ...]}')
        ended, missing = self.collection("offers_ended"), []
        for key in ids:
            offer = self.offers.items.get(key)
            if offer is None:
                missing.append(key)
                continue
            offer["status"] = "ended"
            ended.put(key, {"externalId": key})
        return 200, {"ended": len(ids) - len(missing), "missing": missing}

    def update_status(self, call: _Call) -> tuple[int, Any]:
        changes = _items(call.body, "sales")
        keys = [_key(change, ("id", "status"), "PUT /me/sales/updateStatus")
                for change in changes]
        statuses, updated = self.collection("sale_statuses"), 0
        for key, change in zip(keys, changes, strict=True):
            sale = self.feeds["sales"].by_id.get(change["id"])
            if sale is not None:
                sale["status"] = change["status"]
                statuses.put(key.partition("|")[0], change)
                updated += 1
        return 200, {"updated": updated}

    def tracking_numbers(self, call: _Call) -> tuple[int, Any]:
        sale_id = call.params[0]
        numbers = call.body.get("trackingNumbers")
        if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
            raise _Refused(400, 'expected {"trackingNumbers": [text, ...]}')
        sale = self.feeds["sales"].by_id.get(sale_id)
        if sale is None:
            raise _Refused(404, f"no sale {sale_id[:60]!r}")
        sale["trackingNumbers"] = numbers
        answer = {"id": sale_id, "trackingNumbers": numbers}
        self.collection("tracking_numbers").put(sale_id, answer)
        return 200, answer


class _Esklep(_Partner):
    """The web shop: groups and products out; customers and orders in."""

    name = "esklep"

    def declare(self) -> None:
        self.upserts("groups", "groups", ("code",))
        self.upserts("products", "products", ("code",))
        self.serves("customers", "customers", "customers")
        self.serves("orders", "orders", "orders", keep=self._in_status)
        self.route("POST", "orders/{}/confirm", self.confirm)
        self.collection("confirmations")

    @staticmethod
    def _in_status(call: _Call) -> Callable[[Obj], bool]:
        status = call.query.get("status") or "awaiting_confirmation"
        return lambda order: order.get("status") == status

    def confirm(self, call: _Call) -> tuple[int, Any]:
        order_id, erp_number = call.params[0], call.body.get("erp_number")
        if not isinstance(erp_number, str) or not erp_number:
            raise _Refused(400, 'expected {"erp_number": text}')
        order = self.feeds["orders"].by_id.get(order_id)
        if order is None:
            raise _Refused(404, f"no order {order_id[:60]!r}")
        if order.get("status") == "confirmed" and order.get("erp_number") != erp_number:
            raise _Refused(409, f"order {order_id} is confirmed already as "
                           f"{order.get('erp_number')}")
        order.update(status="confirmed", erp_number=erp_number)
        answer = {"id": order_id, "status": "confirmed", "erp_number": erp_number}
        self.collection("confirmations").put(order_id, answer)
        return 200, answer


class _Detal(_Partner):
    """The retail till: products and customers out; documents, cash, customers in."""

    name = "detal"

    def declare(self) -> None:
        self.upserts("products", "products", ("code",))
        self.upserts("customers", "customers", ("code",))
        self.serves("documents", "documents", "documents")
        self.serves("cash", "cash", "entries")
        self.serves("customers/new", "customers_new", "customers")


class _Mobile(_Partner):
    """The sales reps' app: master data out; orders, customers, payments in."""

    name = "mobile"

    def declare(self) -> None:
        self.upserts("customers", "customers", ("code",))
        self.upserts("products", "products", ("code",))
        self.upserts("prices", "prices", ("product", "price_type"))
        self.upserts("stock", "stock", ("product", "warehouse"))
        self.upserts("receivables", "receivables", ("id",))
        self.serves("orders", "orders", "orders")
        self.serves("customers/new", "customers_new", "customers")
        self.serves("payments", "payments", "payments")


class _Xl(_Partner):
    """The headquarters' ERP: the branch's documents, cash and payments out; master data
    in."""

    name = "xl"

    def declare(self) -> None:
        self.upserts("branch/documents", "documents", ("number",), delete=False)
        self.upserts("branch/cash", "entries", ("id",), delete=False)
        self.upserts("branch/payments", "payments", ("id",), delete=False)
        self.serves("hq/products", "products", "products")
        self.serves("hq/customers", "customers", "customers")
        self.serves("hq/price-lists", "prices", "prices")


class _Hrm(_Partner):
    """HR and payroll: employees out (a full synchronisation clears first); leave in."""

    name = "hrm"

    def declare(self) -> None:
        self.upserts("employees", "employees", ("code",))
        self.route("POST", "employees/clear", self.clear)
        self.collection("clears")
        self.serves("leave", "leave", "leave")

    def clear(self, call: _Call) -> tuple[int, Any]:
        employees = self.collection("employees")
        cleared = len(employees.items)
        employees.items.clear()
        self.collection("clears").put("employees", {"cleared": cleared})
        return 200, {"cleared": cleared}


class _Apfino(_Partner):
    """Invoice financing: invoices and payments out; payment links on demand."""

    name = "apfino"

    def declare(self) -> None:
        self.upserts("invoices", "invoices", ("number",), delete=False)
        self.upserts("payments", "payments", ("id",), delete=False)
        self.route("POST", "payment-links", self.links)
        self.collection("payment_links")

    def links(self, call: _Call) -> tuple[int, Any]:
        numbers = call.body.get("invoices")
        if not isinstance(numbers, list) or not all(isinstance(n, str) and n for n in numbers):
            raise _Refused(400, 'expected {"invoices": [invoice number, ...]}')
        invoices, links = self.collection("invoices"), self.collection("payment_links")
        answer, unknown = [], []
        for number in numbers:
            if number not in invoices.items:
                unknown.append(number)
                continue
            link = links.items.get(number) or {
                "invoice": number,
                "url": f"https://pay.apfino.example/l/{secrets.token_urlsafe(12)}",
                "expires_at": (datetime.now().astimezone() + timedelta(days=30))
                .isoformat(timespec="seconds"),
            }
            links.put(number, link)
            answer.append(link)
        return 200, {"links": answer, "unknown": unknown}


PARTNER_CLASSES: tuple[type[_Partner], ...] = (
    _Wszystkopl, _Esklep, _Detal, _Mobile, _Xl, _Hrm, _Apfino)


# --- faults ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """What goes wrong with one request: a delay, then an answer or reset instead of the
    work (``before``), or after it (``after``: ``"500"`` or ``"reset"``)."""

    latency: float = 0.0
    before: _Reply | str | None = None
    after: str | None = None


TOO_MANY = _error(429, "too many requests; try again after 1 s", ("Retry-After", "1"))
UNAVAILABLE = _error(503, "simulated fault: the partner is unavailable; nothing was done")
LOST = _error(500, "simulated fault after the work was done")


def _header_plan(header: str, default_latency: float) -> _Plan:
    latency: float = default_latency
    before: _Reply | str | None = None
    after: str | None = None
    for part in (piece.strip() for piece in header.split(",")):
        if part.startswith("latency="):
            milliseconds = part.removeprefix("latency=")
            if not milliseconds.isdigit():
                raise _Refused(400, "X-Sim-Fault latency=MS needs a whole number of ms")
            latency = int(milliseconds) / 1000
        elif part in ("503", "429", "reset"):
            before = UNAVAILABLE if part == "503" else TOO_MANY if part == "429" else part
        elif part in ("500-after", "reset-after"):
            after = part.removesuffix("-after")
        elif part:
            raise _Refused(400, f"X-Sim-Fault {part[:40]!r} is not one of 503, 500-after, "
                           "reset, reset-after, 429, latency=MS")
    return _Plan(latency, before, after)


# --- generation --------------------------------------------------------------------

FIRST_NAMES = ("Anna", "Katarzyna", "Maria", "Małgorzata", "Agnieszka", "Barbara", "Ewa",
               "Zofia", "Joanna", "Magdalena", "Piotr", "Krzysztof", "Andrzej", "Tomasz",
               "Paweł", "Michał", "Marcin", "Jan", "Łukasz", "Grzegorz", "Jerzy", "Wojciech")
LAST_NAMES = ("Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński",
              "Lewandowski", "Zieliński", "Szymański", "Woźniak", "Dąbrowski", "Kozłowski",
              "Jankowski", "Mazur", "Kwiatkowski", "Krawczyk", "Piotrowski", "Grabowski",
              "Pawłowski", "Michalski", "Wróbel", "Zając", "Król", "Jabłoński")
COMPANY_WORDS = ("Agro-Pol", "Budmax", "Drewnex", "Elektro-Serwis", "Hurtownia Pod Lipami",
                 "Piekarnia Złoty Kłos", "Transbud", "Mebloteka", "Ogród i Dom", "Zakład "
                 "Stolarski Dąb", "Auto-Części Gąska", "Pralnia Śnieżka", "Kwiaciarnia Róża",
                 "Instalbud", "Polmlek", "Dom Handlowy Sokół", "Rolmex", "Szkło-Tech")
COMPANY_FORMS = ("Sp. z o.o.", "S.A.", "s.c.", "Sp. j.", "Sp. z o.o. Sp. k.")
STREETS = ("Lipowa", "Polna", "Leśna", "Słoneczna", "Krótka", "Szkolna", "Ogrodowa",
           "Kościuszki", "Mickiewicza", "Piłsudskiego", "Długa", "3 Maja", "Żeromskiego",
           "Kwiatowa", "Łąkowa", "Sienkiewicza")
CITIES = (("Warszawa", "0"), ("Kraków", "3"), ("Łódź", "9"), ("Wrocław", "5"),
          ("Poznań", "6"), ("Gdańsk", "8"), ("Szczecin", "7"), ("Lublin", "2"),
          ("Białystok", "15"), ("Katowice", "4"), ("Rzeszów", "35"), ("Toruń", "87"))
MAIL_DOMAINS = ("gmail.com", "wp.pl", "onet.pl", "o2.pl", "interia.pl")
SHIPPING = (("InPost Paczkomat", "12.99"), ("Kurier DPD", "16.90"), ("Poczta Polska",
            "11.50"), ("Odbiór osobisty", "0.00"))
VAT_RATES = ("23", "23", "23", "8", "5", "0")
LEAVE_KINDS = ("wypoczynkowy", "na żądanie", "okolicznościowy", "opieka nad dzieckiem")
CENT = Decimal("0.01")


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    return "".join(c for c in folded if c.isascii() and (c.isalnum() or c in ".-")).lower()


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


class _Faker:
    """Realistic Polish import objects from a seeded random source."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def person(self) -> tuple[str, str]:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        if first.endswith("a") and last.endswith(("ski", "cki", "dzki")):
            last = last[:-1] + "a"
        return first, last

    def nip(self) -> str:
        while True:
            digits = f"{self.rng.randint(101, 999)}{self.rng.randint(0, 999_999):06d}"
            check = nip_number.checksum(digits + "0")
            if check < 10:
                return digits + str(check)

    def phone(self) -> str:
        return f"+48{self.rng.choice('5678')}{self.rng.randint(0, 99_999_999):08d}"

    def address(self) -> Obj:
        city, prefix = self.rng.choice(CITIES)
        code = (prefix + f"{self.rng.randint(0, 99_999):05d}"[len(prefix):])
        return {"street": f"ul. {self.rng.choice(STREETS)} {self.rng.randint(1, 120)}",
                "city": city, "postal_code": f"{code[:2]}-{code[2:]}", "country": "PL"}

    def party(self) -> Obj:
        """A person (nip None) or, one time in three, a company."""
        first, last = self.person()
        if self.rng.random() < 1 / 3:
            word = self.rng.choice(COMPANY_WORDS)
            name = f"{word} {self.rng.choice(COMPANY_FORMS)}"
            email = f"biuro@{_ascii(word.split()[0])}.pl"
            return {"name": name, "nip": self.nip(), "email": email, "phone": self.phone(),
                    "address": self.address(), "contact": f"{first} {last}"}
        email = f"{_ascii(first)}.{_ascii(last)}{self.rng.randint(1, 99)}@" \
                f"{self.rng.choice(MAIL_DOMAINS)}"
        return {"name": f"{first} {last}", "nip": None, "email": email, "phone": self.phone(),
                "address": self.address(), "contact": f"{first} {last}"}

    def price(self) -> Decimal:
        return Decimal(self.rng.randint(199, 99_999)) / 100

    def quantity(self) -> int:
        return self.rng.choice((1, 1, 1, 2, 2, 3, 5, 10))

    def lines(self, products: list[str], gross: bool = True) -> list[Obj]:
        return [{"code": self.rng.choice(products), "quantity": str(self.quantity()),
                 "price": _money(self.price()), "vat_rate": self.rng.choice(VAT_RATES)}
                for _ in range(self.rng.randint(1, 4))]

    def moment(self) -> str:
        back = timedelta(minutes=self.rng.randint(0, 7 * 24 * 60))
        return (datetime.now().astimezone() - back).isoformat(timespec="seconds")

    def day(self, ahead: int = 0) -> str:
        return (date.today() + timedelta(days=ahead + self.rng.randint(-14, 14))).isoformat()


def _total(lines: Iterable[Obj], quantity: str = "quantity", price: str = "price") -> Decimal:
    return sum((Decimal(line[quantity]) * Decimal(line[price]) for line in lines), Decimal(0))


class _Generator:
    """Makes ``count`` import objects of one partner collection."""

    def __init__(self, faker: _Faker, partner: _Partner, products: list[str],
                 customers: list[str]) -> None:
        self.fake = faker
        self.partner = partner
        self.products = products or [f"P{n:04d}" for n in range(1, 21)]
        prefix = "E" if partner.name == "hrm" else "K"  # employees or customers
        self.customers = customers or [f"{prefix}{n:04d}" for n in range(1, 21)]

    def make(self, collection: str, count: int) -> list[Obj]:
        feed = self.partner.feeds[collection]
        made: list[Obj] = []
        method = getattr(self, f"_{self.partner.name}_{collection}")
        for _ in range(count):
            serial = len(feed.items) + len(made) + 1
            while f"{collection[:2].upper()}-{serial:06d}" in feed.by_id:
                serial += 1
            made.append(method(serial, f"{collection[:2].upper()}-{serial:06d}", made))
        return made

    def _customer(self, ident: str) -> Obj:
        party = self.fake.party()
        return {"id": ident, "name": party["name"], "nip": party["nip"],
                "address": party["address"], "email": party["email"], "phone": party["phone"]}

    def _wszystkopl_sales(self, serial: int, ident: str, made: list[Obj]) -> Obj:
        fake, party = self.fake, self.fake.party()
        first, last = party["contact"].split(" ", 1)
        items = []
        for _ in range(fake.rng.randint(1, 3)):
            code = fake.rng.choice(self.products)
            items.append({"offerExternalId": code, "title": f"Produkt {code}",
                          "quantity": str(fake.quantity()), "price": _money(fake.price()),
                          "vatRate": fake.rng.choice((*VAT_RATES[:-1], "zw"))})
        method, cost = fake.rng.choice(SHIPPING)
        payment = fake.rng.choice(("online", "online", "transfer", "cash_on_delivery"))
        address = party["address"]
        return {
            "id": str(uuid.UUID(int=fake.rng.getrandbits(128), version=4)),
            "createdAt": fake.moment(), "status": "new",
            "buyer": {"login": f"{_ascii(first)}_{_ascii(last)}{serial}",
                      "email": party["email"], "name": f"{first} {last}",
                      "companyName": party["name"] if party["nip"] else None,
                      "nip": party["nip"], "phone": party["phone"],
                      "address": {"street": address["street"], "city": address["city"],
                                  "postalCode": address["postal_code"], "countryCode": "PL"}},
            "items": items, "shipping": {"method": method, "cost": cost},
            "payment": {"type": payment, "paid": payment == "online"},
            "total": _money(_total(items) + Decimal(cost)),
        }

    def _esklep_customers(self, serial: int, ident: str, made: list[Obj]) -> Obj:
        return self._customer(ident)

    def _esklep_orders(self, serial: int, ident: str, made: list[Obj]) -> Obj:
        fake = self.fake
        method, cost = fake.rng.choice(SHIPPING)
        return {
            "id": ident, "number": f"ES/{date.today().year}/{serial:06d}",
            "created": fake.moment(), "status": "awaiting_confirmation",
            "customer": self._customer(f"C-{serial:06d}"), "lines": fake.lines(self.products),
            "shipping": {"method": method, "cost": cost},
            "payment": fake.rng.choice(("transfer", "cash_on_delivery", "online")),
        }

    def _detal_documents(self, serial: int, ident: str, made: list[Obj]) -> Obj:
        fake, earlier = self.fake, (self.partner.feeds["documents"].items[-20:] + made[-20:])
        today = date.today()
        document: Obj = {"id": ident, "date": today.isoformat(), "warehouse": "MAG",
                         "payment": fake.rng.choice(("cash", "card")), "from_receipt": None,
                         "corrects": None, "customer": None}
        originals = [d for d in earlier[-20:] if d["type"] != "correction"]
        if serial % 10 == 0 and originals:
            original = fake.rng.choice(originals)
            line = dict(fake.rng.choice(original["lines"]))
            line["quantity"] = "-" + line["quantity"]
            document.update(type="correction", corrects=original["id"], lines=[line],
                            customer=original["customer"],
                            number=f"KOR/{serial:06d}/{today:%m/%Y}")
            return document
        document["lines"] = fake.lines(self.products)
        if serial % 5 == 0:
            receipts = [d for d in originals if d["type"] == "receipt"]
            customer: Any = fake.rng.choice(self.customers)
            if fake.rng.random() < 0.5:
                customer = self._customer(f"C-{serial:06d}")
                customer.pop("email")
                customer.pop("phone")
            document.update(type="invoice", customer=customer,
                            number=f"FS/{serial:06d}/{today:%m/%Y}")
            if receipts and fake.rng.random() < 0.5:
                receipt = receipts[-1]
                document.update(from_receipt=receipt["id"], lines=receipt["lines"])
            return document
        document.update(type="receipt", number=f"PA/{serial:06d}/{today:%m/%Y}")
        return document

    def _detal_cash(self, serial: int, ident: str, made: list[Obj]) -> Obj:
        kind = self.fake.rng.choice(("KP", "KP", "KW"))
        description = ("Wpłata utargu" if kind == "KP"
                       else self.fake.rng.choice(("Wypłata do banku", "Zakup materiałów")))
        return {"id": ident, "date": self.fake.day(), "kind": kind,
                "amount": _money(self.fake.price()), "description": description,
                "register": "KASA1"}

    def _detal_customers_new(self, serial: int, ident: str, made: list[Obj]) -> Obj:
        return self._customer(ident)

    def _mobile_orders(self, serial: int, ident: str, made: list[Obj]) -> Obj:
        fake = self.fake
        customer: Any = fake.rng.choice(self.customers)
        if fake.rng.random() < 0.1:
            customer = self._customer(f"C-{serial:06d}")
        return {"id": ident, "customer": customer, "date": fake.day(),
                "lines": fake.lines(self.products), "warehouse": "MAG",
                "payment": fake.rng.choice(("cash", "transfer"))}

    def _mobile_customers_new(self, serial: int, ident: str, made: list[Obj]) -> Obj:
        return self._customer(ident)

    def _mobile_payments(self, serial: int, ident: str, made: list[Obj]) -> Obj:
        fake = self.fake
        return {"id": ident, "customer": fake.rng.choice(self.customers),
                "document": f"FS/{fake.rng.randint(1, 999)}/{date.today():%m/%Y}",
                "date": fake.day(), "amount": _money(fake.price()),
                "form": fake.rng.choice(("cash", "card", "transfer"))}

    def _xl_products(self, serial: int, ident: str, made: list[Obj]) -> Obj:
        index = len(self.partner.feeds["products"].items) + len(made)
        code = (self.products[index] if index < len(self.products)
                else f"XL{serial:05d}")
        return {"code": code, "name": f"Towar {code}", "unit": self.fake.rng.choice(
            ("szt", "szt", "kg", "m", "opak")), "vat_rate": self.fake.rng.choice(VAT_RATES),
            "net_price": _money(self.fake.price()), "deleted": False}

    def _xl_customers(self, serial: int, ident: str, made: list[Obj]) -> Obj:
        index = len(self.partner.feeds["customers"].items) + len(made)
        code = (self.customers[index] if index < len(self.customers)
                else f"KXL{serial:05d}")
        customer = self._customer(code)
        customer.pop("id")
        return {"code": code, **customer, "deleted": False}

    def _xl_prices(self, serial: int, ident: str, made: list[Obj]) -> Obj:
        product = self.products[(serial - 1) % len(self.products)]
        price_type = ("hurtowa", "detaliczna")[(serial - 1) // len(self.products) % 2]
        return {"product": product, "price_type": price_type,
                "net_price": _money(self.fake.price())}

    def _hrm_leave(self, serial: int, ident: str, made: list[Obj]) -> Obj:
        start = date.today() + timedelta(days=self.fake.rng.randint(1, 90))
        end = start + timedelta(days=self.fake.rng.randint(0, 13))
        return {"id": ident, "employee": self.fake.rng.choice(self.customers),
                "kind": self.fake.rng.choice(LEAVE_KINDS), "start": start.isoformat(),
                "end": end.isoformat()}


# --- the simulator -----------------------------------------------------------------


class PartnerSimulator(LoopbackSimulator):
    """The seven partners on ``port`` (0: any free port) of 127.0.0.1, optionally seeded
    from ``seed_file`` (JSON ``{partner: {collection: [objects]}}``), with ``faults``;
    ``seed`` makes faults and generated data repeatable. Use it as a context manager, or
    ``start`` and ``stop``. Thread-safe.

    :raises SimulatorInputError: if the seed file cannot be read or used (one line).
    """

    _label = "partner simulator"

    def __init__(self, port: int = 0, *, seed_file: Path | None = None,
                 faults: Faults | None = None, seed: int | None = None) -> None:
        super().__init__(port)
        self._lock = threading.Lock()
        self._faults = faults or Faults()
        self._fault_rng = random.Random(seed)
        self._faker = _Faker(random.Random(None if seed is None else seed + 1))
        self._partners: dict[str, _Partner] = {}
        self.reset()
        if seed_file is not None:
            try:
                self.seed(_read_seed_file(seed_file))
            except SimulatorInputError as error:
                if str(error).startswith("seed file "):
                    raise
                raise SimulatorInputError(f"seed file {seed_file}: {error}") from None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``; a partner's base URL is ``url + "/" + partner``."""
        return f"http://{HOST}:{self.port}"

    def base_url(self, partner: str) -> str:
        """The base URL a company configures for ``partner``."""
        return f"{self.url}/{partner}"

    def _server(self, port: int) -> LoopbackHttpServer[PartnerSimulator]:
        return LoopbackHttpServer(self, port, _Handler)

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        """Use ``faults`` from the next request on."""
        with self._lock:
            self._faults = faults

    def reset(self) -> None:
        """Forget every object, counter, idempotency key and token (fault settings stay)."""
        with self._lock:
            self._partners = {kind.name: kind(self) for kind in PARTNER_CLASSES}

    def state(self, partner: str | None = None) -> Obj:
        """What ``GET /_sim/state`` answers: every partner's collections (or only
        ``partner``'s) with ``received_counts``, ``requests`` (global counters),
        ``counters`` per partner and the ``faults`` settings."""
        with self._lock:
            chosen = [self._partner_named(partner)] if partner else self._partners.values()
            data: Obj = {each.name: each.state() for each in chosen}
            data["counters"] = {name: dict(each.counters)
                                for name, each in self._partners.items()}
            data["requests"] = {counter: sum(each.counters[counter]
                                             for each in self._partners.values())
                                for counter in COUNTERS}
            data["faults"] = asdict(self._faults)
            return data

    def seed(self, data: Any) -> dict[str, dict[str, int]]:
        """Append import objects ``{partner: {collection: [objects]}}``; return how many
        went where. wszystko.pl sales and e-Sklep orders get an ``id`` if they lack one
        and status ``new``/``awaiting_confirmation``. Nothing is added if anything is
        wrong.

        :raises SimulatorInputError: naming the first problem.
        """
        if not isinstance(data, dict):
            raise SimulatorInputError("expected a JSON object {partner: {collection: [...]}}")
        with self._lock:
            plan: list[tuple[_Feed, list[Obj]]] = []
            for name, collections in data.items():
                partner = self._partner_named(name)
                if not isinstance(collections, dict):
                    raise SimulatorInputError(f"{name}: expected {{collection: [objects]}}")
                for collection, objects in collections.items():
                    feed = self._feed_of(partner, collection)
                    if not isinstance(objects, list) or not all(
                            isinstance(obj, dict) for obj in objects):
                        raise SimulatorInputError(f"{name}.{collection}: expected a list of "
                                                  "objects")
                    plan.append((feed, [self._completed(name, collection, obj)
                                        for obj in objects]))
            self._check_ids(plan)
            for feed, objects in plan:
                for obj in objects:
                    feed.add(obj)
            return {name: {collection: len(objects) for collection, objects in cols.items()}
                    for name, cols in data.items()}

    def generate(self, partner: str, collection: str, count: int,
                 products: list[str] | None = None,
                 customers: list[str] | None = None) -> list[Obj]:
        """Append ``count`` realistic import objects to ``partner``'s ``collection``, their
        lines referencing ``products`` (default P0001..P0020) and customer (hrm: employee)
        codes ``customers`` (default K0001..K0020, hrm E0001..E0020); return them.

        :raises SimulatorInputError: for an unknown partner or collection or a bad count.
        """
        if isinstance(count, bool) or not isinstance(count, int) or not (
                0 <= count <= MAX_GENERATE):
            raise SimulatorInputError(f"count must be a whole number from 0 to {MAX_GENERATE}")
        for name, codes in (("products", products), ("customers", customers)):
            if codes is not None and not (isinstance(codes, list) and all(
                    isinstance(code, str) and code for code in codes)):
                raise SimulatorInputError(f"{name} must be a list of codes")
        with self._lock:
            owner = self._partner_named(partner)
            feed = self._feed_of(owner, collection)
            made = _Generator(self._faker, owner, products or [], customers or []).make(
                collection, count)
            for obj in made:
                feed.add(obj)
            return made

    # --- used by the HTTP handler ----------------------------------------------------

    def _partner_named(self, name: Any) -> _Partner:
        partner = self._partners.get(name) if isinstance(name, str) else None
        if partner is None:
            raise SimulatorInputError(f"unknown partner {name!r}; one of {', '.join(PARTNERS)}")
        return partner

    @staticmethod
    def _feed_of(partner: _Partner, collection: Any) -> _Feed:
        feed = partner.feeds.get(collection) if isinstance(collection, str) else None
        if feed is None:
            known = ", ".join(FEEDS[partner.name]) or "none"
            raise SimulatorInputError(f"{partner.name} has no import collection "
                                      f"{collection!r} (known: {known})")
        return feed

    def _completed(self, partner: str, collection: str, obj: Obj) -> Obj:
        if (partner, collection) == ("wszystkopl", "sales"):
            return {"id": str(uuid.uuid4()), "status": "new", **obj}
        if (partner, collection) == ("esklep", "orders"):
            return {"id": f"OR-{uuid.uuid4().hex[:12]}", "status": "awaiting_confirmation",
                    **obj}
        return obj

    @staticmethod
    def _check_ids(plan: list[tuple[_Feed, list[Obj]]]) -> None:
        seen: dict[int, set[str]] = {}
        for feed, objects in plan:
            ids = seen.setdefault(id(feed), set(feed.by_id))
            for obj in objects:
                if obj.get("id") is None:
                    continue
                if str(obj["id"]) in ids:
                    raise SimulatorInputError(f"id {obj['id']!r} is there already")
                ids.add(str(obj["id"]))

    def _plan(self, partner: str, header: str | None) -> _Plan:
        """Decide this request's faults (counting them); throttling counts admitted
        requests per partner per second."""
        with self._lock:
            faults, owner = self._faults, self._partners[partner]
            default_latency = faults.latency_ms / 1000
            if faults.throttle:
                second, admitted = owner.window
                now = math.floor(time.monotonic())
                admitted = admitted if second == now else 0
                if admitted >= faults.throttle:
                    owner.counters["faults"] += 1
                    return _Plan(default_latency, TOO_MANY)
                owner.window = (now, admitted + 1)
            if header is not None:
                plan = _header_plan(header, default_latency)
            else:
                plan = _Plan(default_latency, *self._random_fault(faults))
            if plan.before is not None or plan.after is not None:
                owner.counters["faults"] += 1
            return plan

    def _random_fault(self, faults: Faults) -> tuple[_Reply | str | None, str | None]:
        rng = self._fault_rng
        if faults.error_rate and rng.random() < faults.error_rate:
            return (UNAVAILABLE, None) if rng.random() < 0.5 else (None, "500")
        if faults.reset_rate and rng.random() < faults.reset_rate:
            return ("reset", None) if rng.random() < 0.5 else (None, "reset")
        return None, None

    def _call(self, partner: str, method: str, segments: tuple[str, ...],
              query: Mapping[str, str], headers: Message, raw: bytes) -> _Reply:
        """Answer one partner request (no faults): route, authorise, replay or do it."""
        if not any(route.match(method, segments) is not None
                   for route in self._partners[partner].routes):
            return _error(404, f"nothing at {method} /{partner}/{'/'.join(segments)}"[:200])
        key = headers.get("Idempotency-Key") if method in WRITES else None
        body: Obj = {}
        refusal: _Refused | None = None
        if method in WRITES:
            try:
                if not key or len(key) > MAX_KEY_CHARS:
                    raise _Refused(400, "a write needs an Idempotency-Key header of 1 to "
                                   f"{MAX_KEY_CHARS} characters")
                body = _json_object(raw)
            except _Refused as refused:
                refusal = refused
        with self._lock:
            owner = self._partners[partner]  # the current one, if a reset replaced it
            route, params = next((route, params) for route in owner.routes
                                 if (params := route.match(method, segments)) is not None)
            try:
                if refusal is not None:
                    raise refusal
                if not route.public:
                    owner.authorize(headers.get("Authorization"))
            except _Refused as refused:
                owner.counters["refused"] += 1
                return _error(refused.status, refused.message)
            if key is not None and key in owner.answers:
                owner.counters["duplicates"] += 1
                first = owner.answers[key]
                return _Reply(first.status, first.body, (("Idempotent-Replayed", "true"),))
            try:
                status, data = route.handler(_Call(body, query, params))
                reply = _reply(status, data)
            except _Refused as refused:
                reply = _error(refused.status, refused.message)
            owner.counters["accepted" if reply.status < 400 else "refused"] += 1
            if key is not None:
                owner.answers[key] = reply
            return reply

    def _control(self, method: str, segments: tuple[str, ...], query: Mapping[str, str],
                 raw: bytes) -> _Reply:
        """The ``/_sim`` endpoints (no auth, no faults)."""
        action = segments[0] if len(segments) == 1 else ""
        allowed = {"state": "GET", "seed": "POST", "generate": "POST", "faults": "POST",
                   "reset": "POST"}
        if action not in allowed:
            return _error(404, f"nothing at /_sim/{'/'.join(segments)}"[:200])
        if method != allowed[action] and not (action == "faults" and method == "GET"):
            return _error(405, f"/_sim/{action} takes {allowed[action]}")
        try:
            if action == "state":
                return _reply(200, self.state(query.get("partner") or None))
            if action == "reset":
                self.reset()
                return _reply(200, {"reset": True})
            if action == "faults":
                if method == "POST":
                    self.set_faults(Faults.from_json(_json_object(raw), self._faults))
                return _reply(200, asdict(self._faults))
            body = _json_object(raw)
            if action == "seed":
                return _reply(200, {"seeded": self.seed(body)})
            made = self.generate(str(body.get("partner")), str(body.get("collection")),
                                 body.get("count", 1), body.get("products"),
                                 body.get("customers"))
            ids = [obj.get("id", obj.get("code", obj.get("product"))) for obj in made]
            return _reply(200, {"generated": len(made), "ids": ids})
        except (SimulatorInputError, TypeError) as error:
            return _error(400, str(error).splitlines()[0][:300] if str(error) else "bad body")
        except _Refused as refusal:
            return _error(refusal.status, refusal.message)


def _json_object(raw: bytes) -> Obj:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _Refused(400, "the body is not JSON in UTF-8") from None
    if not isinstance(body, dict):
        raise _Refused(400, "expected a JSON object")
    return body


def _read_seed_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SimulatorInputError(f"seed file {path} does not exist") from None
    except UnicodeDecodeError:
        raise SimulatorInputError(f"seed file {path} is not UTF-8 text") from None
    except OSError as error:
        raise SimulatorInputError(f"seed file {path} cannot be read "
                                  f"({error.strerror or error})") from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise SimulatorInputError(f"seed file {path} is not JSON (line {error.lineno}: "
                                  f"{error.msg})" if isinstance(error, json.JSONDecodeError)
                                  else f"seed file {path} is not JSON") from None
    return data


# --- HTTP --------------------------------------------------------------------------


class _Handler(SimulatorRequestHandler):
    server: LoopbackHttpServer[PartnerSimulator]
    server_version = "soa-partner-simulator"
    max_body = MAX_BODY

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _dispatch(self, method: str, path: str, segments: tuple[str, ...],
                  query: dict[str, str], raw: bytes) -> None:
        simulator = self.server.simulator
        if segments[:1] == ("_sim",):
            self._send(simulator._control(method, segments[1:], query, raw))
            return
        if not segments or segments[0] not in PARTNERS:
            self._send(_error(404, f"no partner at {path[:80]}; the partners are "
                              f"/{', /'.join(PARTNERS)}"))
            return
        try:
            plan = simulator._plan(segments[0], self.headers.get("X-Sim-Fault"))
        except _Refused as refusal:
            self._send(_error(refusal.status, refusal.message))
            return
        if plan.latency:
            time.sleep(plan.latency)
        if plan.before == "reset":
            self._drop()
        elif isinstance(plan.before, _Reply):
            self._send(plan.before)
        else:
            reply = simulator._call(segments[0], method, segments[1:], query, self.headers,
                                    raw)
            if plan.after == "reset":
                self._drop()
            else:
                self._send(LOST if plan.after == "500" else reply)

    def _refuse_body(self, status: int, detail: str) -> None:
        self._send(_error(status, detail))

    def _send(self, reply: _Reply) -> None:
        self._respond(reply.status, "application/json; charset=utf-8", reply.body,
                      reply.headers)
