"""FA(3) XML of the ERP's invoices, validated against the official XSD (schema 1-0E, the
copy bundled with ``ksef-client``).

What :func:`render_fa3` emits, and its limits:

- ``Naglowek``; ``Podmiot1`` (the seller: NIP, name, address, e-mail and phone);
  ``Podmiot2`` (the buyer: a Polish NIP, an EU VAT number, another country's tax number,
  or ``BrakID``; ``JST`` and ``GV`` are 2, "no");
- ``Fa``: currency, issue date, number, sale date (``P_6``: one date for all lines), the
  sums per rate (23 %, 8 %, 5 %, 0 % domestic ``0 KR``, exempt ``zw``), the gross total,
  ``Adnotacje`` (no cash accounting, self-billing, reverse charge, split payment, new
  means of transport, triangulation or margin scheme; an exemption names
  :data:`DEFAULT_EXEMPTION_BASIS` or the basis given), ``RodzajFaktury`` ``VAT``, one
  ``FaWiersz`` per line (unit ``szt.``: ERP lines carry no unit), and ``Platnosc``
  (due date, transfer, the bank account if given);
- PLN only: FA(3) wants the VAT of a foreign-currency invoice in PLN as well
  (``P_14_xW``), at an exchange rate the ERP does not record;
- no pro formas (not invoices, never sent to KSeF), corrections or advance invoices.
"""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ksef_client.documents.fa3 as fa3_package
import xmlschema
from lxml import etree  # type: ignore[import-untyped]

from engine.erp.money import money_text
from engine.ports.ksef import KsefDocumentError, KsefInvoiceDocument, KsefParty

if TYPE_CHECKING:
    from engine.erp.model import Invoice
    from engine.erp.money import VatRate

FA3_NAMESPACE = "http://crd.gov.pl/wzor/2025/06/25/13775/"
SCHEMA_DIRECTORY = Path(fa3_package.__file__).parent / "schemas"
SCHEMA_FILE = SCHEMA_DIRECTORY / "schemat_FA(3)_v1-0E.xsd"
SYSTEM_INFO = "SOA Engine"
LINE_UNIT = "szt."
DEFAULT_EXEMPTION_BASIS = "art. 43 ust. 1 ustawy o VAT"
"""The legal basis an exempt (``zw``) invoice names when the caller gives none."""

EU_VAT_PREFIXES: dict[str, str] = {
    country: country for country in (
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "HR", "HU", "IE",
        "IT", "LT", "LU", "LV", "MT", "NL", "PT", "RO", "SE", "SI", "SK", "XI",
    )
} | {"GR": "EL", "EL": "EL"}
"""EU countries other than Poland (ISO code) and their VAT prefix (``KodUE``)."""

# the sums of each rate: (net element, VAT element or None)
RATE_SUMS: dict[VatRate, tuple[str, str | None]] = {
    "23": ("P_13_1", "P_14_1"),
    "8": ("P_13_2", "P_14_2"),
    "5": ("P_13_3", "P_14_3"),
    "0": ("P_13_6_1", None),
    "zw": ("P_13_7", None),
}
LINE_RATE_CODES: dict[VatRate, str] = {"23": "23", "8": "8", "5": "5", "0": "0 KR", "zw": "zw"}
TRANSFER = "6"
NO = "2"
YES = "1"
MAX_ERROR_CHARS = 300
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

_schema: xmlschema.XMLSchema11 | xmlschema.XMLSchema10 | None = None
_lxml_schema: etree.XMLSchema | None = None
_schema_lock = threading.Lock()


def render_fa3(document: KsefInvoiceDocument, *,
               exemption_basis: str = DEFAULT_EXEMPTION_BASIS) -> bytes:
    """``document`` as FA(3) XML (UTF-8), valid against the official XSD; the same
    document and ``created_at`` give the same bytes.

    :raises KsefDocumentError: for a pro forma, a currency other than PLN, amounts that do
        not add up, or XML the XSD refuses (the message names the first error).
    """
    invoice = document.invoice
    if invoice.type == "FPF":
        raise KsefDocumentError(
            f"{invoice.number} is a pro forma: pro formas are not invoices and are not sent "
            "to KSeF")
    if invoice.currency != "PLN":
        raise KsefDocumentError(
            f"{invoice.number}: currency {invoice.currency} not supported for KSeF; FA(3) "
            "needs the VAT in PLN at an exchange rate the invoice does not record")
    _check_amounts(invoice)
    root = _element("Faktura")
    root.set("xmlns", FA3_NAMESPACE)
    root.append(_header(document.created_at))
    root.append(_seller(document.seller))
    root.append(_buyer(document.buyer))
    root.append(_invoice_section(document, exemption_basis))
    xml = XML_DECLARATION + ET.tostring(root, encoding="unicode").encode()
    validate_fa3(xml)
    return xml


