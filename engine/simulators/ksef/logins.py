"""KSeF 2.0 logins as the simulator answers them: a challenge; then a KSeF token
encrypted with RSA-OAEP (``token|timestampMs``, the challenge's timestamp) or a signed
AuthTokenRequest (XAdES, a certificate of the simulator's CA for the context NIP);
``GET /auth/{ref}`` says 100 at its first poll, then 200 or the failure (415 no
permission for the context, 450 wrong token or timestamp, 460 certificate refused);
the authentication token is redeemed once for an access token (15 minutes) and a
refresh token (7 days), both bound to the context NIP."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.simulators.ksef.keys import TOKEN_ENCRYPTION, CertificateRefusedError, KeyRing
from engine.simulators.ksef.wire import (
    NOT_FOUND,
    Answer,
    Obj,
    Request,
    b64,
    bearer,
    invalid,
    json_answer,
    now,
    parse_json,
    reference,
    refusal,
    stamp,
    unauthorized,
)
from engine.simulators.ksef.xades import XadesError, read_signed_auth_request

CHALLENGE_SECONDS = 600
AUTHENTICATION_SECONDS = 900
ACCESS_SECONDS = 900
REFRESH_SECONDS = 7 * 24 * 3600
SUCCESS = (200, "Uwierzytelnianie zakończone sukcesem", None)
NO_PERMISSION = (415, "Uwierzytelnianie zakończone niepowodzeniem",
                 "Brak przypisanych uprawnień")
WRONG_TOKEN = "Uwierzytelnianie zakończone niepowodzeniem z powodu błędnego tokenu"
BAD_CERTIFICATE = "Uwierzytelnianie zakończone niepowodzeniem z powodu błędu certyfikatu"

Outcome = tuple[int, str, str | None]
"""An authentication's final status: code, description, detail."""


@dataclass
class _Challenge:
    value: str
    timestamp_ms: int
    expires: float
    used: bool = False


@dataclass
class _Login:
    """An authentication operation and its outcome."""

    reference: str
    token: str
    login: str
    """``token`` or ``certificate``."""
    method: str
    nip: str
    started: datetime
    outcome: Outcome
    expires: float
    polls: int = 0
    redeemed: bool = False


@dataclass
class _Grant:
    kind: str
    """``access`` or ``refresh``."""
    nip: str
    login: str
    expires: float


