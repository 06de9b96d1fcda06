"""FpdfDocumentPrinter: Polish text that can be read back, every part of an invoice and a
payment reminder, the same bytes for the same document."""

from __future__ import annotations

import dataclasses
import io
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader

from engine.adapters.pdf_fpdf import FONT_DIR, FpdfDocumentPrinter, money
from engine.erp.document import Contractor, Seller
from engine.erp.model import Invoice, InvoiceLine, PaymentReminder
from engine.erp.money import VatRate, document_amounts, line_net

POLISH = "Zażółć gęślą jaźń"
SELLER = Seller(
    name="Świętokrzyskie Usługi Łączności Sp. z o.o.", nip="5260250274",
    address="ul. Źródlana 5\n25-001 Kielce", bank_account="PL61 1090 1014 0000 0712 1981 2874",
)  # fmt: skip
BUYER = Contractor(
    code="K1", name="Paweł Żółkiewski – Ślusarstwo", nip="7740001454",
    address="ul. Ćmielowska 7, 27-440 Ćmielów",
)  # fmt: skip
PERSON = Contractor(code="K2", name="Anna Nowak", address="Gdańsk")


def make_invoice(
    *, type_: str = "FA", currency: str = "PLN", count: int = 3, number: str = "FA/7/12/2026"
) -> Invoice:
    catalogue: list[tuple[str, Decimal, Decimal, VatRate]] = [
        (f"Usługa serwisowa — {POLISH}", Decimal("1.5"), Decimal("1200.00"), "23"),
        ("Książka „Łódź nocą”", Decimal("2"), Decimal("45.50"), "5"),
        ("Szkolenie BHP (zwolnione)", Decimal("1"), Decimal("999.99"), "zw"),
    ]
    raw = [catalogue[index % len(catalogue)] for index in range(count)]
    amounts = document_amounts([(line_net(qty, price), rate) for _, qty, price, rate in raw])
    lines = tuple(
        InvoiceLine(product=f"P{index}", name=name, quantity=qty, unit_net_price=price,
                    vat_rate=rate, amounts=line_amounts)
        for index, ((name, qty, price, rate), line_amounts) in enumerate(
            zip(raw, amounts.lines, strict=True))
    )  # fmt: skip
    return Invoice(
        number=number, type=type_,  # type: ignore[arg-type]
        contractor="K1", issue_date=date(2026, 12, 1), sale_date=date(2026, 11, 30),
        due_date=date(2026, 12, 15), currency=currency, status="issued", template=None,
        period=None, lines=lines, vat_by_rate=amounts.by_rate, totals=amounts.totals,
    )


REMINDER = PaymentReminder(
    number="PZ/3/2026", receivable="R-17", contractor="K1", document="FA/7/10/2026",
    issue_date=date(2026, 12, 1), due_date=date(2026, 10, 31), amount=Decimal("12345.67"),
    currency="PLN", days_overdue=31,
)  # fmt: skip


@pytest.fixture(scope="module")
def printer() -> FpdfDocumentPrinter:
    return FpdfDocumentPrinter()


