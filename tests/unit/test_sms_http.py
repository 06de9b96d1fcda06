"""HttpSmsSender against an httpx.MockTransport gateway that keeps the JSON contract."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from engine.adapters.sms_http import HttpSmsSender
from engine.ports.outbound import DeliveryError, OutboundSms, SmsGateway

TOKEN = "tok-5f3a9c-secret"
URL = "https://sms.example.com/v1/messages"
GATEWAY = SmsGateway(url=URL, token=TOKEN, sender="FIRMA")

Handler = Callable[[httpx.Request], httpx.Response]


class FakeGateway:
    """Keeps one message per idempotency key, as the contract asks of a gateway."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.by_key: dict[str, str] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = request.headers["Idempotency-Key"]
        message_id = self.by_key.setdefault(key, f"msg-{len(self.by_key) + 1}")
        return httpx.Response(201, json={"id": message_id, "status": "queued"})


def sender_for(handler: Handler) -> HttpSmsSender:
    return HttpSmsSender(httpx.Client(transport=httpx.MockTransport(handler), timeout=5.0))


def sms(to: str = "+48600100200", key: str = "run-1/reminder") -> OutboundSms:
    return OutboundSms(
        to=to, text="Przypomnienie: zapłać fakturę 7/2024 – dziękujemy!", idempotency_key=key
    )


def test_request_follows_the_contract_and_the_id_is_returned() -> None:
    gateway = FakeGateway()
    assert sender_for(gateway).send(GATEWAY, sms()) == "msg-1"

    [request] = gateway.requests
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Idempotency-Key"] == "run-1/reminder"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "to": "+48600100200",
        "text": "Przypomnienie: zapłać fakturę 7/2024 – dziękujemy!",
        "sender": "FIRMA",
        "idempotency_key": "run-1/reminder",
    }


def test_a_repeated_attempt_carries_the_same_key_and_gets_the_same_id() -> None:
    gateway = FakeGateway()
    sender = sender_for(gateway)
    first = sender.send(GATEWAY, sms())
    again = sender.send(GATEWAY, sms())
    other = sender.send(GATEWAY, sms(key="run-2/reminder"))
    assert first == again != other
    keys = [request.headers["Idempotency-Key"] for request in gateway.requests]
    assert keys == ["run-1/reminder", "run-1/reminder", "run-2/reminder"]


@pytest.mark.parametrize("number", ["+12345678", "+123456789012345", "+48600100200"])
def test_e164_numbers_of_8_to_15_digits_are_sent(number: str) -> None:
    gateway = FakeGateway()
    sender_for(gateway).send(GATEWAY, sms(to=number))
    assert json.loads(gateway.requests[0].content)["to"] == number


