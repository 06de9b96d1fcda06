"""Text messages through an HTTP SMS gateway that speaks the engine's JSON contract
(docs/outbound.md): ``POST {url}`` with a bearer token and an ``Idempotency-Key``,
answered by ``{"id": "..."}``.

Every failure leaves as :class:`DeliveryError`, one line naming the gateway and the
reason; no message ever contains the token.
"""

from __future__ import annotations

import re

import httpx

from engine.ports.outbound import DeliveryError, OutboundSms, SmsGateway, SmsSender

E164 = re.compile(r"\+[0-9]{8,15}")
"""A phone number as the gateway takes it: ``+`` then 8 to 15 digits, such as +48600100200."""

MAX_ERROR_CHARS = 200


class HttpSmsSender(SmsSender):
    """Posts each message with ``client`` (injected: its timeouts and transport are the
    caller's, and tests give it an ``httpx.MockTransport``)."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def send(self, gateway: SmsGateway, sms: OutboundSms) -> str:
        where = _where(gateway.url)
        if not E164.fullmatch(sms.to):
            raise DeliveryError(
                f"phone number {sms.to!r} is not in E.164 form; expected + and 8 to 15 digits, "
                "such as +48600100200"
            )
        if not _fits_a_header(sms.idempotency_key):
            raise DeliveryError(
                f"idempotency key {sms.idempotency_key!r} cannot be sent in a header; "
                "expected printable ASCII, such as RUN_ID/reminder/7-2024"
            )
        if not _fits_a_header(gateway.token):
            raise DeliveryError(
                f"the token of SMS gateway {where} cannot be sent in a header; "
                "expected printable ASCII"
            )
        try:
            response = self._client.post(
                gateway.url,
                headers={
                    "Authorization": f"Bearer {gateway.token}",
                    "Idempotency-Key": sms.idempotency_key,
                },
                json={
                    "to": sms.to,
                    "text": sms.text,
                    "sender": gateway.sender,
                    "idempotency_key": sms.idempotency_key,
                },
            )
        except httpx.TimeoutException as error:
            raise _failure(
                gateway, f"SMS gateway {where} did not answer in time: {error}"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise _failure(gateway, f"SMS gateway {where} cannot be reached: {error}") from None
        return _message_id(gateway, where, response)


def _message_id(gateway: SmsGateway, where: str, response: httpx.Response) -> str:
    status = f"{response.status_code} {response.reason_phrase}".strip()
    if response.is_success:
        try:
            answer = response.json()
        except ValueError:
            answer = None
        message_id = answer.get("id") if isinstance(answer, dict) else None
        if isinstance(message_id, str) and message_id:
            return message_id
        raise _failure(
            gateway,
            f"SMS gateway {where} answered {status} without an id (expected JSON "
            '{"id": "..."}); sending again with the same idempotency key is safe',
        )
    if response.is_client_error:
        raise _failure(
            gateway, f"SMS gateway {where} refused the message: {status}: {_error_text(response)}"
        )
    if response.is_server_error:
        raise _failure(gateway, f"SMS gateway {where} failed: {status}: {_error_text(response)}")
    raise _failure(gateway, f"SMS gateway {where} answered unexpectedly: {status}")


def _error_text(response: httpx.Response) -> str:
    """The gateway's reason: ``error`` of a JSON answer, else the body's first line."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    text = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(text, str):
        text = response.text
    lines = text.strip().splitlines()
    return lines[0].strip()[:MAX_ERROR_CHARS] if lines else "(no text)"


def _fits_a_header(value: str) -> bool:
    return bool(value) and value.isascii() and value.isprintable()


def _where(url: str) -> str:
    """``url`` without credentials or query, fit to be shown."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or not parsed.scheme or not parsed.host:
        return repr(url.split("?")[0].split("@")[-1])
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}"


def _failure(gateway: SmsGateway, text: str) -> DeliveryError:
    """One line, without the token (should a gateway ever echo it)."""
    if gateway.token:
        text = text.replace(gateway.token, "***")
    return DeliveryError(" ".join(text.split()))
