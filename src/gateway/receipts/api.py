"""Receipts (§14): the merchant's settings (admin token), the merchant's receipts and their PDF (its key), and the
public lookup page a citizen opens with the code printed on a receipt (no key)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from gateway.api_support import (
    ADMIN_TOKEN,
    JSON_BODY,
    MERCHANT_KEY,
    PARAMETERS,
    Limit,
    StartingAfter,
    json_response,
    problems,
)
from gateway.auth import AdminDep, MerchantDep, RuntimeDep
from gateway.domain import ReceiptStatus
from gateway.errors import DATABASE_UNAVAILABLE, NotFound
from gateway.receipts import repository, service
from gateway.receipts.page import not_found_page, receipt_page
from gateway.receipts.schemas import ReceiptObject, ReceiptSettingsObject, ReceiptSettingsPut
from gateway.schemas import ListEnvelope, list_document

router = APIRouter()
_TAGS: list[str | Any] = ["receipts"]
_LOOKUP_CODE = re.compile(r"[A-Za-z0-9]{1,32}")
_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._-]")
# The public page holds a (masked) person's receipt: never cached, indexed or leaked through a Referer.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
_HTML = {"text/html": {"schema": {"type": "string"}}}


@router.put(
    "/v1/merchants/{merchant_id}/receipts",
    response_model=ReceiptSettingsObject,
    summary="Set the merchant's electronic receipts",
    tags=["merchants (admin token)"],
    responses=problems(*ADMIN_TOKEN, *JSON_BODY, NotFound),
    description="Replaces the settings whole. With `enabled: true` every payment of the merchant (both modes) that "
    "succeeds from now on gets exactly one receipt, numbered `00000001`, `00000002`, … per template, series and "
    "Vietnam calendar year; `seller.name` is then required. Payments that succeeded before are not receipted.",
)
async def put_receipt_settings(merchant_id: str, params: ReceiptSettingsPut, rt: RuntimeDep, _: AdminDep) -> Response:
    async with rt.db.transaction() as session:
        row = await service.put_settings(session, rt, merchant_id, params)
        document = service.settings_object(row)
    return json_response(document)


@router.get(
    "/v1/receipts",
    response_model=ListEnvelope[ReceiptObject],
    summary="List receipts, newest first",
    tags=_TAGS,
    responses=problems(*MERCHANT_KEY, *PARAMETERS),
)
async def list_receipts(
    rt: RuntimeDep,
    scope: MerchantDep,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    payment_id: Annotated[str | None, Query(max_length=64)] = None,
    status: ReceiptStatus | None = None,
) -> Response:
    filters = repository.ReceiptFilters(payment_id=payment_id, status=status)
    async with rt.db.transaction() as session:
        rows, has_more = await repository.list_page(session, scope, filters, limit, starting_after)
        documents = [service.receipt_object(rt, r) for r in rows]
    return json_response(list_document(documents, has_more))


# Declared before /v1/receipts/{receipt_id}, which would otherwise take "rcp_….pdf" as an id.
@router.get(
    "/v1/receipts/{receipt_id}.pdf",
    response_class=Response,
    summary="The receipt as an A5 PDF",
    tags=_TAGS,
    responses={
        200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}},
        **problems(*MERCHANT_KEY, *PARAMETERS, NotFound),
    },
    description="Printable, A5 portrait, in Vietnamese; its text (diacritics included) can be extracted. A canceled "
    "receipt is marked ĐÃ HỦY (canceled).",
)
async def receipt_pdf(receipt_id: str, rt: RuntimeDep, scope: MerchantDep) -> Response:
    # Imported here: fpdf2 (with fontTools and Pillow) adds ~0.3 s to every process start, and a restarted server
    # should take its traffic back at once; only a PDF request needs it.
    from gateway.receipts.pdf import PrintedReceipt, render_pdf

    async with rt.db.transaction() as session:
        receipt = await service.get_receipt(session, scope, receipt_id)
        printed = PrintedReceipt(
            document=service.receipt_object(rt, receipt),
            issued_at=receipt.issued_at,
            canceled_at=receipt.canceled_at,
            replaced_number=await service.replaced_number(session, receipt),
        )
    content = await run_in_threadpool(render_pdf, printed)  # font subsetting is CPU work: off the event loop
    filename = _UNSAFE_IN_FILENAME.sub("_", f"receipt-{receipt.series}-{receipt.number}.pdf")
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.get(
    "/v1/receipts/{receipt_id}",
    response_model=ReceiptObject,
    summary="Get a receipt",
    tags=_TAGS,
    responses=problems(*MERCHANT_KEY, *PARAMETERS, NotFound),
)
async def get_receipt(receipt_id: str, rt: RuntimeDep, scope: MerchantDep) -> Response:
    async with rt.db.transaction() as session:
        document = service.receipt_object(rt, await service.get_receipt(session, scope, receipt_id))
    return json_response(document)


@router.get(
    "/receipts/{lookup_code}",
    response_class=HTMLResponse,
    summary="Public receipt lookup page (no key)",
    tags=["public pages"],
    responses={
        200: {"description": "The receipt, the payer's name masked", "content": _HTML},
        404: {"description": "No receipt has this lookup code", "content": _HTML},
        **problems(*PARAMETERS, DATABASE_UNAVAILABLE),
    },
    description="What a citizen opens with the lookup code printed on a receipt: its number, template and series, "
    "the seller, the amount in figures and in words, its status and date. The payer's name is masked; no phone, "
    "email, customer code or payment id is shown. An HTML page in Vietnamese (UTF-8).",
)
async def receipt_lookup_page(lookup_code: str, rt: RuntimeDep) -> Response:
    receipt = None
    if _LOOKUP_CODE.fullmatch(lookup_code):
        async with rt.db.transaction() as session:
            receipt = await repository.by_lookup_code(session, lookup_code.upper())
    if receipt is None:
        return HTMLResponse(not_found_page(), status_code=404, headers=_PAGE_HEADERS)
    page = receipt_page(service.receipt_object(rt, receipt), receipt.issued_at, receipt.canceled_at)
    return HTMLResponse(page, headers=_PAGE_HEADERS)
