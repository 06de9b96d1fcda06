"""Money and VAT: amounts are ``Decimal``; VAT is computed per rate on the sum of the net
values of that rate and rounded half up to the grosz (0.01)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Literal

VatRate = Literal["23", "8", "5", "0", "zw"]
VAT_RATES: tuple[VatRate, ...] = ("23", "8", "5", "0", "zw")
"""The Polish VAT rates the engine issues invoices with; ``zw`` is exempt."""

GROSZ = Decimal("0.01")
ZERO = Decimal("0.00")


def to_grosz(amount: Decimal) -> Decimal:
    """``amount`` rounded half up to two decimals."""
    return amount.quantize(GROSZ, rounding=ROUND_HALF_UP)


def money_text(amount: Decimal) -> str:
    """``amount`` as JSON carries it: a string with two decimals, such as ``"1234.50"``."""
    return f"{to_grosz(amount):.2f}"


def vat_fraction(rate: VatRate) -> Decimal:
    """The VAT of one unit of net value at ``rate``: 0 for ``0`` and ``zw``."""
    return Decimal(0) if rate == "zw" else Decimal(rate) / 100


@dataclass(frozen=True)
class Amounts:
    """Net, VAT and gross of a line, a rate or a document; gross = net + VAT."""

    net: Decimal
    vat: Decimal
    gross: Decimal

    def as_json(self) -> dict[str, str]:
        return {"net": money_text(self.net), "vat": money_text(self.vat),
                "gross": money_text(self.gross)}


def line_net(quantity: Decimal, unit_net_price: Decimal) -> Decimal:
    """A line's net value: quantity × unit net price, rounded half up to the grosz."""
    return to_grosz(quantity * unit_net_price)


@dataclass(frozen=True)
class DocumentAmounts:
    """A document's amounts: per line, per VAT rate, and in total.

    The VAT of each rate is computed on the sum of that rate's net values (what the
    law counts) and shared out over its lines by the largest remainder, so the lines'
    VAT adds up to the rate's to the grosz, and the rates' to the total.
    """

    lines: tuple[Amounts, ...]
    by_rate: dict[VatRate, Amounts]
    totals: Amounts


def document_amounts(lines: Sequence[tuple[Decimal, VatRate]]) -> DocumentAmounts:
    """The amounts of a document of ``lines`` given as (net value, VAT rate).

    :raises ValueError: for a negative net value (corrections are not issued here).
    """
    if any(net < 0 for net, _ in lines):
        raise ValueError("a line's net value must not be negative")
    by_rate: dict[VatRate, Amounts] = {}
    line_vat = [ZERO] * len(lines)
    for rate in VAT_RATES:
        members = [index for index, (_, line_rate) in enumerate(lines) if line_rate == rate]
        if not members:
            continue
        fraction = vat_fraction(rate)
        net = sum((lines[index][0] for index in members), ZERO)
        vat = to_grosz(net * fraction)
        exact = {index: lines[index][0] * fraction for index in members}
        for index in members:
            line_vat[index] = exact[index].quantize(GROSZ, rounding=ROUND_DOWN)
        missing = int((vat - sum((line_vat[index] for index in members), ZERO)) / GROSZ)
        by_remainder = sorted(members, key=lambda index: (line_vat[index] - exact[index], index))
        for index in by_remainder[:missing]:
            line_vat[index] += GROSZ
        by_rate[rate] = Amounts(net, vat, net + vat)
    line_amounts = tuple(
        Amounts(net, vat, net + vat) for (net, _), vat in zip(lines, line_vat, strict=True)
    )
    return DocumentAmounts(line_amounts, by_rate, total_of(by_rate.values()))


def total_of(parts: Iterable[Amounts]) -> Amounts:
    """The sum of ``parts``."""
    net = vat = ZERO
    for part in parts:
        net += part.net
        vat += part.vat
    return Amounts(net, vat, net + vat)
