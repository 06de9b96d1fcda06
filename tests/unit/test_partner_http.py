"""PartnerHttp against httpx.MockTransport partners that keep the common rules of
/tmp/spec/partners.md: bearer auth, Idempotency-Key, {"error": ...}, 429 with Retry-After.
Sleeping and the clock are injected: nothing here really waits."""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal

import httpx
import pytest

from engine.adapters.partners.http import (
    MAX_RETRY_AFTER,
    PartnerHttp,
    PartnerHttpStats,
    PartnerRequestError,
    PartnerUnavailableError,
    json_dumps,
    partner_client,
)
from engine.domain.errors import SoaError

BASE_URL = "http://partners.test/esklep"
TOKEN = "tok-5f3a9c-secret-bearer"
PERSONAL = "Jan Kowalski, ul. Polna 7"

Handler = Callable[[httpx.Request], httpx.Response]


class Sleeps:
    """Records the pauses asked for and moves a fake monotonic clock by them."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self.now = 1000.0

    def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


class Highest(random.Random):
    """Jitter that always draws the top of the range, to show the backoff's ceilings."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Scripted:
    """Answers each request with the next outcome: a status (with a JSON error), a
    ready response, or an exception to raise; then 200 {"ok": true}."""

    def __init__(self, *outcomes: int | httpx.Response | Exception) -> None:
        self.outcomes: Iterator[int | httpx.Response | Exception] = iter(outcomes)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        outcome = next(self.outcomes, 200)
        if isinstance(outcome, Exception):
            raise outcome
        if isinstance(outcome, httpx.Response):
            return outcome
        if outcome == 200:
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(outcome, json={"error": f"simulated {outcome}"})


def bearer() -> Mapping[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def http_for(handler: Handler, sleeps: Sleeps | None = None, **options: object) -> PartnerHttp:
    sleeps = sleeps or Sleeps()
    client = partner_client(BASE_URL, transport=httpx.MockTransport(handler))
    defaults: dict[str, object] = {
        "sleep": sleeps,
        "clock": sleeps.clock,
        "random": random.Random(7),
        "auth": bearer,
    }
    return PartnerHttp(client, "esklep", **{**defaults, **options})  # type: ignore[arg-type]


# --- the happy path ----------------------------------------------------------------


def test_get_joins_the_path_to_the_base_url_and_returns_the_json() -> None:
    partner = Scripted(httpx.Response(200, json={"customers": [], "next_cursor": "c-9"}))
    http = http_for(partner)

    answer = http.get("/customers", params={"cursor": "c-8", "limit": 100})

    assert answer == {"customers": [], "next_cursor": "c-9"}
    [request] = partner.requests
    assert request.method == "GET"
    assert str(request.url) == "http://partners.test/esklep/customers?cursor=c-8&limit=100"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("soa-engine/")
    assert "Idempotency-Key" not in request.headers
    assert http.stats == PartnerHttpStats(attempts=1, retries=0, throttled=0, failures=0)


def test_send_posts_compact_utf8_json_with_the_idempotency_key() -> None:
    partner = Scripted(httpx.Response(200, json={"upserted": 1}))
    body = {"products": [{"code": "P-1", "name": "Żółty kubek", "price": Decimal("12.30"),
                          "stock": Decimal("2.5"), "big": Decimal("1E+1")}]}

    answer = http_for(partner).send("post", "/products", body, idempotency_key="c7/products/1")

    assert answer == {"upserted": 1}
    [request] = partner.requests
    assert request.method == "POST"
    assert request.headers["Idempotency-Key"] == "c7/products/1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.content == (
        '{"products":[{"code":"P-1","name":"Żółty kubek","price":"12.30","stock":"2.5",'
        '"big":"10"}]}'
    ).encode()


def test_json_dumps_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError, match="a set cannot be sent as JSON"):
        json_dumps({"codes": {"a"}})
    with pytest.raises(ValueError):
        json_dumps({"price": float("nan")})


def test_an_empty_answer_is_none_and_a_non_json_answer_is_refused() -> None:
    assert http_for(Scripted(httpx.Response(204))).send(
        "DELETE", "/groups/A", {}, idempotency_key="k") is None

    with pytest.raises(PartnerRequestError) as caught:
        http_for(Scripted(httpx.Response(200, text="<html>ok</html>"))).get("/orders")
    assert str(caught.value) == "esklep GET /orders answered 200 OK with a body that is not JSON"


