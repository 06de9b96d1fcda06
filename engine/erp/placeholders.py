"""Message templates: subject and body with ``{placeholder}`` fields.

The placeholders a template may use are fixed (:data:`PLACEHOLDERS`); a template with
an unknown one is refused when the document is loaded, never when a message is sent.
``{{`` and ``}}`` stand for literal braces.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

PLACEHOLDERS: dict[str, str] = {
    "contractor_name": "the customer's name",
    "contractor_code": "the customer's code",
    "document_number": "the invoice, receivable document or payment reminder number",
    "amount": "the amount (invoice gross, or what remains to be paid), such as 1230.00",
    "currency": "the currency of the amount, such as PLN",
    "due_date": "the payment due date, YYYY-MM-DD",
    "issue_date": "the document's issue date, YYYY-MM-DD",
    "days_overdue": "days since the due date (negative before it)",
    "order_date": "the service order's date, YYYY-MM-DD",
    "order_description": "the service order's description",
    "task_title": "the CRM task's title",
    "task_start": "the CRM task's start, YYYY-MM-DD HH:MM (Polish time)",
    "seller_name": "the seller's name",
    "seller_bank_account": "the seller's bank account",
}


def placeholders_in(text: str) -> list[str]:
    """The placeholder names ``text`` uses.

    :raises ValueError: for a malformed template (an unmatched brace) or a field that is
        not a plain name.
    """
    names = []
    for _, field, spec, conversion in string.Formatter().parse(text):
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValueError(f"{{{field}}} is not a placeholder; write {{name}}")
        names.append(field)
    return names


def check_template(text: str) -> None:
    """:raises ValueError: if ``text`` uses a placeholder that is not in :data:`PLACEHOLDERS`."""
    for name in placeholders_in(text):
        if name not in PLACEHOLDERS:
            raise ValueError(
                f"unknown placeholder {{{name}}}; allowed are "
                + ", ".join("{" + known + "}" for known in PLACEHOLDERS)
            )


def render(text: str, values: Mapping[str, object]) -> str:
    """``text`` with its placeholders filled from ``values`` (an absent value is empty)."""
    return text.format_map(_Values(values))


class _Values(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return ""