def validate_fa3(xml: bytes) -> None:
    """Check ``xml`` against the official FA(3) XSD.

    :raises KsefDocumentError: naming the first error (element path and reason), one line.
    """
    if _valid_by_lxml(xml):
        return
    schema = _fa3_schema()
    try:
        resource = xmlschema.XMLResource(xml, allow="none", defuse="always")
    except (ET.ParseError, xmlschema.XMLResourceError) as parse_error:
        reason = " ".join(str(parse_error).split())
        raise KsefDocumentError(f"not well-formed XML: {reason}"[:MAX_ERROR_CHARS]) from None
    error = next(schema.iter_errors(resource), None)
    if error is not None:
        where = error.path or "/"
        reason = " ".join((error.reason or str(error)).split())
        raise KsefDocumentError(
            f"FA(3) XML refused by the XSD at {where}: {reason}"[:MAX_ERROR_CHARS])


class _BundledSchemas(etree.Resolver):  # type: ignore[misc]
    """Serves the XSD's includes (http://crd.gov.pl/...) from the SDK's copies; never
    the network."""

    def resolve(self, url: str, public_id: str | None, context: Any) -> Any:
        path = SCHEMA_DIRECTORY / url.rsplit("/", 1)[-1]
        if not path.is_file():
            raise LookupError(f"schema {url} is not bundled with ksef-client")
        return self.resolve_filename(str(path), context)


def _valid_by_lxml(xml: bytes) -> bool:
    """The fast check (libxml2, some 40 times faster than xmlschema): True if the XSD
    accepts ``xml``; on False, xmlschema finds the error's path for the message."""
    global _lxml_schema
    with _schema_lock:
        if _lxml_schema is None:
            parser = etree.XMLParser(no_network=True, resolve_entities=False)
            parser.resolvers.add(_BundledSchemas())
            _lxml_schema = etree.XMLSchema(etree.parse(str(SCHEMA_FILE), parser))
        schema = _lxml_schema
    try:
        document = etree.fromstring(xml, etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False))
    except etree.XMLSyntaxError:
        return False
    with _schema_lock:  # an lxml schema object is not safe to share between threads
        return bool(schema.validate(document))


def _fa3_schema() -> xmlschema.XMLSchema11 | xmlschema.XMLSchema10:
    """The FA(3) XSD, loaded once per process from the SDK's files (never the network)."""
    global _schema
    with _schema_lock:
        if _schema is None:
            _schema = xmlschema.XMLSchema(str(SCHEMA_FILE), uri_mapper=_local_schema,
                                          allow="sandbox")
        return _schema


def _local_schema(uri: str) -> str:
    """The bundled copy of a schema the XSD names by URL (matched by file name)."""
    local = SCHEMA_DIRECTORY / uri.rsplit("/", 1)[-1]
    return local.as_uri() if local.is_file() else uri


def _check_amounts(invoice: Invoice) -> None:
    for rate, amounts in invoice.vat_by_rate.items():
        lines_net = sum((line.amounts.net for line in invoice.lines if line.vat_rate == rate),
                        Decimal(0))
        if lines_net != amounts.net:
            raise KsefDocumentError(
                f"{invoice.number}: the lines at rate {rate} add up to {money_text(lines_net)} "
                f"net, the invoice says {money_text(amounts.net)}")
    if {line.vat_rate for line in invoice.lines} - set(invoice.vat_by_rate):
        raise KsefDocumentError(f"{invoice.number}: a line's VAT rate has no sum")
    if invoice.totals.gross != sum((a.gross for a in invoice.vat_by_rate.values()), Decimal(0)):
        raise KsefDocumentError(f"{invoice.number}: the gross total is not the rates' sum")