# --- retries -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        503,
        500,
        502,
        429,
        408,
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
    ],
    ids=str,
)
def test_a_transient_failure_is_retried(failure: int | Exception) -> None:
    partner = Scripted(failure, failure)
    sleeps = Sleeps()
    http = http_for(partner, sleeps)

    assert http.get("/orders") == {"ok": True}

    assert len(partner.requests) == 3
    assert len(sleeps.pauses) == 2
    throttled = 2 if failure == 429 else 0
    assert http.stats == PartnerHttpStats(attempts=3, retries=2, throttled=throttled, failures=0)


def test_the_same_idempotency_key_and_body_go_with_every_retry() -> None:
    partner = Scripted(503, httpx.ReadTimeout("timed out"), 500)

    http_for(partner).send("PUT", "/me/sales/updateStatus", {"sales": [{"id": "S1"}]},
                           idempotency_key="company-7/sales/S1/accepted")

    assert len(partner.requests) == 4
    assert {r.headers["Idempotency-Key"] for r in partner.requests} == {
        "company-7/sales/S1/accepted"}
    assert {r.content for r in partner.requests} == {b'{"sales":[{"id":"S1"}]}'}


def test_the_backoff_doubles_up_to_its_cap() -> None:
    sleeps = Sleeps()
    http = http_for(Scripted(*[503] * 7), sleeps, random=Highest(), max_attempts=8,
                    backoff_base=0.5, backoff_max=5.0)

    assert http.get("/orders") == {"ok": True}

    assert sleeps.pauses == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_the_backoff_is_jittered_below_its_ceilings() -> None:
    sleeps = Sleeps()
    http = http_for(Scripted(*[503] * 9), sleeps, random=random.Random(1), max_attempts=10,
                    backoff_base=0.5, backoff_max=30.0)

    http.get("/orders")

    ceilings = [min(30.0, 0.5 * 2**n) for n in range(9)]
    assert all(0 <= pause <= ceiling for pause, ceiling in zip(sleeps.pauses, ceilings, strict=True))
    assert sleeps.pauses != ceilings
    assert len(set(sleeps.pauses)) == 9


def test_retry_after_in_seconds_is_waited_at_least() -> None:
    throttled = httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "slow down"})
    sleeps = Sleeps()
    http = http_for(Scripted(throttled), sleeps)

    assert http.get("/orders") == {"ok": True}

    assert sleeps.pauses == [7.0]  # the jitter (at most 0.5 s) is below it
    assert http.stats.throttled == 1


def test_retry_after_as_an_http_date_is_waited_at_least() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    unavailable = httpx.Response(503, headers={"Retry-After": when}, json={"error": "later"})
    sleeps = Sleeps()

    http_for(Scripted(unavailable), sleeps).get("/orders")

    [pause] = sleeps.pauses
    assert 28.0 <= pause <= 31.0


@pytest.mark.parametrize("value", ["86400", email.utils.formatdate(time.time() + 86400, usegmt=True)])
def test_retry_after_is_capped(value: str) -> None:
    sleeps = Sleeps()

    http_for(Scripted(httpx.Response(429, headers={"Retry-After": value})), sleeps).get("/orders")

    assert sleeps.pauses == [MAX_RETRY_AFTER]


@pytest.mark.parametrize("value", ["soon", "-5", email.utils.formatdate(time.time() - 60, usegmt=True)])
def test_a_useless_retry_after_falls_back_to_the_backoff(value: str) -> None:
    sleeps = Sleeps()

    http_for(Scripted(httpx.Response(429, headers={"Retry-After": value})), sleeps,
             random=Highest()).get("/orders")

    assert sleeps.pauses == [0.5]


def test_exhausted_attempts_raise_unavailable_with_the_count_and_the_last_cause() -> None:
    partner = Scripted(503, httpx.ConnectError("[Errno 111] Connection refused"), 429, 500)
    sleeps = Sleeps()
    http = http_for(partner, sleeps, max_attempts=4)

    with pytest.raises(PartnerUnavailableError) as caught:
        http.send("POST", "/products", {"products": []}, idempotency_key="k-1")

    assert str(caught.value) == (
        "esklep POST /products failed after 4 attempts; the last: 500 Internal Server Error: "
        "simulated 500"
    )
    assert isinstance(caught.value, SoaError)
    assert caught.value.attempts == 4
    assert len(partner.requests) == 4
    assert len(sleeps.pauses) == 3  # none after the last attempt
    assert http.stats == PartnerHttpStats(attempts=4, retries=3, throttled=1, failures=1)


