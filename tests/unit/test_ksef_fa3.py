"""FA(3) XML of the ERP's invoices: valid against the official XSD for every VAT rate and
kind of buyer, amounts as the invoice has them, refusals that say what is wrong."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from ksef_client.documents.fa3 import parse_invoice_xml

from engine.adapters.ksef_fa3 import (
    DEFAULT_EXEMPTION_BASIS,
    FA3_NAMESPACE,
    render_fa3,
    validate_fa3,
)
from engine.erp.model import Invoice, InvoiceLine
from engine.erp.money import VatRate, document_amounts, line_net
from engine.ports.ksef import KsefDocumentError, KsefInvoiceDocument, KsefParty

NS = {"fa": FA3_NAMESPACE}
CREATED = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
SELLER = KsefParty("Firma Demo sp. z o.o.", "ul. Długa 5, 00-001 Warszawa", nip="4477127826",
                   email="biuro@firma-demo.pl", phone="+48 601 200 300")
POLISH_BUYER = KsefParty("Klient S.A.", "ul. Krótka 1\n30-001 Kraków", nip="526-000-12-46")
LINES: dict[VatRate, tuple[str, str, str]] = {
    "23": ("Abonament serwisowy", "1", "1200.00"),
    "8": ("Usługa gastronomiczna", "3", "10.10"),
    "5": ("Książka", "2.5", "49.99"),
    "0": ("Usługa 0 %", "1", "5.00"),
    "zw": ("Szkolenie", "1", "300.00"),
}


def invoice(rates: tuple[VatRate, ...] = ("23",), **changes: object) -> Invoice:
    spec = [(LINES[rate][0], Decimal(LINES[rate][1]), Decimal(LINES[rate][2]), rate)
            for rate in rates]
    amounts = document_amounts([(line_net(quantity, price), rate)
                                for _, quantity, price, rate in spec])
    lines = tuple(
        InvoiceLine(product=f"P{index}", name=name, quantity=quantity, unit_net_price=price,
                    vat_rate=rate, amounts=line_amounts)
        for index, ((name, quantity, price, rate), line_amounts)
        in enumerate(zip(spec, amounts.lines, strict=True)))
    made = Invoice(number="FA/7/12/2026", type="FA", contractor="K1",
                   issue_date=date(2026, 12, 1), sale_date=date(2026, 11, 30),
                   due_date=date(2026, 12, 15), currency="PLN", status="issued", template=None,
                   period=None, lines=lines, vat_by_rate=amounts.by_rate, totals=amounts.totals)
    return dataclasses.replace(made, **changes)  # type: ignore[arg-type]


def document(made: Invoice | None = None, buyer: KsefParty = POLISH_BUYER,
             bank_account: str = "PL61 1090 1014 0000 0712 1981 2874") -> KsefInvoiceDocument:
    return KsefInvoiceDocument(made or invoice(), SELLER, buyer, bank_account=bank_account,
                               created_at=CREATED)


def parsed(xml: bytes) -> ET.Element:
    return ET.fromstring(xml)


def text(root: ET.Element, path: str) -> str | None:
    found = root.find("fa:" + path.replace("/", "/fa:"), NS)
    return None if found is None else found.text


@pytest.mark.parametrize("rates", [("23",), ("8",), ("5",), ("0",), ("zw",),
                                   ("23", "8", "5", "0", "zw")])
def test_every_rate_makes_valid_fa3_whose_sums_are_the_invoices(
        rates: tuple[VatRate, ...]) -> None:
    made = invoice(rates)
    root = parsed(render_fa3(document(made)))
    sums = {"23": ("P_13_1", "P_14_1"), "8": ("P_13_2", "P_14_2"), "5": ("P_13_3", "P_14_3"),
            "0": ("P_13_6_1", None), "zw": ("P_13_7", None)}
    for rate, (net, vat) in sums.items():
        amounts = made.vat_by_rate.get(rate)
        # Check each rate's sums are the invoice's, and absent rates are absent
        assert text(root, f"Fa/{net}") == (None if amounts is None else f"{amounts.net:.2f}")
        if vat is not None:
            assert text(root, f"Fa/{vat}") == (None if amounts is None else f"{amounts.vat:.2f}")
    assert Decimal(text(root, "Fa/P_15") or "") == made.totals.gross
    codes = [row.text for row in root.findall("fa:Fa/fa:FaWiersz/fa:P_12", NS)]
    assert codes == [{"0": "0 KR"}.get(rate, rate) for rate in rates]
    exempt = "zw" in rates
    assert text(root, "Fa/Adnotacje/Zwolnienie/P_19A") == (
        DEFAULT_EXEMPTION_BASIS if exempt else None)
    assert text(root, "Fa/Adnotacje/Zwolnienie/P_19N") == (None if exempt else "1")


def test_the_mixed_invoice_reads_back_in_the_sdks_parser() -> None:
    made = invoice(("23", "8", "5", "0", "zw"))
    read = parse_invoice_xml(render_fa3(document(made)))
    assert read.invoice_number == "FA/7/12/2026"
    assert read.issue_date == date(2026, 12, 1)
    assert Decimal(str(read.total_gross)) == made.totals.gross
    assert len(read.lines) == 5
    assert not read.warnings


def test_header_seller_lines_and_payment() -> None:
    root = parsed(render_fa3(document(invoice(("5",)))))
    assert text(root, "Naglowek/DataWytworzeniaFa") == "2026-12-01T08:30:00Z"
    assert text(root, "Naglowek/SystemInfo") == "SOA Engine"
    assert text(root, "Podmiot1/DaneIdentyfikacyjne/NIP") == "4477127826"
    assert text(root, "Podmiot1/Adres/AdresL1") == "ul. Długa 5"
    assert text(root, "Podmiot1/Adres/AdresL2") == "00-001 Warszawa"
    assert text(root, "Podmiot1/DaneKontaktowe/Telefon") == "+48601200300"
    assert text(root, "Podmiot2/DaneIdentyfikacyjne/NIP") == "5260001246"
    assert text(root, "Podmiot2/Adres/AdresL2") == "30-001 Kraków"
    assert (text(root, "Podmiot2/JST"), text(root, "Podmiot2/GV")) == ("2", "2")
    assert (text(root, "Fa/P_1"), text(root, "Fa/P_6")) == ("2026-12-01", "2026-11-30")
    row = root.find("fa:Fa/fa:FaWiersz", NS)
    assert row is not None
    assert [child.text for child in row] == ["1", "Książka", "szt.", "2.5", "49.99", "124.98",
                                             "5"]
    assert text(root, "Fa/Platnosc/TerminPlatnosci/Termin") == "2026-12-15"
    assert text(root, "Fa/Platnosc/FormaPlatnosci") == "6"
    assert text(root, "Fa/Platnosc/RachunekBankowy/NrRB") == "61109010140000071219812874"


def test_without_a_bank_account_there_is_none_in_the_xml() -> None:
    root = parsed(render_fa3(document(bank_account="")))
    assert root.find("fa:Fa/fa:Platnosc/fa:RachunekBankowy", NS) is None


@pytest.mark.parametrize(("buyer", "identity"), [
    (KsefParty("Kunde GmbH", "Hauptstr. 1, 10115 Berlin", country="DE", vat_id="123456789"),
     {"KodUE": "DE", "NrVatUE": "123456789"}),
    (KsefParty("Pelatis AE", "Odos 1, Athina", country="GR", vat_id="EL 094259216"),
     {"KodUE": "EL", "NrVatUE": "094259216"}),
    (KsefParty("Client Ltd", "1 High St, London", country="GB", vat_id="GB123456789"),
     {"KodKraju": "GB", "NrID": "GB123456789"}),
    (KsefParty("Customer Inc", "1 Main St, Springfield", country="US", vat_id="12-3456789"),
     {"KodKraju": "US", "NrID": "123456789"}),
    (KsefParty("Jan Kowalski", "ul. Polna 3, 00-950 Warszawa"), {"BrakID": "1"}),
    (KsefParty("John Doe", "", country="US"), {"BrakID": "1"}),
])
def test_buyers_are_identified_as_fa3_allows(buyer: KsefParty,
                                             identity: dict[str, str]) -> None:
    root = parsed(render_fa3(document(buyer=buyer)))
    found = root.find("fa:Podmiot2/fa:DaneIdentyfikacyjne", NS)
    assert found is not None
    assert {child.tag.split("}")[1]: child.text for child in found} == {
        **identity, "Nazwa": buyer.name}
    assert text(root, "Podmiot2/Adres/KodKraju") == (buyer.country if buyer.address else None)


def test_a_pro_forma_is_not_sent_to_ksef() -> None:
    with pytest.raises(KsefDocumentError, match=r"pro formas are not .* sent to KSeF"):
        render_fa3(document(invoice(type="FPF")))


def test_a_foreign_currency_is_refused_rather_than_made_without_vat_in_pln() -> None:
    with pytest.raises(KsefDocumentError, match="currency EUR not supported"):
        render_fa3(document(invoice(currency="EUR")))


def test_amounts_that_do_not_add_up_are_refused() -> None:
    made = invoice(("23", "8"))
    wrong = {**made.vat_by_rate, "8": dataclasses.replace(made.vat_by_rate["8"],
                                                          net=Decimal("1.00"))}
    with pytest.raises(KsefDocumentError, match=r"rate 8 add up to 30\.30 net"):
        render_fa3(document(invoice(("23", "8"), vat_by_rate=wrong)))


@pytest.mark.parametrize(("seller", "where"), [
    (dataclasses.replace(SELLER, nip="0123456789"), "/Faktura/Podmiot1/DaneIdentyfikacyjne/NIP"),
    (dataclasses.replace(SELLER, name="  "), "/Faktura/Podmiot1/DaneIdentyfikacyjne/Nazwa"),
    (dataclasses.replace(SELLER, address=""), "/Faktura/Podmiot1/Adres/AdresL1"),
])
def test_a_broken_document_is_refused_with_the_first_error_on_one_line(
        seller: KsefParty, where: str) -> None:
    with pytest.raises(KsefDocumentError) as caught:
        render_fa3(dataclasses.replace(document(), seller=seller))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"FA(3) XML refused by the XSD at {where}: ")


def test_validate_fa3_refuses_edited_xml_and_xml_that_is_not_well_formed() -> None:
    xml = render_fa3(document())
    validate_fa3(xml)
    with pytest.raises(KsefDocumentError, match=r"at /Faktura/Fa/P_15: .*"):
        validate_fa3(re.sub(rb"<P_15>[^<]*", b"<P_15>12,50", xml))
    with pytest.raises(KsefDocumentError, match="not well-formed XML"):
        validate_fa3(xml[:200])


def test_the_same_document_gives_the_same_bytes() -> None:
    made = invoice(("23", "zw"))
    assert render_fa3(document(made)) == render_fa3(document(made))
    later = dataclasses.replace(document(made), created_at=datetime(2026, 12, 2, tzinfo=UTC))
    assert render_fa3(later) != render_fa3(document(made))