def _header(created_at: datetime | None) -> ET.Element:
    header = _element("Naglowek")
    form = _child(header, "KodFormularza", "FA")
    form.set("kodSystemowy", "FA (3)")
    form.set("wersjaSchemy", "1-0E")
    _child(header, "WariantFormularza", "3")
    when = created_at if created_at is not None else datetime.now(UTC)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    _child(header, "DataWytworzeniaFa", when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    _child(header, "SystemInfo", SYSTEM_INFO)
    return header


def _seller(seller: KsefParty) -> ET.Element:
    party = _element("Podmiot1")
    identity = _child(party, "DaneIdentyfikacyjne")
    _child(identity, "NIP", _nip(seller.nip or ""))
    _child(identity, "Nazwa", _text(seller.name))
    party.append(_address(seller.address, seller.country))
    _contact(party, seller)
    return party


def _buyer(buyer: KsefParty) -> ET.Element:
    party = _element("Podmiot2")
    identity = _child(party, "DaneIdentyfikacyjne")
    country = buyer.country.strip().upper()
    vat_id = re.sub(r"[^0-9A-Za-z]", "", buyer.vat_id or "").upper()
    nip = buyer.nip or (vat_id if country == "PL" else "")
    if nip:
        _child(identity, "NIP", _nip(nip))
    elif vat_id and country in EU_VAT_PREFIXES:
        prefix = EU_VAT_PREFIXES[country]
        for known in (prefix, country):
            vat_id = vat_id.removeprefix(known)
        _child(identity, "KodUE", prefix)
        _child(identity, "NrVatUE", vat_id)
    elif vat_id:
        _child(identity, "KodKraju", country)
        _child(identity, "NrID", vat_id)
    else:
        _child(identity, "BrakID", YES)
    _child(identity, "Nazwa", _text(buyer.name))
    if buyer.address.strip():
        party.append(_address(buyer.address, country))
    _contact(party, buyer)
    _child(party, "JST", NO)
    _child(party, "GV", NO)
    return party


def _invoice_section(document: KsefInvoiceDocument, exemption_basis: str) -> ET.Element:
    invoice = document.invoice
    section = _element("Fa")
    _child(section, "KodWaluty", invoice.currency)
    _child(section, "P_1", _date(invoice.issue_date))
    _child(section, "P_2", _text(invoice.number))
    _child(section, "P_6", _date(invoice.sale_date))
    for rate, (net_element, vat_element) in RATE_SUMS.items():
        amounts = invoice.vat_by_rate.get(rate)
        if amounts is None:
            continue
        _child(section, net_element, money_text(amounts.net))
        if vat_element is not None:
            _child(section, vat_element, money_text(amounts.vat))
    _child(section, "P_15", money_text(invoice.totals.gross))
    section.append(_annotations(exempt="zw" in invoice.vat_by_rate,
                                exemption_basis=exemption_basis))
    _child(section, "RodzajFaktury", "VAT")
    for number, line in enumerate(invoice.lines, start=1):
        row = _child(section, "FaWiersz")
        _child(row, "NrWierszaFa", str(number))
        _child(row, "P_7", _text(line.name))
        _child(row, "P_8A", LINE_UNIT)
        _child(row, "P_8B", _plain(line.quantity))
        _child(row, "P_9A", _price(line.unit_net_price))
        _child(row, "P_11", money_text(line.amounts.net))
        _child(row, "P_12", LINE_RATE_CODES[line.vat_rate])
    section.append(_payment(invoice.due_date, document.bank_account))
    return section


def _annotations(*, exempt: bool, exemption_basis: str) -> ET.Element:
    notes = _element("Adnotacje")
    for flag in ("P_16", "P_17", "P_18", "P_18A"):
        _child(notes, flag, NO)
    exemption = _child(notes, "Zwolnienie")
    if exempt:
        _child(exemption, "P_19", YES)
        _child(exemption, "P_19A", _text(exemption_basis))
    else:
        _child(exemption, "P_19N", YES)
    _child(_child(notes, "NoweSrodkiTransportu"), "P_22N", YES)
    _child(notes, "P_23", NO)
    _child(_child(notes, "PMarzy"), "P_PMarzyN", YES)
    return notes


def _payment(due_date: date, bank_account: str) -> ET.Element:
    payment = _element("Platnosc")
    _child(_child(payment, "TerminPlatnosci"), "Termin", _date(due_date))
    _child(payment, "FormaPlatnosci", TRANSFER)
    account = re.sub(r"[\s-]", "", bank_account).upper()
    if account:
        _child(_child(payment, "RachunekBankowy"), "NrRB", account.removeprefix("PL"))
    return payment


def _address(text: str, country: str) -> ET.Element:
    """``text`` as ``AdresL1`` and ``AdresL2``: split at the first line break, or else at
    the last comma (``ul. Długa 5, 00-001 Warszawa``)."""
    address = _element("Adres")
    _child(address, "KodKraju", country.strip().upper())
    lines = [part.strip() for part in text.strip().splitlines() if part.strip()]
    if len(lines) > 1:
        first, second = lines[0], ", ".join(lines[1:])
    else:
        first, _, second = (lines[0] if lines else "").rpartition(",")
        if not first:
            first, second = second, ""
    _child(address, "AdresL1", _text(first))
    if second.strip():
        _child(address, "AdresL2", _text(second))
    return address


def _contact(party: ET.Element, who: KsefParty) -> None:
    if not (who.email or who.phone):
        return
    contact = _child(party, "DaneKontaktowe")
    if who.email:
        _child(contact, "Email", who.email.strip())
    if who.phone:
        _child(contact, "Telefon", re.sub(r"[\s()-]", "", who.phone))


def _nip(value: str) -> str:
    return re.sub(r"[\s-]", "", value).upper().removeprefix("PL")


def _text(value: str) -> str:
    return " ".join(value.split())


def _plain(value: Decimal) -> str:
    """A quantity or unit price without exponent or trailing zeros (``2``, ``12.5``)."""
    return format(value.normalize(), "f")


def _price(value: Decimal) -> str:
    """A unit price with at least two decimals (``10.10``, ``0.12345``)."""
    exponent = value.normalize().as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) else 0
    return _plain(value) if decimals > 2 else money_text(value)


def _date(value: date) -> str:
    return value.isoformat()


def _element(name: str) -> ET.Element:
    """An element of the FA(3) namespace, which the root declares as the default one."""
    return ET.Element(name)


def _child(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    child = ET.SubElement(parent, name)
    if text is not None:
        child.text = text
    return child
