"""Invoices and payment reminders as PDF, drawn with fpdf2 in DejaVu Sans.

The fonts ship in ``engine/adapters/fonts`` (never fetched at run time) and are embedded
as subsets, so every Polish letter prints and can be copied or searched. Amounts are
printed with a decimal comma and no thousands separator (``1230,00``).

The same document gives the same bytes: the PDF's creation date is the document's issue
date (midnight UTC) and nothing else in it depends on the time or the machine.

Speed: fpdf2 parses a TrueType file for every document and subsets it again when it
writes one. This printer parses each font once per process, from a copy reduced to the
Latin scripts (about 600 glyphs), and gives each document a light copy of the parsed
font; text with a letter outside those scripts (Greek, Cyrillic) is printed with the
complete font, more slowly. This relies on fpdf2 2.8's font objects (``FPDF.fonts``,
``TTFFont``, ``SubsetMap``); pyproject pins fpdf2 below 2.9.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Literal, cast

from fontTools import subset as font_subset  # type: ignore[import-untyped]
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

from engine.erp.document import Contractor, Seller
from engine.erp.model import Invoice, PaymentReminder
from engine.erp.money import VAT_RATES, Amounts, VatRate, to_grosz
from engine.erp.printing import DocumentPrinter, PrintLayout

FONT_DIR = Path(__file__).with_name("fonts")
FAMILY = "DejaVu"
FONT_FILES: dict[str, str] = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
"""The shipped font files by fpdf2 style: regular and bold."""

LATIN: tuple[tuple[int, int], ...] = (
    (0x0020, 0x007E),  # Basic Latin
    (0x00A0, 0x024F),  # Latin-1 Supplement, Latin Extended-A and -B
    (0x2010, 0x2027),  # dashes, quotes, bullet, ellipsis
    (0x2030, 0x203A),  # per mille, primes, angle quotes
    (0x2044, 0x2044),  # fraction slash
    (0x20A0, 0x20C0),  # currency signs
    (0x2116, 0x2116),  # numero sign
    (0x2122, 0x2122),  # trade mark sign
)
"""What the fast, reduced fonts cover; other text takes the complete font."""

Tier = Literal["latin", "full"]

PAGE_WIDTH, PAGE_HEIGHT = 210.0, 297.0
MARGIN = 15.0
RIGHT = PAGE_WIDTH - MARGIN
CONTENT = RIGHT - MARGIN
BOTTOM = PAGE_HEIGHT - 18.0
LINE = 4.2  # mm per line of 8-9 pt text

LABELS: dict[str, tuple[str, str]] = {
    "FA": ("Faktura VAT", "VAT invoice"),
    "FPF": ("Faktura pro forma", "Pro forma invoice"),
    "number": ("nr", "No."),
    "issue_date": ("Data wystawienia", "Issue date"),
    "sale_date": ("Data sprzedaży", "Date of sale"),
    "due_date": ("Termin płatności", "Due date"),
    "ksef_number": ("Numer KSeF", "KSeF number"),
    "seller": ("Sprzedawca", "Seller"),
    "buyer": ("Nabywca", "Buyer"),
    "nip": ("NIP", "Tax ID"),
    "account": ("Nr rachunku", "Bank account"),
    "lp": ("Lp.", "No."),
    "name": ("Nazwa towaru lub usługi", "Description"),
    "quantity": ("Ilość", "Qty"),
    "unit_price": ("Cena netto", "Unit net price"),
    "rate": ("Stawka VAT", "VAT rate"),
    "net": ("Wartość netto", "Net amount"),
    "vat": ("Kwota VAT", "VAT amount"),
    "gross": ("Wartość brutto", "Gross amount"),
    "by_rate": ("Zestawienie według stawek VAT", "VAT by rate"),
    "total": ("Razem", "Total"),
    "due": ("Do zapłaty", "Amount due"),
    "method": ("Sposób płatności", "Payment method"),
    "transfer": ("przelew", "bank transfer"),
    "page": ("strona", "page"),
    "pro_forma": (
        "Dokument pro forma nie jest fakturą VAT.",
        "A pro forma invoice is not a VAT invoice.",
    ),
}


class _Widths(dict[int, float]):
    """Advance widths; a missing glyph has the font's default width."""

    def __init__(self, widths: dict[int, float], missing: float) -> None:
        super().__init__(widths)
        self.missing = missing

    def __missing__(self, code: int) -> float:
        return self.missing


