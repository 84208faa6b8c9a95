"""The public page where a citizen checks a receipt by its lookup code (GET /receipts/{lookup_code}).

Anyone holding the code can open it, so it shows what the paper receipt shows and nothing more: the payer's name
masked, and no phone, email, customer code or payment id. Every value is HTML-escaped.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from gateway.masking import mask_name
from gateway.receipts.wording import amount_in_figures, vietnamese_date

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;margin:0;background:#f4f5f7;
color:#1d1f23}main{max-width:36rem;margin:2rem auto;background:#fff;border-radius:8px;padding:1.5rem 2rem;
box-shadow:0 1px 3px rgba(0,0,0,.12)}h1{font-size:1.3rem;margin:.2rem 0 1rem;text-align:center}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem;margin:0}dt{color:#5b616b}dd{margin:0}
.status{display:inline-block;padding:.1rem .6rem;border-radius:1rem;font-weight:600}
.issued{background:#e3f5e8;color:#17692f}.canceled{background:#fde2e2;color:#a11616}
.note{color:#5b616b;font-size:.85rem;margin-top:1.2rem}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="vi">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def receipt_page(document: dict[str, Any], issued_at: datetime, canceled_at: datetime | None) -> str:
    r = document
    seller, payer = r["seller"], r["payer"]
    canceled = r["status"] == "canceled"
    status = (
        '<span class="status canceled">Đã hủy</span>'
        + (f" ({escape(vietnamese_date(canceled_at))})" if canceled_at else "")
        if canceled
        else '<span class="status issued">Hợp lệ (đã phát hành)</span>'
    )
    rows = [
        ("Trạng thái", status),
        ("Mẫu số", escape(r["template"])),
        ("Ký hiệu", escape(r["series"])),
        ("Số", f"<strong>{escape(r['number'])}</strong>"),
        ("Ngày phát hành", escape(vietnamese_date(issued_at))),
        ("Đơn vị thu", escape(seller.get("name") or "")),
    ]
    if seller.get("tax_code"):
        rows.append(("Mã số thuế", escape(seller["tax_code"])))
    if seller.get("address"):
        rows.append(("Địa chỉ", escape(seller["address"])))
    rows += [
        ("Người nộp tiền", escape(mask_name(payer["name"])) if payer.get("name") else "—"),
        ("Số tiền", f"<strong>{escape(amount_in_figures(r['amount'], r['currency']))}</strong>"),
        ("Bằng chữ", escape(r["amount_in_words"])),
    ]
    platform = r.get("national_platform") or {}
    if platform.get("transaction_id"):
        rows.append(("Mã giao dịch Cổng DVCQG", escape(platform["transaction_id"])))
    if str(platform.get("receipt_url") or "").startswith(("https://", "http://")):
        url = escape(platform["receipt_url"])
        rows.append(("Biên lai Cổng DVCQG", f'<a href="{url}" rel="noopener noreferrer">{url}</a>'))
    details = "\n".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
    test = "" if r["livemode"] else '<p class="note">Biên lai thử nghiệm (chế độ test): không có giá trị.</p>\n'
    body = (
        "<h1>BIÊN LAI THU TIỀN</h1>\n"
        f"{test}<dl>\n{details}\n</dl>\n"
        '<p class="note">Trang tra cứu biên lai điện tử. Thông tin người nộp tiền được che một phần.</p>'
    )
    return _page(f"Biên lai {r['series']} số {r['number']}", body)


def not_found_page() -> str:
    body = (
        "<h1>Không tìm thấy biên lai</h1>\n"
        "<p>Mã tra cứu không đúng hoặc biên lai không tồn tại. Vui lòng kiểm tra lại mã in trên biên lai.</p>\n"
        '<p class="note">Receipt not found: check the lookup code printed on the receipt.</p>'
    )
    return _page("Không tìm thấy biên lai", body)
