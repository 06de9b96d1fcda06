"""The KSeF simulator's wire vocabulary: a :class:`Request` below ``/v2``, an
:class:`Answer`, KSeF's error shapes (``exception.exceptionDetailList``; problem details
for 401) as :class:`Refusal`, timestamps and reference numbers."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

WARSAW = ZoneInfo("Europe/Warsaw")
VALIDATION = 21405
"""KSeF's exception code for input that fails validation."""
NOT_FOUND = 21404
"""The simulator's own exception code for an unknown reference."""

Obj = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """One API request: ``path`` is the segments after ``/v2``; ``headers`` by lower-case
    name."""

    method: str
    path: tuple[str, ...]
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Answer:
    """One answer: status, body, its content type and further headers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def now() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def json_answer(status: int, data: Any, content_type: str = "application/json",
                *headers: tuple[str, str]) -> Answer:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Answer(status, body, f"{content_type}; charset=utf-8", headers)


class Refusal(Exception):
    """An error answer instead of the work."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


def refusal(status: int, code: int, description: str, *details: str) -> Refusal:
    """KSeF's exception answer (``exception.exceptionDetailList``)."""
    detail: Obj = {"exceptionCode": code, "exceptionDescription": description}
    if details:
        detail["details"] = list(details)
    return Refusal(json_answer(status, {"exception": {
        "exceptionDetailList": [detail],
        "serviceCode": f"{random.getrandbits(64):016x}",
        "serviceCtx": "srvKSEFSIM",
        "serviceName": "Symulator KSeF",
        "timestamp": stamp(now()),
    }}))


def invalid(*details: str) -> Refusal:
    """400: KSeF's input-validation error (21405) with ``details``."""
    return refusal(400, VALIDATION, "Błąd walidacji danych wejściowych.", *details)


def unauthorized(path: tuple[str, ...], detail: str) -> Refusal:
    """401 in problem-details form."""
    return Refusal(json_answer(401, {
        "title": "Unauthorized", "status": 401, "detail": detail,
        "instance": "/v2/" + "/".join(path), "timestamp": stamp(now()),
    }, "application/problem+json"))


def b64(text: Any, name: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise invalid(f"'{name}' must not be empty.")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"'{name}' is not valid base64.") from None


def sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def parse_json(raw: bytes) -> Obj:
    """The body as a JSON object.

    :raises Refusal: 400 if it is not one.
    """
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise invalid("The body is not JSON in UTF-8.") from None
    if not isinstance(body, dict):
        raise invalid("Expected a JSON object.")
    return body


def bearer(request: Request) -> str:
    """The token of the request's ``Authorization: Bearer`` header ("" without one)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def reference(rng: random.Random, kind: str) -> str:
    """A reference number shaped like KSeF's: ``YYYYMMDD-KK-XXXXXXXXXX-XXXXXXXXXX-XX``
    (``kind``: CR challenge, AU authentication, SO session, EE invoice, ...)."""
    digits = f"{rng.getrandbits(80):020X}"
    return (f"{now().astimezone(WARSAW):%Y%m%d}-{kind}-{digits[:10]}-{digits[10:]}-"
            f"{rng.getrandbits(8):02X}")
