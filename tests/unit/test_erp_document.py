"""The company data document: what it accepts, and bad documents refused with the JSON
path of the first bad field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from engine.application.erp import document_schema, parse_document
from engine.erp.references import ErpDataError, StoredCodes, check_references

EXAMPLE = Path(__file__).parents[2] / "examples" / "company" / "firma-demo.json"


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return data


def refused(document: dict[str, Any], stored: StoredCodes | None = None) -> str:
    with pytest.raises(ErpDataError) as caught:
        check_references(parse_document(json.dumps(document)), stored or StoredCodes())
    message = str(caught.value)
    assert "\n" not in message and message.endswith("nothing was loaded")
    return message


def test_the_example_company_is_valid_and_amounts_are_decimals() -> None:
    document = parse_document(EXAMPLE.read_bytes())
    check_references(document, StoredCodes())
    assert str(document.products[1].net_price) == "49.99"
    dumped = document.model_dump(mode="json")
    assert dumped["products"][0]["net_price"] == "1200.00"
    assert dumped["receivables"][0]["amount"] == "1845.00"


def test_nip_and_phone_are_normalised() -> None:
    document = parse_document(EXAMPLE.read_bytes())
    assert document.contractors[0].phone == "+48601200300"
    assert document.contractors[0].nip == "4477127826"


@pytest.mark.parametrize(("change", "path", "why"), [
    (lambda d: d["contractors"][1].update(nip="1234567890"), "contractors[1].nip",
     "not a valid NIP"),
    (lambda d: d["products"][0].update(net_price=12.1), "products[0].net_price",
     'must be a string with two decimals, such as "12.10"'),
    (lambda d: d["products"][0].update(net_price="12.345"), "products[0].net_price",
     "at most two decimals"),
    (lambda d: d["recurring_invoices"][0]["lines"][0].update(quantity="-1"),
     "recurring_invoices[0].lines[0].quantity", "positive"),
    (lambda d: d["products"][2].update(vat_rate="7"), "products[2].vat_rate", ""),
    (lambda d: d["contractors"][0].update(colour="red"), "contractors[0].colour",
     "not a known field"),
    (lambda d: d["recurring_invoices"][1].update(day_of_month=32),
     "recurring_invoices[1].day_of_month", "1 to 31"),
    (lambda d: d["templates"][0].update(body="{nazwa}"), "templates[0].body",
     "unknown placeholder {nazwa}"),
    (lambda d: d["receivables"][0].update(remaining="9999.00"), "receivables[0]",
     "more than amount"),
    (lambda d: d.update(contractors="none"), "contractors", ""),
])
def test_bad_fields_are_refused_with_their_path(change: Any, path: str, why: str) -> None:
    document = example()
    change(document)
    message = refused(document)
    assert f"company data {path}:" in message
    assert why in message


@pytest.mark.parametrize(("change", "path", "why"), [
    (lambda d: d["receivables"][2].update(contractor="NIKT"), "receivables[2].contractor",
     "contractor 'NIKT' does not exist"),
    (lambda d: d["recurring_invoices"][0]["lines"][1].update(product="BRAK"),
     "recurring_invoices[0].lines[1].product", "product 'BRAK'"),
    (lambda d: d["dunning_schemes"][1].update(default=True), "dunning_schemes",
     "exactly one dunning scheme must be the default; STANDARD, ŁAGODNY are"),
    (lambda d: d["dunning_schemes"][0]["stages"][1].update(template="PRZYPOMNIENIE"),
     "dunning_schemes[0].stages[1].template", "needs an sms template"),
    (lambda d: d["contractors"].append(copy.deepcopy(d["contractors"][0])),
     "contractors[4].code", "appears twice"),
    (lambda d: d["crm_tasks"][2]["reminder"].pop("phone"), "crm_tasks[2].reminder.phone",
     "needs reminder.phone"),
])
def test_references_must_name_something(change: Any, path: str, why: str) -> None:
    document = example()
    change(document)
    message = refused(document)
    assert f"company data {path}:" in message and why in message


def test_references_may_name_what_is_stored_already() -> None:
    stored = StoredCodes(contractors={"STARY"}, dunning_schemes={"STANDARD": True})
    check_references(parse_document(json.dumps({"receivables": [{
        "id": "R1", "contractor": "STARY", "document": "FA/1/2026", "issue_date": "2026-01-01",
        "due_date": "2026-01-15", "amount": "10.00", "remaining": "10.00"}]})), stored)
    # a second default beside the stored one is refused
    message = refused({"dunning_schemes": [{"code": "NOWY", "name": "n", "default": True,
                                            "stages": [{"days": 1, "action": "sales_block"}]}]},
                      stored)
    assert "NOWY, STANDARD are" in message


def test_not_json_and_not_an_object_are_refused() -> None:
    with pytest.raises(ErpDataError, match=r"company data \$: is not JSON"):
        parse_document(b"{nope")
    with pytest.raises(ErpDataError, match=r"must be a JSON object"):
        parse_document(b"[]")


def test_the_schema_names_every_top_level_key() -> None:
    schema = document_schema()
    assert set(schema["properties"]) == {
        "seller", "email_accounts", "sms_gateway", "operators", "contractors", "products",
        "templates", "recurring_invoices", "receivables", "dunning_schemes", "crm_tasks",
        "service_order_templates", "warehouses", "stock", "price_types", "prices",
        "product_groups", "employees", "sales_orders", "retail_documents", "cash_entries",
        "payments", "payment_links", "partners", "deletions"}
