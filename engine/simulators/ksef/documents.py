"""What the KSeF simulator reads and writes as documents: an invoice's FA(3) XML checked
against the official XSD (the copy bundled with ``ksef-client``), the facts KSeF takes
from it (seller NIP, kind, number), KSeF numbers, and UPO receipts."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from engine.simulators.ksef.xades import safe_parser

FA3_NAMESPACE = "http://crd.gov.pl/wzor/2025/06/25/13775/"
FA3_SCHEMA = "schemat_FA(3)_v1-0E.xsd"
UPO_NAMESPACE = "http://upo.schematy.mf.gov.pl/KSeF/v4-2"
BOM = b"\xef\xbb\xbf"

_schema: etree.XMLSchema | None = None
_schema_lock = threading.Lock()


@dataclass(frozen=True)
class InvoiceFacts:
    """What identifies an invoice for KSeF's duplicate rule, read from FA(3) XML; a
    value the document lacks is ``""``."""

    seller_nip: str
    kind: str
    number: str
    issue_date: str

    @property
    def key(self) -> tuple[str, str, str]:
        """The duplicate rule's key: seller NIP, ``RodzajFaktury``, ``P_2``."""
        return self.seller_nip, self.kind, self.number


def _schema_directory() -> Path:
    return Path(str(resources.files("ksef_client.documents.fa3") / "schemas"))


class _BundledSchemas(etree.Resolver):  # type: ignore[misc]
    """Serves the XSD's includes (http://crd.gov.pl/...) from the bundled copies; asks
    no network for anything."""

    def resolve(self, url: str, public_id: str | None, context: Any) -> Any:
        path = _schema_directory() / Path(url).name
        if not path.is_file():
            raise LookupError(f"schema {url} is not bundled with ksef-client")
        return self.resolve_filename(str(path), context)


def fa3_schema() -> etree.XMLSchema:
    """The FA(3) XSD, compiled once per process."""
    global _schema
    with _schema_lock:
        if _schema is None:
            parser = etree.XMLParser(no_network=True, resolve_entities=False)
            parser.resolvers.add(_BundledSchemas())
            document = etree.parse(str(_schema_directory() / FA3_SCHEMA), parser)
            _schema = etree.XMLSchema(document)
        return _schema


def invoice_problem(xml: bytes) -> str | None:
    """Why KSeF would reject ``xml`` as an FA(3) invoice (450), or None if the XSD and
    KSeF's XML rules accept it."""
    if xml.startswith(BOM):
        return "Dokument zawiera znacznik BOM; wymagane UTF-8 bez BOM"
    try:
        document = etree.fromstring(xml, safe_parser())
    except etree.XMLSyntaxError as error:
        return f"Nieprawidłowy XML: {error}"
    tree = document.getroottree()
    if tree.docinfo.doctype:
        return "Dokument nie może zawierać deklaracji DOCTYPE"
    if document.xpath("//processing-instruction()") or any(
            isinstance(node, etree._ProcessingInstruction)
            for node in document.itersiblings(preceding=True)):
        return "Dokument nie może zawierać instrukcji przetwarzania XML"
    encoding = (tree.docinfo.encoding or "UTF-8").upper()
    if encoding not in ("UTF-8", "UTF8"):
        return f"Dokument musi być kodowany w UTF-8, nie {tree.docinfo.encoding}"
    if etree.QName(document).namespace != FA3_NAMESPACE:
        return (f"Dokument nie jest zgodny ze schematem FA (3) zadeklarowanym przy otwarciu "
                f"sesji (element główny {document.tag})")
    schema = fa3_schema()
    if schema.validate(document):
        return None
    last = schema.error_log.last_error
    return f"Błąd walidacji XSD (linia {last.line}): {last.message}" if last else (
        "Błąd walidacji XSD")


def invoice_facts(xml: bytes) -> InvoiceFacts | None:
    """Seller NIP, kind and number of an FA(3) invoice, or None if ``xml`` is not XML."""
    try:
        document = etree.fromstring(xml, safe_parser())
    except etree.XMLSyntaxError:
        return None
    names = {"f": FA3_NAMESPACE}

    def text(path: str) -> str:
        found = document.xpath(f"string({path})", namespaces=names)
        return str(found).strip()

    return InvoiceFacts(
        seller_nip=text("/f:Faktura/f:Podmiot1/f:DaneIdentyfikacyjne/f:NIP"),
        kind=text("/f:Faktura/f:Fa/f:RodzajFaktury"),
        number=text("/f:Faktura/f:Fa/f:P_2"),
        issue_date=text("/f:Faktura/f:Fa/f:P_1"),
    )


def crc8(data: bytes) -> int:
    """CRC-8 (polynomial 0x07, initial 0x00), KSeF numbers' check sum."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def ksef_number(nip: str, day: date, technical: str) -> str:
    """``NIP-YYYYMMDD-TTTTTTTTTTTT-CC``: ``technical`` is 12 uppercase hex characters,
    CC the CRC-8 of the 32 characters before it."""
    data = f"{nip}-{day:%Y%m%d}-{technical}"
    return f"{data}-{crc8(data.encode('ascii')):02X}"


@dataclass(frozen=True)
class UpoEntry:
    """One accepted invoice as a UPO names it."""

    seller_nip: str
    ksef_number: str
    invoice_number: str
    issue_date: str
    received_at: datetime
    accepted_at: datetime
    invoice_hash: str


def upo_xml(session_reference: str, context_nip: str, entries: list[UpoEntry]) -> bytes:
    """A UPO (official receipt) in the shape of KSeF's UPO v4-2 for ``entries``; unlike
    KSeF's it is not signed."""
    root = etree.Element(f"{{{UPO_NAMESPACE}}}Potwierdzenie", nsmap={None: UPO_NAMESPACE})

    def add(parent: etree._Element, name: str, value: str | None = None) -> etree._Element:
        element = etree.SubElement(parent, f"{{{UPO_NAMESPACE}}}{name}")
        if value is not None:
            element.text = value
        return element

    add(root, "NazwaPodmiotuPrzyjmujacego", "Ministerstwo Finansów (symulator KSeF)")
    add(root, "NumerReferencyjnySesji", session_reference)
    authentication = add(root, "Uwierzytelnienie")
    add(add(authentication, "IdKontekstu"), "Nip", context_nip)
    description = add(root, "OpisPotwierdzenia")
    for name, value in (("Strona", "1"), ("LiczbaStron", "1"), ("ZakresDokumentowOd", "1"),
                        ("ZakresDokumentowDo", str(len(entries))),
                        ("CalkowitaLiczbaDokumentow", str(len(entries)))):
        add(description, name, value)
    add(root, "NazwaStrukturyLogicznej", FA3_SCHEMA)
    add(root, "KodFormularza", "FA (3)")
    for entry in entries:
        document = add(root, "Dokument")
        add(document, "NipSprzedawcy", entry.seller_nip)
        add(document, "NumerKSeFDokumentu", entry.ksef_number)
        add(document, "NumerFaktury", entry.invoice_number)
        add(document, "DataWystawieniaFaktury", entry.issue_date)
        add(document, "DataPrzeslaniaDokumentu", entry.received_at.isoformat())
        add(document, "DataNadaniaNumeruKSeF", entry.accepted_at.isoformat())
        add(document, "SkrotDokumentu", entry.invoice_hash)
        add(document, "TrybWysylki", "Online")
    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return xml