class Logins:
    """KSeF tokens issued, challenges, authentication operations and the access and
    refresh tokens they gave. Not locked itself: its owner (:class:`KsefApi`) calls it
    under its lock."""

    def __init__(self, keys: KeyRing, rng: random.Random) -> None:
        self._keys = keys
        self._rng = rng
        self.reset()

    def reset(self) -> None:
        """Forget every KSeF token, challenge, login and grant."""
        self._ksef_tokens: dict[str, str] = {}
        self._challenges: dict[str, _Challenge] = {}
        self._logins: dict[str, _Login] = {}
        self._by_token: dict[str, _Login] = {}
        self._grants: dict[str, _Grant] = {}
        self.counts: Counter[str] = Counter()
        """Logins redeemed (``token``, ``certificate``) and ``refused``."""

    def issue_token(self, nip: str) -> str:
        """A new KSeF token for context ``nip``, shaped like KSeF's (reference, NIP and
        a secret separated by ``|``)."""
        token = f"{reference(self._rng, 'EC')}|nip-{nip}|{self._rng.getrandbits(256):064x}"
        self._ksef_tokens[token] = nip
        return token

    def authorize(self, request: Request, credential: str) -> str:
        """The context NIP of the request's bearer token of kind ``credential``
        (``authentication``, ``access`` or ``refresh``).

        :raises Refusal: 401 without a valid one.
        """
        token = bearer(request)
        if not token:
            raise unauthorized(request.path, "Brak tokenu: wymagany nagłówek "
                               "Authorization: Bearer <token>.")
        clock = time.monotonic()
        if credential == "authentication":
            login = self._by_token.get(token)
            if login is None or login.expires < clock:
                raise unauthorized(request.path, "Nieprawidłowy lub wygasły token "
                                   "uwierzytelniający.")
            return login.nip
        grant = self._grants.get(token)
        if grant is None or grant.kind != credential or grant.expires < clock:
            kind = "dostępowy" if credential == "access" else "odświeżający"
            raise unauthorized(request.path, f"Nieprawidłowy lub wygasły token {kind}.")
        return grant.nip

    # --- handlers (route, path parameters, context NIP) ------------------------------

    def public_keys(self, request: Request, params: tuple[str, ...], nip: str) -> Answer:
        return json_answer(200, self._keys.public_key_certificates())

    def challenge(self, request: Request, params: tuple[str, ...], nip: str) -> Answer:
        moment = now()
        challenge = _Challenge(reference(self._rng, "CR"), int(moment.timestamp() * 1000),
                               time.monotonic() + CHALLENGE_SECONDS)
        self._challenges[challenge.value] = challenge
        return json_answer(200, {"challenge": challenge.value, "timestamp": stamp(moment),
                                 "timestampMs": challenge.timestamp_ms,
                                 "clientIp": "127.0.0.1"})

    def token_login(self, request: Request, params: tuple[str, ...], nip: str) -> Answer:
        body = parse_json(request.body)
        context = body.get("contextIdentifier")
        if not isinstance(context, dict):
            raise invalid("'contextIdentifier' must not be empty.")
        context_nip = _context_nip(context.get("type"), context.get("value"))
        encrypted = b64(body.get("encryptedToken"), "encryptedToken")
        challenge = self._take_challenge(body.get("challenge"))
        return self._start("token", "Token", context_nip,
                           self._token_outcome(encrypted, challenge, context_nip))

    def xades_login(self, request: Request, params: tuple[str, ...], nip: str) -> Answer:
        try:
            signed = read_signed_auth_request(request.body)
        except XadesError as error:
            raise invalid(str(error)) from None
        context_nip = _context_nip(signed.context_type, signed.context_value)
        self._take_challenge(signed.challenge)
        outcome: Outcome = SUCCESS
        try:
            if self._keys.check_certificate(signed.certificate, now()) != context_nip:
                outcome = NO_PERMISSION
        except CertificateRefusedError as refused:
            outcome = (460, BAD_CERTIFICATE, str(refused))
        return self._start("certificate", "InternalCertificate", context_nip, outcome)

    def status(self, request: Request, params: tuple[str, ...], nip: str) -> Answer:
        login = self._by_token[bearer(request)]
        if login.reference != params[0]:
            raise refusal(404, NOT_FOUND, "Nie znaleziono operacji uwierzytelnienia.",
                          params[0][:80])
        login.polls += 1
        code, description, detail = ((100, "Uwierzytelnianie w toku", None)
                                     if login.polls == 1 else login.outcome)
        status: Obj = {"code": code, "description": description}
        if detail:
            status["details"] = [detail]
        info = ({"category": "Token", "code": "token.ksef", "displayName": "Token KSeF"}
                if login.login == "token" else
                {"category": "XadesSignature", "code": "certificate.internal",
                 "displayName": "Certyfikat KSeF"})
        return json_answer(200, {"startDate": stamp(login.started),
                                 "authenticationMethod": login.method,
                                 "authenticationMethodInfo": info, "status": status,
                                 "isTokenRedeemed": login.redeemed})

    def redeem(self, request: Request, params: tuple[str, ...], nip: str) -> Answer:
        login = self._by_token[bearer(request)]
        if login.outcome[0] != 200:
            raise invalid("Uwierzytelnianie nie zakończyło się sukcesem "
                          f"({login.outcome[0]}); nie ma tokenów do pobrania.")
        if login.redeemed:
            raise invalid("Tokeny dla tego uwierzytelnienia zostały już pobrane.")
        login.redeemed = True
        self.counts[login.login] += 1
        return json_answer(200, {"accessToken": self._grant("access", login),
                                 "refreshToken": self._grant("refresh", login)})

    def refresh(self, request: Request, params: tuple[str, ...], nip: str) -> Answer:
        login = self._logins[self._grants[bearer(request)].login]
        return json_answer(200, {"accessToken": self._grant("access", login)})

    # --- helpers -----------------------------------------------------------------------

    def _take_challenge(self, value: Any) -> _Challenge:
        challenge = self._challenges.get(value) if isinstance(value, str) else None
        if challenge is None or challenge.used or challenge.expires < time.monotonic():
            raise invalid("'challenge' is unknown, expired or already used.")
        challenge.used = True
        return challenge

    def _token_outcome(self, encrypted: bytes, challenge: _Challenge,
                       context_nip: str) -> Outcome:
        try:
            token, _, timestamp = self._keys.decrypt(TOKEN_ENCRYPTION, encrypted).decode(
                "utf-8").rpartition("|")
        except (ValueError, UnicodeDecodeError):
            return 450, WRONG_TOKEN, "Nieprawidłowy token"
        if timestamp != str(challenge.timestamp_ms):
            return 450, WRONG_TOKEN, "Nieprawidłowy czas tokena"
        owner = self._ksef_tokens.get(token)
        if owner is None:
            return 450, WRONG_TOKEN, "Nieprawidłowy token"
        return SUCCESS if owner == context_nip else NO_PERMISSION

    def _start(self, login: str, method: str, nip: str, outcome: Outcome) -> Answer:
        operation = _Login(reference(self._rng, "AU"),
                           f"auth-{self._rng.getrandbits(256):064x}", login, method, nip,
                           now(), outcome, time.monotonic() + AUTHENTICATION_SECONDS)
        self._logins[operation.reference] = operation
        self._by_token[operation.token] = operation
        if outcome[0] != 200:
            self.counts["refused"] += 1
        valid_until = now() + timedelta(seconds=AUTHENTICATION_SECONDS)
        return json_answer(202, {"referenceNumber": operation.reference,
                                 "authenticationToken": {"token": operation.token,
                                                         "validUntil": stamp(valid_until)}})

    def _grant(self, kind: str, login: _Login) -> Obj:
        seconds = ACCESS_SECONDS if kind == "access" else REFRESH_SECONDS
        token = f"{kind}-{self._rng.getrandbits(256):064x}"
        self._grants[token] = _Grant(kind, login.nip, login.reference,
                                     time.monotonic() + seconds)
        return {"token": token, "validUntil": stamp(now() + timedelta(seconds=seconds))}


def _context_nip(kind: Any, value: Any) -> str:
    if kind != "Nip":
        raise invalid("The simulator accepts only a 'Nip' context identifier.")
    if not isinstance(value, str) or not (len(value) == 10 and value.isdigit()):
        raise invalid("Invalid NIP format.")
    return value
