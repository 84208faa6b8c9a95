"""A receipt as an A5 PDF (GET /v1/receipts/{id}.pdf).

Drawn with fpdf2: pure Python (no system library such as cairo or a headless browser to install on the servers),
small, maintained, and it embeds a subset of a TrueType font with a ToUnicode map, so the Vietnamese text —
diacritics included — displays the same everywhere and can be extracted, searched and copied. The font is DejaVu
Sans, shipped in `fonts/` with its license: it covers every Vietnamese letter and needs nothing on the host.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos

from gateway.clock import vietnam_time
from gateway.labels import CHANNEL_NAMES, METHOD_NAMES
from gateway.receipts.wording import amount_in_figures, vietnamese_date

FONTS = Path(__file__).resolve().parent / "fonts"
FAMILY = "DejaVuSans"
A5_MM = (148, 210)  # ISO 216 A5 portrait (419.53 by 595.28 pt)
_RED = (190, 20, 20)
_GREY = (90, 90, 90)


@dataclass(frozen=True)
class PrintedReceipt:
    """What the PDF shows: the receipt document, and the number of the receipt it replaces (if any)."""

    document: dict[str, Any]
    issued_at: datetime
    canceled_at: datetime | None
    replaced_number: str | None


def _nfc(value: object) -> str:
    # Without text shaping, combining marks would be drawn apart from their letter: compose them first.
    return unicodedata.normalize("NFC", str(value))


class _Receipt(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="portrait", unit="mm", format=A5_MM)
        self.add_font(FAMILY, "", FONTS / "DejaVuSans.ttf")
        self.add_font(FAMILY, "B", FONTS / "DejaVuSans-Bold.ttf")
        self.set_margins(12, 12, 12)
        self.set_auto_page_break(auto=True, margin=12)

    def line_of(self, text: str, *, size: float = 9, bold: bool = False, align: Align = Align.L) -> None:
        self.set_font(FAMILY, "B" if bold else "", size)
        self.multi_cell(0, size * 0.5, _nfc(text), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def labelled(self, label: str, value: object, *, size: float = 9) -> None:
        self.set_font(FAMILY, "B", size)
        self.write(size * 0.5, _nfc(f"{label}: "))
        self.set_font(FAMILY, "", size)
        self.write(size * 0.5, _nfc(value))
        self.ln(size * 0.5)


def render_pdf(printed: PrintedReceipt) -> bytes:
    """CPU work (font subsetting): call it off the event loop."""
    r = printed.document
    seller, payer = r["seller"], r["payer"]
    pdf = _Receipt()
    pdf.set_lang("vi")
    pdf.set_title(_nfc(f"Biên lai {r['series']} {r['number']}"))
    pdf.set_author(_nfc(seller.get("name") or ""))
    pdf.set_creation_date(printed.issued_at)
    pdf.add_page()
    if r["status"] == "canceled":
        _watermark(pdf, "ĐÃ HỦY")

    pdf.line_of(seller.get("name") or "", size=10, bold=True)
    if seller.get("tax_code"):
        pdf.labelled("Mã số thuế", seller["tax_code"])
    if seller.get("address"):
        pdf.labelled("Địa chỉ", seller["address"])
    pdf.ln(1)
    pdf.labelled("Mẫu số", r["template"])
    pdf.labelled("Ký hiệu", r["series"])
    pdf.labelled("Số", r["number"])
    pdf.ln(3)

    pdf.line_of("BIÊN LAI THU TIỀN", size=15, bold=True, align=Align.C)
    pdf.line_of(vietnamese_date(printed.issued_at), size=9, align=Align.C)
    if not r["livemode"]:
        pdf.set_text_color(*_GREY)
        pdf.line_of("Chế độ thử nghiệm — không có giá trị thanh toán", size=8, align=Align.C)
        pdf.set_text_color(0, 0, 0)
    if printed.replaced_number is not None:
        pdf.line_of(f"Thay thế biên lai số {printed.replaced_number}", size=8, align=Align.C)
    pdf.ln(3)

    pdf.labelled("Người nộp tiền", payer.get("name") or "—")
    if payer.get("code"):
        pdf.labelled("Mã khách hàng", payer["code"])
    method = METHOD_NAMES.get(r["method"], r["method"])
    pdf.labelled("Hình thức thanh toán", f"{method}, {CHANNEL_NAMES.get(r['channel'], r['channel']).lower()}")
    pdf.labelled("Mã giao dịch", r["payment_id"])
    platform = r.get("national_platform") or {}
    if platform.get("transaction_id"):
        pdf.labelled("Mã giao dịch Cổng DVCQG", platform["transaction_id"])
    if platform.get("receipt_url"):
        pdf.labelled("Biên lai Cổng DVCQG", platform["receipt_url"])
    pdf.ln(2)

    pdf.set_font(FAMILY, "", 9)
    with pdf.table(
        col_widths=(10, 78, 36),
        text_align=(Align.C, Align.L, Align.R),
        line_height=5,
        headings_style=None,
        first_row_as_headings=False,
    ) as table:
        pdf.set_font(FAMILY, "B", 9)
        heading = table.row()
        for title in ("STT", "Nội dung", "Số tiền"):
            heading.cell(title)
        pdf.set_font(FAMILY, "", 9)
        for position, item in enumerate(r["items"], start=1):
            row = table.row()
            row.cell(str(position))
            row.cell(_nfc(item["description"]))
            row.cell(amount_in_figures(item["amount"], r["currency"]))
    pdf.ln(2)
    pdf.labelled("Tổng cộng", amount_in_figures(r["amount"], r["currency"]), size=10)
    pdf.line_of("Số tiền bằng chữ:", bold=True)
    pdf.line_of(r["amount_in_words"])
    pdf.ln(3)

    if r["status"] == "canceled":
        pdf.set_text_color(*_RED)
        when = f" — {vietnam_time(printed.canceled_at):%d/%m/%Y %H:%M}" if printed.canceled_at else ""
        pdf.line_of(f"ĐÃ HỦY{when}", size=11, bold=True, align=Align.C)
        pdf.set_text_color(0, 0, 0)
        pdf.ln(2)

    pdf.set_text_color(*_GREY)
    pdf.line_of(f"Tra cứu biên lai: {r['lookup_url']}", size=8)
    pdf.labelled("Mã tra cứu", r["lookup_code"], size=8)
    pdf.set_text_color(0, 0, 0)
    return bytes(pdf.output())


def _watermark(pdf: _Receipt, text: str) -> None:
    """Across the page, drawn first so the receipt's text stays on top of it."""
    pdf.set_text_color(245, 200, 200)
    pdf.set_font(FAMILY, "B", 48)
    with pdf.rotation(35, x=pdf.w / 2, y=pdf.h / 2):
        pdf.text(pdf.w / 2 - pdf.get_string_width(text) / 2, pdf.h / 2, text)
    pdf.set_text_color(0, 0, 0)