@dataclass(frozen=True)
class _Face:
    """One font style parsed once: what each document's copy starts from."""

    data: bytes
    template: TTFFont
    widths: dict[int, float]
    """Advance widths by code point, in thousandths of the font size."""


class _Fonts:
    """The parsed fonts of the process, made on first use (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faces: dict[tuple[Tier, str], _Face] = {}
        self._coverage: frozenset[int] | None = None

    def coverage(self) -> frozenset[int]:
        """The code points the reduced fonts print (those of every style)."""
        if self._coverage is None:
            covered = [set(self.face("latin", style).template.cmap) for style in FONT_FILES]
            self._coverage = frozenset(set.intersection(*covered))
        return self._coverage

    def face(self, tier: Tier, style: str) -> _Face:
        key = (tier, style)
        face = self._faces.get(key)
        if face is None:
            with self._lock:
                face = self._faces.get(key)
                if face is None:
                    face = self._faces[key] = _parse(tier, style)
        return face

    def install(self, pdf: FPDF, tier: Tier) -> dict[str, _Face]:
        """Make the family ``DejaVu`` (regular and bold) usable in ``pdf``; return the
        faces by style."""
        faces = {style: self.face(tier, style) for style in FONT_FILES}
        for face in faces.values():
            font = copy.copy(face.template)
            font.i = len(pdf.fonts) + 1
            # a fresh font program: fpdf2 subsets it in place when it writes the PDF;
            # the bounding boxes are the font's own, so nothing needs recomputing
            font.ttfont = TTFont(
                BytesIO(face.data), lazy=True, recalcTimestamp=False, recalcBBoxes=False
            )
            font.missing_glyphs = []
            font.biggest_size_pt = 0
            font.subset = SubsetMap(font)
            pdf.fonts[font.fontkey] = font
        return faces


def _parse(tier: Tier, style: str) -> _Face:
    path = FONT_DIR / FONT_FILES[style]
    data = path.read_bytes() if tier == "full" else _reduced(path)
    # TTFFont reads the font through fontTools, which takes a file object as well
    template = TTFFont(FPDF(), cast(Path, BytesIO(data)), f"{FAMILY.lower()}{style}", style)
    missing = float(template.desc.missing_width)
    widths = {code: float(template.cw[code]) for code in template.cmap}
    return _Face(data, template, _Widths(widths, missing))


def _reduced(path: Path) -> bytes:
    """The font at ``path`` with the glyphs of :data:`LATIN` only, without hinting or
    layout tables (fpdf2 does not use them)."""
    font = TTFont(path, recalcTimestamp=False)
    options = font_subset.Options()
    options.notdef_outline = True
    options.recommended_glyphs = True
    options.hinting = False
    options.layout_features = []
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "FFTM", "MATH", "hdmx"]
    subsetter = font_subset.Subsetter(options)
    subsetter.populate(unicodes=[code for low, high in LATIN for code in range(low, high + 1)])
    subsetter.subset(font)
    output = BytesIO()
    font.save(output)
    return output.getvalue()


_FONTS = _Fonts()


def money(amount: Decimal) -> str:
    """``amount`` as printed: ``1230,00`` (a decimal comma, no thousands separator, so
    that the figure reads back from the PDF as one word)."""
    return f"{to_grosz(amount):.2f}".replace(".", ",")


def quantity_text(quantity: Decimal) -> str:
    """``1,5``; ``10`` (no trailing zeros)."""
    return format(quantity.normalize(), "f").replace(".", ",")


def rate_text(rate: VatRate) -> str:
    """``23%``; ``zw.`` for exempt."""
    return "zw." if rate == "zw" else f"{rate}%"


def _clean(text: str) -> str:
    """One-line text: tabs and line breaks become spaces."""
    return " ".join(text.split())


def _lines(text: str) -> list[str]:
    """Multi-line text (an address): its non-empty lines, each made one line."""
    return [_clean(line) for line in text.splitlines() if line.strip()]


class _Sheet:
    """An A4 page set with a cursor ``y`` and the few drawing steps documents need."""

    def __init__(self, title: str, author: str, issued: date, texts: Iterable[str]) -> None:
        pdf = FPDF(unit="mm", format="A4")
        pdf.set_auto_page_break(False)
        pdf.set_margins(MARGIN, MARGIN, MARGIN)
        pdf.set_creation_date(datetime.combine(issued, time(0), UTC))
        pdf.set_title(title)
        pdf.set_author(author)
        pdf.set_creator("SOA Engine")
        pdf.set_lang("pl")
        # whitespace is printed as a plain space (see _clean)
        wanted = {ord(char) for text in texts for char in text if not char.isspace()}
        tier: Tier = "latin" if wanted <= _FONTS.coverage() else "full"
        self._faces = _FONTS.install(pdf, tier)
        self._widths: dict[int, float] = {}
        self._scale = 0.0
        self.pdf = pdf
        self.y = MARGIN
        self._footer = title

    def new_page(self) -> None:
        self.pdf.add_page()
        self.y = MARGIN
        self.font(7)
        self.pdf.set_text_color(110)
        self.text(MARGIN, PAGE_HEIGHT - 10, self._footer)
        # cell, not text: fpdf2 replaces the total page count alias in cells only
        self.pdf.set_xy(RIGHT - 30, PAGE_HEIGHT - 12.5)
        self.pdf.cell(30, 3.5, f"{self.pdf.page_no()}/{self.pdf.str_alias_nb_pages}", align="R")
        self.pdf.set_text_color(0)

    def font(self, size: float, bold: bool = False) -> None:
        style = "B" if bold else ""
        self.pdf.set_font(FAMILY, style, size)
        self._widths = self._faces[style].widths
        self._scale = size / self.pdf.k / 1000

    def width(self, text: str) -> float:
        """What ``pdf.get_string_width`` gives (no kerning or spacing), faster."""
        widths = self._widths
        return sum(widths[ord(char)] for char in text) * self._scale

    def text(self, x: float, y: float, text: str) -> None:
        if text:
            self.pdf.text(x, y, text)

    def right(self, x: float, y: float, text: str) -> None:
        """``text`` ending at ``x``."""
        self.text(x - self.width(text), y, text)

    def wrap(self, text: str, width: float) -> list[str]:
        """``text`` broken into lines no wider than ``width`` (words, else letters)."""
        lines: list[str] = []
        for paragraph in _lines(text) or [""]:
            line = ""
            for word in paragraph.split(" "):
                candidate = f"{line} {word}" if line else word
                if self.width(candidate) <= width:
                    line = candidate
                    continue
                if line:
                    lines.append(line)
                line = ""
                for char in word:
                    if line and self.width(line + char) > width:
                        lines.append(line)
                        line = ""
                    line += char
            lines.append(line)
        return lines

    def paragraph(self, text: str, step: float) -> None:
        """``text`` from the left margin, baseline at ``y``, wrapped; ``y`` moves ``step``
        per line."""
        for part in self.wrap(text, CONTENT):
            self.text(MARGIN, self.y, part)
            self.y += step

    def room(self, height: float) -> bool:
        """Whether ``height`` more fits on the page."""
        return self.y + height <= BOTTOM

    def fill(self, x: float, y: float, width: float, height: float) -> None:
        self.pdf.set_fill_color(236)
        self.pdf.rect(x, y, width, height, style="F")

    def rule(self, y: float, x: float = MARGIN, to: float = RIGHT) -> None:
        self.pdf.line(x, y, to, y)

    def output(self) -> bytes:
        return bytes(self.pdf.output())


@dataclass(frozen=True)
class _Column:
    title: str
    width: float
    align: Literal["L", "R"] = "R"


class _Table:
    """Rows of cells under a shaded header, repeated on a new page."""

    def __init__(self, sheet: _Sheet, columns: Sequence[_Column], x: float = MARGIN,
                 size: float = 8) -> None:
        self.sheet = sheet
        self.columns = columns
        self.x = x
        self.size = size
        self.line = LINE * size / 9
        self.width = sum(column.width for column in columns)

    def header(self) -> None:
        sheet = self.sheet
        sheet.font(self.size - 0.5, bold=True)
        cells = [sheet.wrap(column.title, column.width - 2) for column in self.columns]
        height = max(len(lines) for lines in cells) * self.line + 2
        sheet.fill(self.x, sheet.y, self.width, height)
        self._cells(cells, [column.align for column in self.columns], height)

    def row(self, values: Sequence[str], bold: bool = False) -> None:
        sheet = self.sheet
        sheet.font(self.size, bold)
        cells = [sheet.wrap(value, column.width - 2) if column.align == "L" else [value]
                 for value, column in zip(values, self.columns, strict=True)]
        height = max(len(lines) for lines in cells) * self.line + 2
        if not sheet.room(height):
            sheet.new_page()
            self.header()
            sheet.font(self.size, bold)
        self._cells(cells, [column.align for column in self.columns], height)

    def _cells(self, cells: Sequence[list[str]], aligns: Sequence[str], height: float) -> None:
        sheet = self.sheet
        x = self.x
        for lines, align, column in zip(cells, aligns, self.columns, strict=True):
            for index, line in enumerate(lines):
                baseline = sheet.y + 1 + (index + 0.78) * self.line
                if align == "R":
                    sheet.right(x + column.width - 1, baseline, line)
                else:
                    sheet.text(x + 1, baseline, line)
            x += column.width
        sheet.y += height
        sheet.pdf.set_draw_color(170)
        sheet.pdf.set_line_width(0.15)
        sheet.rule(sheet.y, self.x, self.x + self.width)
        sheet.pdf.set_draw_color(0)


class FpdfDocumentPrinter(DocumentPrinter):
    """Prints with fpdf2 in the shipped DejaVu Sans; safe to share between threads."""

    def invoice(self, invoice: Invoice, seller: Seller, buyer: Contractor,
                layout: PrintLayout = "pl") -> bytes:
        def label(key: str) -> str:
            polish, english = LABELS[key]
            return polish if layout == "pl" else f"{polish} / {english}"

        title = f"{LABELS[invoice.type][0]} {invoice.number}"
        texts = [invoice.number, invoice.currency, *_party_texts(seller, buyer),
                 *(line.name for line in invoice.lines), invoice.ksef_number or "",
                 buyer.vat_id or ""]
        sheet = _Sheet(title, seller.name, invoice.issue_date, texts)
        sheet.new_page()

        dates = [(f"{label(key)}:", value.isoformat()) for key, value in (
            ("issue_date", invoice.issue_date), ("sale_date", invoice.sale_date),
            ("due_date", invoice.due_date))]
        if invoice.ksef_number:
            dates.append((f"{label('ksef_number')}:", invoice.ksef_number))
        _heading(sheet, label(invoice.type), f"{label('number')} {invoice.number}", dates)

        seller_lines = [f"{label('nip')}: {seller.nip}", *_lines(seller.address)]
        if seller.bank_account:
            seller_lines.append(f"{label('account')}: {_clean(seller.bank_account)}")
        buyer_lines = ([f"{label('nip')}: {buyer.nip}"] if buyer.nip else []) + (
            [f"VAT: {buyer.country}{buyer.vat_id}"] if buyer.vat_id else []) + _lines(
            buyer.address
        )
        _parties(sheet, (label("seller"), seller.name, seller_lines),
                 (label("buyer"), buyer.name, buyer_lines))

        sheet.y += 4
        table = _Table(sheet, [
            _Column(label("lp"), 8), _Column(label("name"), 54, "L"),
            _Column(label("quantity"), 14), _Column(label("unit_price"), 22),
            _Column(label("rate"), 14), _Column(label("net"), 22), _Column(label("vat"), 22),
            _Column(label("gross"), 24),
        ])
        table.header()
        for position, line in enumerate(invoice.lines, start=1):
            table.row([
                str(position), line.name, quantity_text(line.quantity),
                money(line.unit_net_price), rate_text(line.vat_rate),
                money(line.amounts.net), money(line.amounts.vat), money(line.amounts.gross),
            ])

        sheet.y += 5
        summary = _Table(sheet, [
            _Column(label("rate"), 22), _Column(label("net"), 26), _Column(label("vat"), 26),
            _Column(label("gross"), 26),
        ], x=RIGHT - 100)
        # the summary, the amount due and the terms stay together
        if not sheet.room(12 + 6.5 * (len(invoice.vat_by_rate) + 1) + 50):
            sheet.new_page()
        sheet.font(8.5, bold=True)
        sheet.text(RIGHT - 100, sheet.y + 3, label("by_rate"))
        sheet.y += 4.5
        summary.header()
        for rate in _rates(invoice.vat_by_rate):
            summary.row([rate_text(rate), *_amounts(invoice.vat_by_rate[rate])])
        summary.row([label("total"), *_amounts(invoice.totals)], bold=True)

        sheet.y += 8
        sheet.font(12, bold=True)
        sheet.text(MARGIN, sheet.y,
                   f"{label('due')}: {money(invoice.totals.gross)} {invoice.currency}")
        sheet.y += 7
        sheet.font(8.5)
        days = (invoice.due_date - invoice.issue_date).days
        terms = [
            f"{label('method')}: {label('transfer')}",
            f"{label('due_date')}: {invoice.due_date.isoformat()} ({_days(days, layout)})",
        ]
        if seller.bank_account:
            terms.append(f"{label('account')}: {_clean(seller.bank_account)}")
        if invoice.type == "FPF":
            terms.append(label("pro_forma"))
        for term in terms:
            sheet.paragraph(term, LINE)
        return sheet.output()

    def payment_reminder(self, reminder: PaymentReminder, seller: Seller,
                         buyer: Contractor) -> bytes:
        title = f"Ponaglenie zapłaty {reminder.number}"
        texts = [reminder.number, reminder.document, reminder.currency,
                 *_party_texts(seller, buyer)]
        sheet = _Sheet(title, seller.name, reminder.issue_date, texts)
        sheet.new_page()

        _heading(sheet, "Ponaglenie zapłaty", f"nr {reminder.number}",
                 [("Data wystawienia:", reminder.issue_date.isoformat())])

        seller_lines = [f"NIP: {seller.nip}", *_lines(seller.address)]
        buyer_lines = ([f"NIP: {buyer.nip}"] if buyer.nip else []) + _lines(buyer.address)
        _parties(sheet, ("Wierzyciel", seller.name, seller_lines),
                 ("Dłużnik", buyer.name, buyer_lines))

        sheet.y += 6
        sheet.font(9)
        intro = ("Uprzejmie przypominamy, że do dnia wystawienia tego pisma nie otrzymaliśmy "
                 "zapłaty poniższej należności, której termin płatności minął.")
        sheet.y += 3.5
        sheet.paragraph(intro, LINE * 1.1)
        table = _Table(sheet, [
            _Column("Dokument", 60, "L"), _Column("Termin płatności", 35),
            _Column("Dni po terminie", 35), _Column("Kwota do zapłaty", 50),
        ], size=9)
        table.header()
        table.row([reminder.document, reminder.due_date.isoformat(),
                   str(reminder.days_overdue), f"{money(reminder.amount)} {reminder.currency}"])

        sheet.y += 9
        sheet.font(12, bold=True)
        sheet.text(MARGIN, sheet.y, f"Do zapłaty: {money(reminder.amount)} {reminder.currency}")
        sheet.y += 8
        sheet.font(9)
        closing = [
            "Prosimy o niezwłoczną wpłatę"
            + (f" na rachunek nr {_clean(seller.bank_account)}." if seller.bank_account
               else "."),
            "Jeśli należność została już zapłacona, prosimy uznać to pismo za nieaktualne.",
        ]
        for paragraph in closing:
            sheet.paragraph(paragraph, LINE * 1.1)
        return sheet.output()


def _heading(sheet: _Sheet, title: str, number: str, dates: list[tuple[str, str]]) -> None:
    """The title and number on the left, ``dates`` (label, value) on the right; the title
    is made smaller if it would reach the dates."""
    sheet.font(8.5, bold=True)
    value_width = max(sheet.width(value) for _, value in dates)
    sheet.font(8.5)
    label_width = max(sheet.width(text) for text, _ in dates)
    for index, (text, value) in enumerate(dates):
        baseline = sheet.y + 4 + index * LINE * 1.1
        sheet.font(8.5)
        sheet.right(RIGHT - value_width - 2, baseline, text)
        sheet.font(8.5, bold=True)
        sheet.right(RIGHT, baseline, value)
    room = CONTENT - label_width - value_width - 8
    size = 16.0
    sheet.font(size, bold=True)
    while size > 10 and sheet.width(title) > room:
        size -= 0.5
        sheet.font(size, bold=True)
    sheet.text(MARGIN, sheet.y + 6, title)
    sheet.font(11, bold=True)
    sheet.text(MARGIN, sheet.y + 12.5, number)
    sheet.y += 20


def _party_texts(seller: Seller, buyer: Contractor) -> list[str]:
    return [seller.name, seller.address, seller.bank_account, buyer.name, buyer.address]


def _parties(sheet: _Sheet, *parties: tuple[str, str, list[str]]) -> None:
    """Two blocks side by side: a heading, the name in bold, then ``lines``."""
    width = (CONTENT - 6) / 2
    bottom = sheet.y
    for index, (heading, name, lines) in enumerate(parties):
        x = MARGIN + index * (width + 6)
        y = sheet.y
        sheet.font(7.5, bold=True)
        sheet.pdf.set_text_color(90)
        sheet.text(x, y + 3, heading.upper())
        sheet.pdf.set_text_color(0)
        sheet.pdf.set_draw_color(170)
        sheet.pdf.set_line_width(0.15)
        sheet.rule(y + 4.2, x, x + width)
        sheet.pdf.set_draw_color(0)
        y += 4.5
        sheet.font(9.5, bold=True)
        for part in sheet.wrap(name, width):
            y += LINE * 1.1
            sheet.text(x, y, part)
        sheet.font(8.5)
        for line in lines:
            for part in sheet.wrap(line, width):
                y += LINE
                sheet.text(x, y, part)
        bottom = max(bottom, y)
    sheet.y = bottom + 2


def _rates(by_rate: dict[VatRate, Amounts]) -> list[VatRate]:
    return [rate for rate in VAT_RATES if rate in by_rate]


def _amounts(amounts: Amounts) -> list[str]:
    return [money(amounts.net), money(amounts.vat), money(amounts.gross)]


def _days(days: int, layout: PrintLayout) -> str:
    polish = f"{days} {'dzień' if days == 1 else 'dni'}"
    if layout == "pl":
        return polish
    return f"{polish} / {days} {'day' if days == 1 else 'days'}"
