"""The field types every company data entry is made of: money as exact two-decimal
amounts, quantities, codes, NIPs, phones, Polish-time datetimes, and :class:`Entry`,
the base that refuses unknown fields."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)

from engine.erp.money import money_text

WARSAW = ZoneInfo("Europe/Warsaw")
"""Naive times in the document are Polish time."""


def _text_only(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"must be a string with two decimals, such as \"{value:.2f}\" "
                         "(a JSON number can lose groszy)")
    return value


def _two_decimals(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite amount")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError("must have at most two decimals, such as \"1234.50\"")
    return value.quantize(Decimal("0.01"))


def _not_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


Money = Annotated[
    Decimal,
    BeforeValidator(_text_only),
    AfterValidator(_two_decimals),
    AfterValidator(_not_negative),
    PlainSerializer(money_text, return_type=str, when_used="json"),
    Field(json_schema_extra={"type": "string", "pattern": r"^\d+(\.\d{1,2})?$"}),
]
"""A non-negative amount with at most two decimals; a string with two decimals in JSON."""


def _four_decimals(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        raise ValueError("must have at most four decimals")
    return value


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


Signed = Annotated[
    Decimal,
    AfterValidator(_four_decimals),
    PlainSerializer(lambda value: format(value.normalize(), "f"), return_type=str,
                    when_used="json"),
]
"""A quantity that may be negative (a correction) or zero (no stock), four decimals."""
Quantity = Annotated[Signed, AfterValidator(_positive)]
"""A positive quantity, four decimals."""
Code = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^\S(.*\S)?$")]
"""A code people type: 1 to 60 characters, no leading or trailing space."""
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, such as PLN")]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]

_PHONE_DIGITS = re.compile(r"[\s()-]")


def normal_nip(value: str) -> str:
    """``value`` as ten digits if it is a valid Polish NIP (dashes, spaces and a ``PL``
    prefix allowed).

    :raises ValueError: otherwise.
    """
    from stdnum.exceptions import ValidationError as NipError
    from stdnum.pl import nip

    try:
        return str(nip.validate(value.upper().removeprefix("PL")))
    except NipError:
        raise ValueError(
            f"{value!r} is not a valid NIP; expected 10 digits with a correct check digit, "
            "such as 5260250274"
        ) from None


def normal_phone(value: str) -> str:
    """``value`` in E.164 form; nine Polish digits get ``+48``.

    :raises ValueError: for anything else.
    """
    digits = _PHONE_DIGITS.sub("", value)
    if re.fullmatch(r"[0-9]{9}", digits):
        digits = "+48" + digits
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not re.fullmatch(r"\+[0-9]{8,15}", digits):
        raise ValueError(
            f"{value!r} is not a phone number; expected +48600100200 or nine digits"
        )
    return digits


Nip = Annotated[str, AfterValidator(normal_nip)]
Phone = Annotated[str, AfterValidator(normal_phone)]


def polish_time(value: datetime) -> datetime:
    """``value`` with a time zone: a naive time is Polish time."""
    return value.replace(tzinfo=WARSAW) if value.tzinfo is None else value


AwareDatetime = Annotated[datetime, AfterValidator(polish_time)]


class Entry(BaseModel):
    """Every document model refuses unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