def test_a_transport_error_as_the_last_cause_is_named() -> None:
    failure = httpx.ConnectError("[Errno 111] Connection refused")
    http = http_for(Scripted(failure, failure), max_attempts=2)

    with pytest.raises(PartnerUnavailableError) as caught:
        http.get("/orders")

    assert str(caught.value) == (
        "esklep GET /orders failed after 2 attempts; the last: ConnectError: [Errno 111] "
        "Connection refused"
    )


# --- refusals ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_a_refusal_is_raised_at_once(status: int) -> None:
    partner = Scripted(httpx.Response(status, json={"error": "no such order\nsecond line"}))
    sleeps = Sleeps()
    http = http_for(partner, sleeps)

    with pytest.raises(PartnerRequestError) as caught:
        http.send("POST", "/orders/77/confirm", {"erp_number": "FS 1/2026"},
                  idempotency_key="c7/confirm/77")

    reason = httpx.codes.get_reason_phrase(status)
    assert str(caught.value) == (
        f"esklep POST /orders/77/confirm refused: {status} {reason}: no such order"
    )
    assert (caught.value.partner, caught.value.method, caught.value.path, caught.value.status) == (
        "esklep", "POST", "/orders/77/confirm", status)
    assert len(partner.requests) == 1
    assert sleeps.pauses == []
    assert http.stats == PartnerHttpStats(attempts=1, retries=0, throttled=0, failures=1)


def test_a_refusal_without_an_error_text_says_so_and_never_shows_the_body() -> None:
    partner = Scripted(httpx.Response(400, text=f"bad customer {PERSONAL}"))

    with pytest.raises(PartnerRequestError) as caught:
        http_for(partner).get("/customers")

    assert str(caught.value) == "esklep GET /customers refused: 400 Bad Request: (no error text)"


