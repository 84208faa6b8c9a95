"""A receipt as a document: the A5 PDF (its text extracted, diacritics included) and the public lookup page."""

from __future__ import annotations

import io
import re
import unicodedata

import httpx
import pypdf

from tests.conftest import MerchantHandle, create_vietqr_payment, pay, refund
from tests.receipts.support import SELLER, enable_receipts, the_receipt

A5_POINTS = (419.53, 595.28)
PAYER = "NGUYỄN VĂN AN"


def normalised(text: str) -> str:
    """NFC, one space for any run of whitespace (a PDF line break is not a difference)."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()


async def paid_with_receipt(client: httpx.AsyncClient, merchant: MerchantHandle) -> dict[str, str]:
    await enable_receipts(client, merchant)
    payment = await create_vietqr_payment(
        client, merchant, amount=150000, customer={"name": PAYER, "phone": "0912345678", "email": "an@example.vn"}
    )
    assert (await pay(client, merchant, payment["id"])).json()["status"] == "succeeded"
    return await the_receipt(client, merchant, payment["id"])


def pdf_text(content: bytes) -> tuple[str, tuple[float, float]]:
    reader = pypdf.PdfReader(io.BytesIO(content))
    assert len(reader.pages) == 1
    page = reader.pages[0]
    size = (float(page.mediabox.width), float(page.mediabox.height))
    return normalised(page.extract_text()), size


async def test_the_pdf_is_an_a5_page_whose_vietnamese_text_extracts(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    receipt = await paid_with_receipt(client, merchant)

    response = await client.get(f"/v1/receipts/{receipt['id']}.pdf", headers=merchant.headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    text, size = pdf_text(response.content)
    assert all(abs(got - want) <= 1 for got, want in zip(size, A5_POINTS, strict=True)), size
    for expected in (
        "BIÊN LAI THU TIỀN",
        receipt["number"],
        receipt["template"],
        receipt["series"],
        SELLER["name"],
        SELLER["tax_code"],
        SELLER["address"],
        PAYER,
        "150.000 đồng",
        "Một trăm năm mươi nghìn đồng",
        "Ngày 22 tháng 11 năm 2026, 17:00",  # 10:00 UTC in Vietnam time
        receipt["lookup_url"],
    ):
        assert normalised(expected) in text, (expected, text)
    assert "ĐÃ HỦY" not in text


async def test_a_canceled_receipts_pdf_says_so(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    receipt = await paid_with_receipt(client, merchant)
    assert (await refund(client, merchant, receipt["payment_id"])).json()["status"] == "succeeded"

    response = await client.get(f"/v1/receipts/{receipt['id']}.pdf", headers=merchant.headers)

    text, _ = pdf_text(response.content)
    assert "ĐÃ HỦY" in text and receipt["number"] in text


async def test_the_lookup_page_shows_the_receipt_with_the_payer_masked(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    receipt = await paid_with_receipt(client, merchant)

    page = await client.get(f"/receipts/{receipt['lookup_code']}")  # no key

    assert page.status_code == 200, page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-store"
    html = unicodedata.normalize("NFC", page.text)
    for expected in (receipt["number"], "01BLP0-001", "AA-26E", SELLER["name"], "150.000 đồng"):
        assert expected in html, expected
    assert "Một trăm năm mươi nghìn đồng" in html
    assert "NGUYỄN V** AN" in html
    for secret in (PAYER, "0912345678", "an@example.vn", receipt["payment_id"], receipt["id"]):
        assert secret not in html, secret
    # The code is matched as printed, whatever the case it is typed in.
    assert (await client.get(f"/receipts/{receipt['lookup_code'].lower()}")).status_code == 200


async def test_the_lookup_page_of_a_canceled_receipt_and_of_an_unknown_code(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    receipt = await paid_with_receipt(client, merchant)
    assert (await refund(client, merchant, receipt["payment_id"])).json()["status"] == "succeeded"

    canceled = await client.get(f"/receipts/{receipt['lookup_code']}")
    unknown = await client.get("/receipts/AAAAAAAAAAAAAAAA")
    odd = await client.get("/receipts/%3Cscript%3E")

    assert canceled.status_code == 200 and "Đã hủy" in canceled.text
    for missing in (unknown, odd):
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "text/html; charset=utf-8"
        assert "Không tìm thấy biên lai" in missing.text
        assert "<script>" not in missing.text


async def test_the_lookup_page_escapes_what_it_shows(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    await enable_receipts(client, merchant, seller={"name": "<script>alert(1)</script> & Co"})
    payment = await create_vietqr_payment(client, merchant, customer={"name": "<b>Lê</b> Văn Tám"})
    assert (await pay(client, merchant, payment["id"])).json()["status"] == "succeeded"
    receipt = await the_receipt(client, merchant, payment["id"])

    page = await client.get(f"/receipts/{receipt['lookup_code']}")

    assert "<script>" not in page.text and "<b>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page.text