def text_of(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def one_spaced(text: str) -> str:
    return " ".join(text.split())


def test_an_invoice_reads_back_with_polish_letters_numbers_and_amounts(
    printer: FpdfDocumentPrinter,
) -> None:
    invoice = make_invoice()
    pdf = printer.invoice(invoice, SELLER, BUYER)

    assert pdf.startswith(b"%PDF-")
    text = one_spaced(text_of(pdf))
    for expected in [
        "Faktura VAT", "nr FA/7/12/2026", "Data wystawienia: 2026-12-01",
        "Data sprzedaży: 2026-11-30", "Termin płatności: 2026-12-15",
        "Sprzedawca".upper(), "Nabywca".upper(), SELLER.name, "NIP: 5260250274",
        "ul. Źródlana 5", "25-001 Kielce", BUYER.name, "NIP: 7740001454",
        "ul. Ćmielowska 7, 27-440 Ćmielów", POLISH, "Książka „Łódź nocą”",
        "Lp.", "Ilość", "Cena netto", "Stawka VAT", "Wartość netto", "Kwota VAT",
        "Wartość brutto", "1,5 1200,00 23% 1800,00 414,00 2214,00",
        "2 45,50 5% 91,00 4,55 95,55", "1 999,99 zw. 999,99 0,00 999,99",
        "Zestawienie według stawek VAT", "Razem 2890,99 418,55 3309,54",
        "Do zapłaty: 3309,54 PLN", "Sposób płatności: przelew", "2026-12-15 (14 dni)",
        "Nr rachunku: PL61 1090 1014 0000 0712 1981 2874"
    ]:  # fmt: skip
        assert expected in text, expected
    assert "pro forma" not in text
    assert all(letter in text for letter in "ąćęłńóśźż")
    assert money(invoice.totals.gross) == "3309,54"


def test_every_polish_letter_survives(printer: FpdfDocumentPrinter) -> None:
    letters = "ą ć ę ł ń ó ś ź ż Ą Ć Ę Ł Ń Ó Ś Ź Ż"
    buyer = BUYER.model_copy(update={"address": letters})
    text = one_spaced(text_of(printer.invoice(make_invoice(), SELLER, buyer)))
    assert letters in text


def test_the_same_invoice_gives_the_same_bytes(printer: FpdfDocumentPrinter) -> None:
    first = printer.invoice(make_invoice(), SELLER, BUYER)
    assert printer.invoice(make_invoice(), SELLER, BUYER) == first
    assert FpdfDocumentPrinter().invoice(make_invoice(), SELLER, BUYER) == first
    other = printer.invoice(make_invoice(number="FA/8/12/2026"), SELLER, BUYER)
    assert other != first
    reader = PdfReader(io.BytesIO(first))
    assert reader.metadata is not None
    assert reader.metadata.creation_date is not None
    assert reader.metadata.creation_date.date() == date(2026, 12, 1)


def test_the_fonts_are_embedded_subsets_shipped_with_the_package(
    printer: FpdfDocumentPrinter,
) -> None:
    assert (FONT_DIR / "DejaVuSans.ttf").is_file()
    assert (FONT_DIR / "DejaVuSans-Bold.ttf").is_file()
    assert "Bitstream" in (FONT_DIR / "LICENSE-DejaVu.txt").read_text(encoding="utf-8")
    reader = PdfReader(io.BytesIO(printer.invoice(make_invoice(), SELLER, BUYER)))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    names = sorted(str(font.get_object()["/BaseFont"]) for font in fonts.values())
    assert names == ["/MPDFAA+DejaVuSansBold", "/MPDFAA+DejaVuSansBook"]
    for font in fonts.values():
        descendant = font.get_object()["/DescendantFonts"][0].get_object()
        assert "/FontFile2" in descendant["/FontDescriptor"]


def test_a_pro_forma_in_a_foreign_currency_has_bilingual_labels(
    printer: FpdfDocumentPrinter,
) -> None:
    invoice = make_invoice(type_="FPF", currency="EUR", number="FPF/2/12/2026")
    text = one_spaced(text_of(printer.invoice(invoice, SELLER, BUYER, "foreign")))
    for expected in [
        "Faktura pro forma / Pro forma invoice", "nr / No. FPF/2/12/2026",
        "Data wystawienia / Issue date: 2026-12-01", "NIP / Tax ID: 5260250274",
        "Razem / Total 2890,99 418,55 3309,54",
        "Do zapłaty / Amount due: 3309,54 EUR", "przelew / bank transfer",
        "(14 dni / 14 days)", "nie jest fakturą VAT",
    ]:  # fmt: skip
        assert expected in text, expected


def test_a_buyer_without_nip_prints_none(printer: FpdfDocumentPrinter) -> None:
    text = text_of(printer.invoice(make_invoice(), SELLER, PERSON))
    assert "Anna Nowak" in text
    assert text.count("NIP") == 1


def test_a_long_invoice_runs_over_pages_with_the_total_on_the_last(
    printer: FpdfDocumentPrinter,
) -> None:
    invoice = make_invoice(count=90)
    reader = PdfReader(io.BytesIO(printer.invoice(invoice, SELLER, BUYER)))
    assert len(reader.pages) >= 3
    pages = [one_spaced(page.extract_text()) for page in reader.pages]
    assert all("Nazwa towaru lub usługi" in page for page in pages[:-1])
    assert all(f"{index}/{len(pages)}" in page for index, page in enumerate(pages, start=1))
    assert f"Do zapłaty: {money(invoice.totals.gross)} PLN" in pages[-1]
    assert "90 Szkolenie BHP (zwolnione)" in " ".join(pages)


def test_text_beyond_latin_takes_the_complete_font(printer: FpdfDocumentPrinter) -> None:
    seller = SELLER.model_copy(update={"name": "Ελληνική Εταιρεία — Компания"})
    text = one_spaced(text_of(printer.invoice(make_invoice(), seller, BUYER)))
    assert "Ελληνική Εταιρεία — Компания" in text
    assert POLISH in text


def test_a_payment_reminder_reads_back(printer: FpdfDocumentPrinter) -> None:
    pdf = printer.payment_reminder(REMINDER, SELLER, BUYER)
    text = one_spaced(text_of(pdf))
    for expected in [
        "Ponaglenie zapłaty", "nr PZ/3/2026", "Data wystawienia: 2026-12-01",
        SELLER.name, "NIP: 5260250274", BUYER.name, "NIP: 7740001454",
        "FA/7/10/2026 2026-10-31 31 12345,67 PLN", "Dni po terminie",
        "Do zapłaty: 12345,67 PLN", "PL61 1090 1014 0000 0712 1981 2874",
    ]:  # fmt: skip
        assert expected in text, expected
    assert printer.payment_reminder(REMINDER, SELLER, BUYER) == pdf
    later = dataclasses.replace(REMINDER, days_overdue=45)
    assert printer.payment_reminder(later, SELLER, BUYER) != pdf


@pytest.mark.parametrize(
    ("amount", "text"),
    [("0", "0,00"), ("5.5", "5,50"), ("999.99", "999,99"), ("1000", "1000,00"),
     ("1234567.891", "1234567,89"), ("0.005", "0,01")],
)  # fmt: skip
def test_money_has_a_decimal_comma_and_no_thousands_separator(amount: str, text: str) -> None:
    assert money(Decimal(amount)) == text