def test_a_bad_request_url_is_refused_without_retrying() -> None:
    http = http_for(Scripted(httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'.")))

    with pytest.raises(PartnerRequestError) as caught:
        http.get("/orders")

    assert str(caught.value).startswith("esklep GET /orders cannot be done: UnsupportedProtocol")
    assert http.stats.attempts == 1


def test_send_refuses_a_read_method_or_a_bad_idempotency_key() -> None:
    http = http_for(Scripted())
    with pytest.raises(ValueError, match="use get to read"):
        http.send("GET", "/orders", {}, idempotency_key="k")
    for key in ["", "x" * 201, "zamówienie-7", "a\nb"]:
        with pytest.raises(ValueError, match="1 to 200 printable ASCII"):
            http.send("POST", "/orders", {}, idempotency_key=key)


# --- authorisation -------------------------------------------------------------------


def test_a_401_renews_the_authorisation_once_and_retries_with_the_new_header() -> None:
    tokens = iter(["old-token-1111", "new-token-2222"])
    current = {"token": next(tokens)}

    def renew() -> None:
        current["token"] = next(tokens)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer new-token-2222":
            return httpx.Response(200, json={"sales": []})
        return httpx.Response(401, json={"error": "invalid_token"})

    seen: list[str] = []

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return handler(request)

    sleeps = Sleeps()
    http = http_for(spy, sleeps, max_attempts=1,
                    auth=lambda: {"Authorization": f"Bearer {current['token']}"},
                    on_unauthorized=renew)

    assert http.get("/me/sales") == {"sales": []}

    assert seen == ["Bearer old-token-1111", "Bearer new-token-2222"]
    assert sleeps.pauses == []
    assert http.stats == PartnerHttpStats(attempts=2, retries=1, throttled=0, failures=0)


def test_a_second_401_is_a_refusal() -> None:
    renewals: list[None] = []
    partner = Scripted(401, 401, 401)
    http = http_for(partner, on_unauthorized=lambda: renewals.append(None))

    with pytest.raises(PartnerRequestError) as caught:
        http.get("/me/sales")

    assert str(caught.value) == "esklep GET /me/sales refused: 401 Unauthorized: simulated 401"
    assert len(renewals) == 1
    assert len(partner.requests) == 2


def test_a_401_without_a_way_to_renew_is_a_refusal_at_once() -> None:
    partner = Scripted(401)

    with pytest.raises(PartnerRequestError):
        http_for(partner).get("/me/sales")

    assert len(partner.requests) == 1


# --- the rate limit ------------------------------------------------------------------


def test_the_rate_limit_spaces_requests() -> None:
    sleeps = Sleeps()
    sent_at: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(sleeps.now)
        return httpx.Response(200, json={})

    http = http_for(handler, sleeps, rate_limit=4.0)
    for _ in range(5):
        http.get("/orders")

    assert sent_at == [1000.0, 1000.25, 1000.5, 1000.75, 1001.0]
    sleeps.now += 10.0  # idle: the next request goes at once
    http.get("/orders")
    assert sleeps.pauses == [0.25, 0.25, 0.25, 0.25]


def test_threads_share_the_rate_limit() -> None:
    pauses: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            pauses.append(seconds)

    http = http_for(Scripted(), rate_limit=10.0, sleep=sleep, clock=lambda: 50.0)
    threads = [threading.Thread(target=http.get, args=("/orders",)) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Check: with the clock standing still, each thread got its own slot 0.1 s apart
    assert sorted(round(pause, 6) for pause in pauses) == [round(0.1 * n, 6) for n in range(1, 20)]
    assert http.stats.attempts == 20


# --- nothing secret in messages or logs ----------------------------------------------


def test_no_token_body_or_query_in_any_message_or_log(caplog: pytest.LogCaptureFixture) -> None:
    echo = {"error": f"token {TOKEN} rejected"}
    partner = Scripted(
        httpx.ConnectError(f"cannot connect with Bearer {TOKEN}"),
        httpx.Response(503, json=echo),
        httpx.Response(400, json=echo),
    )
    caplog.set_level(logging.DEBUG, logger="engine.adapters.partners.http")

    with pytest.raises(PartnerRequestError) as caught:
        http_for(partner).send("POST", f"/customers?access_token={TOKEN}", {"name": PERSONAL},
                               idempotency_key="c7/customers/1")

    texts = [str(caught.value), *(record.getMessage() for record in caplog.records)]
    assert len(texts) == 3
    for text in texts:
        assert TOKEN not in text
        assert "access_token" not in text
        assert PERSONAL not in text
        assert "\n" not in text
    assert str(caught.value) == (
        "esklep POST /customers refused: 400 Bad Request: token *** rejected"
    )


def test_the_request_body_never_reaches_a_message() -> None:
    partner = Scripted(500, 500)

    with pytest.raises(PartnerUnavailableError) as caught:
        http_for(partner, max_attempts=2).send("POST", "/customers", {"name": PERSONAL},
                                               idempotency_key="k")

    assert PERSONAL not in str(caught.value)


# --- the pooled client ---------------------------------------------------------------


def test_partner_client_is_pooled_http11_with_the_engine_user_agent() -> None:
    client = partner_client("http://127.0.0.1:8900/detal", timeout=12.0, pool=4)

    assert client.base_url == httpx.URL("http://127.0.0.1:8900/detal/")
    assert client.timeout == httpx.Timeout(12.0, connect=10.0)
    assert client.headers["User-Agent"].startswith("soa-engine/")
    assert not client.follow_redirects
    client.close()
    with pytest.raises(ValueError, match="pool must be at least 1"):
        partner_client("http://x", pool=0)


def test_options_out_of_range_are_refused() -> None:
    client = partner_client(BASE_URL)
    with pytest.raises(ValueError, match="max_attempts"):
        PartnerHttp(client, "esklep", max_attempts=0)
    with pytest.raises(ValueError, match="backoff"):
        PartnerHttp(client, "esklep", backoff_base=5.0, backoff_max=1.0)
    with pytest.raises(ValueError, match="rate_limit"):
        PartnerHttp(client, "esklep", rate_limit=0)


def test_the_stats_are_a_snapshot_of_plain_ints() -> None:
    http = http_for(Scripted(429))
    http.get("/orders")

    stats = http.stats
    http.get("/orders")

    assert (stats.attempts, stats.retries, stats.throttled, stats.failures) == (2, 1, 1, 0)
    assert http.stats.attempts == 3
    assert all(type(count) is int for count in
               (stats.attempts, stats.retries, stats.throttled, stats.failures))