@pytest.mark.parametrize(
    "number",
    ["600100200", "0048600100200", "+48 600 100 200", "+48-600-100-200", "+1234567",
     "+1234567890123456", "++48600100200", "+48600100200\n", "", "+４８600100200"],
)  # fmt: skip
def test_an_invalid_number_is_refused_before_any_request(number: str) -> None:
    gateway = FakeGateway()
    with pytest.raises(DeliveryError, match=r"E\.164.*\+ and 8 to 15 digits") as caught:
        sender_for(gateway).send(GATEWAY, sms(to=number))
    assert repr(number) in str(caught.value)
    assert gateway.requests == []


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            httpx.Response(400, json={"error": "text too long (max 918 characters)"}),
            f"SMS gateway {URL} refused the message: 400 Bad Request: text too long (max 918 characters)",
        ),
        (
            httpx.Response(401, text=f"token {TOKEN} is not valid\nsee the docs"),
            f"SMS gateway {URL} refused the message: 401 Unauthorized: token *** is not valid",
        ),
        (
            httpx.Response(422, text="x" * 500),
            f"SMS gateway {URL} refused the message: 422 Unprocessable Entity: {'x' * 200}",
        ),
        (
            httpx.Response(429, text=""),
            f"SMS gateway {URL} refused the message: 429 Too Many Requests: (no text)",
        ),
        (
            httpx.Response(503, json={"error": "maintenance until 22:00"}),
            f"SMS gateway {URL} failed: 503 Service Unavailable: maintenance until 22:00",
        ),
        (
            httpx.Response(500, text="<html>\n<h1>Internal error</h1>"),
            f"SMS gateway {URL} failed: 500 Internal Server Error: <html>",
        ),
        (
            httpx.Response(302, headers={"Location": "https://elsewhere.example"}),
            f"SMS gateway {URL} answered unexpectedly: 302 Found",
        ),
    ],
)
def test_error_answers_name_the_status_and_the_gateways_text_but_never_the_token(
    response: httpx.Response, expected: str
) -> None:
    with pytest.raises(DeliveryError) as caught:
        sender_for(lambda request: response).send(GATEWAY, sms())
    assert str(caught.value) == expected
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    "response",
    [httpx.Response(200, json={"status": "queued"}), httpx.Response(200, text="OK"),
     httpx.Response(200, json={"id": ""}), httpx.Response(200, json=["msg-1"])],
)  # fmt: skip
def test_a_success_without_an_id_is_a_delivery_error(response: httpx.Response) -> None:
    with pytest.raises(DeliveryError, match="answered 200 OK without an id"):
        sender_for(lambda request: response).send(GATEWAY, sms())


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "cannot be reached: [Errno 111]"),
        (httpx.ReadTimeout("timed out"), "did not answer in time: timed out"),
        (httpx.ConnectTimeout("timed out"), "did not answer in time"),
        (httpx.RemoteProtocolError(f"bad answer to Bearer {TOKEN}"), "Bearer ***"),
    ],
)
def test_transport_failures_are_delivery_errors_without_the_token(
    error: httpx.HTTPError, expected: str
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(DeliveryError) as caught:
        sender_for(fail).send(GATEWAY, sms())
    assert str(caught.value).startswith(f"SMS gateway {URL} ")
    assert expected in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_the_shown_url_leaves_out_credentials_and_query() -> None:
    gateway = SmsGateway(
        url=f"https://user:pw@sms.example.com:8443/send?key={TOKEN}", token=TOKEN, sender="F"
    )
    with pytest.raises(DeliveryError) as caught:
        sender_for(lambda request: httpx.Response(500)).send(gateway, sms())
    assert str(caught.value).startswith("SMS gateway https://sms.example.com:8443/send failed: 500")


def test_a_url_without_scheme_is_a_delivery_error() -> None:
    gateway = SmsGateway(url="sms.example.com/send", token=TOKEN, sender="F")
    with (
        httpx.Client() as client,  # the real transport refuses it before any connection
        pytest.raises(
            DeliveryError, match=r"SMS gateway 'sms\.example\.com/send' cannot be reached"
        ),
    ):
        HttpSmsSender(client).send(gateway, sms())


@pytest.mark.parametrize("key", ["run-1/żółw", "run-1\nInjected: yes", ""])
def test_a_key_that_cannot_be_a_header_is_refused_before_any_request(key: str) -> None:
    gateway = FakeGateway()
    with pytest.raises(DeliveryError, match="cannot be sent in a header; expected printable ASCII"):
        sender_for(gateway).send(GATEWAY, sms(key=key))
    assert gateway.requests == []


def test_a_token_that_cannot_be_a_header_is_refused_without_showing_it() -> None:
    token = "tóken-secret"
    gateway = FakeGateway()
    with pytest.raises(DeliveryError, match=f"the token of SMS gateway {URL} cannot") as caught:
        sender_for(gateway).send(SmsGateway(url=URL, token=token, sender="F"), sms())
    assert token not in str(caught.value)
    assert gateway.requests == []


def test_the_token_is_not_in_the_gateways_repr() -> None:
    assert TOKEN not in repr(GATEWAY)
