"""`POST /v1/bills/import` (§11): up to 10,000 bills in one request, as JSON or CSV.

Set-based throughout, so a request costs a handful of statements whatever its size: every row is validated in
Python first; then one query (per 1,000 values) loads the customers the file names and one the bills with its
numbers; new customers and new bills go in in bulk (a COPY on PostgreSQL; when a concurrent import took a key
meanwhile, an INSERT that skips it, and that row is then judged against what the other import stored); the
`bill.created` events and their webhook deliveries are written in bulk too, the events built while PostgreSQL
writes the bills. Rows are plain dicts and Core statements — no ORM object per row — except
for the few customers holding a balance, whose new bills take it at once through the one allocation path.

Invalid rows are reported (`{"row", "code", "detail"}`, rows numbered from 1) and skipped; the others are stored.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any, cast

import orjson
import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.bills import repository
from gateway.bills.allocation import apply_balance
from gateway.bills.models import Bill
from gateway.bills.schemas import BillImportRow, CustomerByCode
from gateway.bills.service import bill_object
from gateway.customers import repository as customers
from gateway.customers.service import new_payment_code, transfer_codes
from gateway.db import plan_bulk_statements_each_time
from gateway.domain import AmountRule, BillStatus, EventType
from gateway.errors import MalformedCsv, MalformedJson, TooManyRows, UnsupportedMediaType, ValidationFailed
from gateway.events.service import event_rows, write_events
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.bills.import")

MAX_ROWS = 10_000
# The CSV columns: the bill's fields with its customer by code (or id); `lines` and `metadata` are JSON only.
CSV_COLUMNS = (
    "number",
    "amount",
    "currency",
    "description",
    "period",
    "due_date",
    "amount_rule",
    "customer_code",
    "customer_name",
    "customer",
)
REQUIRED_CSV_COLUMNS = ("number", "amount")
EVENT_SLICE = 2_000  # bill.created events written at a time
EVENTS_AHEAD = 4_000  # of them built while the bills are written
EVENT_STEP = 500  # built between two turns of the event loop
_INTEGER = re.compile(r"-?[0-9]{1,19}")


# --- the request body ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowsIn:
    """The rows of a request, as sent: JSON values, or a CSV record's non-empty cells by column. `broken` holds
    rows already known to be unusable (row number → detail), e.g. a CSV record with more cells than the header."""

    rows: list[Any]
    broken: dict[int, str] = field(default_factory=dict)


def read_rows(content_type: str | None, body: bytes) -> RowsIn:
    """Whole-request checks (media type, encoding, the envelope or header, the row count): raises before anything
    is stored; row-level problems are left to `import_bills`."""
    media_type, _, parameters = (content_type or "application/json").partition(";")
    media_type = media_type.strip().lower()
    charset = _charset(parameters)
    if charset not in (None, "utf-8", "utf8"):
        raise UnsupportedMediaType(f"Bodies are UTF-8; charset={charset} is not accepted.")
    if media_type in ("application/json", "") or media_type.endswith("+json"):
        return _json_rows(body)
    if media_type in ("text/csv", "application/csv"):
        return _csv_rows(body)
    raise UnsupportedMediaType(
        f'Content-Type {media_type!r} is not accepted: send application/json ({{"bills": [...]}}) or text/csv.'
    )


def _charset(parameters: str) -> str | None:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _json_rows(body: bytes) -> RowsIn:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:  # orjson refuses integers past 64 bits, which are still JSON (and then an invalid amount)
            document = json.loads(body)
        except ValueError:
            raise MalformedJson("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise ValidationFailed.field(["body"], 'must be an object {"bills": [...]}')
    unknown = sorted(set(document) - {"bills"})
    if unknown:
        raise ValidationFailed(
            f"{unknown[0]}: unknown field", errors=[{"loc": ["body", name], "msg": "unknown field"} for name in unknown]
        )
    rows = document.get("bills")
    if not isinstance(rows, list):
        raise ValidationFailed.field(["body", "bills"], "required: a list of bills")
    _check_count(len(rows))
    return RowsIn(rows)


def _check_count(count: int) -> None:
    if count > MAX_ROWS:
        raise TooManyRows(f"An import takes at most {MAX_ROWS:,} bills; this one has {count:,}. Nothing was stored.")


def _csv_rows(body: bytes) -> RowsIn:
    try:
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise MalformedCsv("The CSV is not UTF-8 text.") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise ValidationFailed.field(["body"], "the CSV is empty: a header row naming the columns is required")
        columns = _csv_header(header)
        rows: list[Any] = []
        broken: dict[int, str] = {}
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue  # a blank line is not a bill
            _check_count(len(rows) + 1)
            if len(record) > len(columns):
                broken[len(rows) + 1] = f"the row has {len(record)} values; the header has {len(columns)} columns"
            rows.append(_csv_row(columns, record))
    except csv.Error as exc:
        raise MalformedCsv(f"The CSV cannot be read (line {reader.line_num}): {exc}.") from None
    return RowsIn(rows, broken)


def _csv_header(header: list[str]) -> list[str]:
    columns = [unicodedata.normalize("NFC", name).strip().lower() for name in header]
    for name in columns:
        if name not in CSV_COLUMNS:
            hint = " (JSON only)" if name in ("lines", "metadata") else ""
            raise ValidationFailed.field(["body", name or "header"], f"unknown column{hint}")
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    if duplicates:
        raise ValidationFailed.field(["body", duplicates[0]], "the column appears twice in the header")
    for name in REQUIRED_CSV_COLUMNS:
        if name not in columns:
            raise ValidationFailed.field(["body", name], "required column missing from the CSV header")
    if "customer_code" not in columns and "customer" not in columns:
        raise ValidationFailed.field(
            ["body", "customer_code"], "required column missing from the CSV header (or a `customer` id column)"
        )
    return columns


def _csv_row(columns: list[str], record: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, cell in zip(columns, record, strict=False):
        value = cell.strip()
        if value:  # an empty cell is an absent field (its default applies)
            row[name] = value
    amount = row.get("amount")
    if isinstance(amount, str) and _INTEGER.fullmatch(amount):
        row["amount"] = int(amount)
    return row


# --- validating rows ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    row: int
    code: str
    detail: str


def _nfc(value: Any) -> Any:
    """Vietnamese text arrives composed (NFC) or decomposed (NFD): stored and compared composed."""
    if isinstance(value, str):
        return value if value.isascii() else unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {k: _nfc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nfc(v) for v in value]
    return value


def _detail(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"])
        msg = "unknown field" if error["type"] == "extra_forbidden" else str(error["msg"])
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _validated(rows_in: RowsIn, errors: list[RowError]) -> list[tuple[int, BillImportRow]]:
    valid = []
    for number, raw in enumerate(rows_in.rows, 1):
        broken = rows_in.broken.get(number)
        if broken is not None:
            errors.append(RowError(number, "validation_error", broken))
        elif not isinstance(raw, dict):
            errors.append(RowError(number, "validation_error", "a bill must be an object"))
        else:
            try:
                valid.append((number, BillImportRow.model_validate(_nfc(raw))))
            except ValidationError as exc:
                errors.append(RowError(number, "validation_error", _detail(exc)))
    return valid


# --- storing ------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _BillView:
    """A new bill's row as the attributes bill_object reads: its event document has one source, without an ORM
    object per bill."""

    id: str
    livemode: bool
    customer_id: str
    number: str
    amount: int
    currency: str
    description: str | None
    period: str | None
    due_date: date | None
    lines: list[dict[str, Any]] | None
    amount_rule: AmountRule
    metadata_: dict[str, str]
    status: BillStatus
    amount_paid: int
    paid_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass
class _Plan:
    """What the rows ask for, before anything is written."""

    new_customers: dict[str, dict[str, Any]] = field(default_factory=dict)  # code_key → customer row
    new_bills: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (row, bill row)
    unchanged: int = 0


def _content(values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(values[name] for name in repository.CONTENT_COLUMNS)


def _same(stored: tuple[Any, ...], values: dict[str, Any]) -> bool:
    return stored == _content(values)


async def import_bills(session: AsyncSession, rt: Runtime, scope: MerchantScope, rows_in: RowsIn) -> dict[str, Any]:
    """Store the valid rows; the bill_import document (created, unchanged, errors)."""
    errors: list[RowError] = []
    valid = _validated(rows_in, errors)
    await plan_bulk_statements_each_time(session)
    codes = {customers.code_key(code) for _, row in valid if (code := _code_of(row)) is not None}
    ids = {row.customer for _, row in valid if isinstance(row.customer, str)}
    known_codes = await customers.ids_by_code_keys(session, scope, codes)
    known_ids = await customers.existing_ids(session, scope, ids)
    stored = await repository.contents_by_number(session, scope, (row.number for _, row in valid))
    plan = _plan(rt, scope, valid, known_codes, known_ids, stored, errors)
    # The validated models are done with (the plan holds plain rows): 10,000 of them are ~10 MB that the events
    # built below would otherwise add to (peak RSS, bench S6).
    del valid, stored, known_codes

    bill_rows = [values for _, values in plan.new_bills]
    # PostgreSQL writes the customers and bills while this process builds the first bills' events (pure CPU, in
    # steps that give the writer its turn): the two ran one after the other before, each about half of the time.
    writing = asyncio.ensure_future(_write_bills(session, scope, plan, bill_rows, errors))
    try:
        ahead = await _event_rows(rt, scope, bill_rows[:EVENTS_AHEAD])
    finally:
        inserted_keys, created, renamed = await writing
    if renamed or len(created) < len(bill_rows):  # a race with a concurrent import: only what this one wrote
        ahead = []
    if created:
        await _write_bill_events(session, rt, scope, created, ahead)
        await _apply_balances(session, rt, created, set(plan.new_customers[k]["id"] for k in inserted_keys))
    errors.sort(key=lambda e: e.row)
    log.info(
        "bills.imported",
        rows=len(rows_in.rows),
        created=len(created),
        unchanged=plan.unchanged,
        errors=len(errors),
        customers_created=len(inserted_keys),
    )
    return {
        "object": "bill_import",
        "created": len(created),
        "unchanged": plan.unchanged,
        "errors": [{"row": e.row, "code": e.code, "detail": e.detail} for e in errors],
    }


async def _write_bills(
    session: AsyncSession, scope: MerchantScope, plan: _Plan, bill_rows: list[dict[str, Any]], errors: list[RowError]
) -> tuple[set[str], list[dict[str, Any]], bool]:
    """The new customers, then the new bills: (code_keys of the customers written, the bills written, whether a
    concurrent import took some of the customers first, so that bills now name its customers)."""
    inserted_keys = await customers.insert_many_ignoring_taken(session, list(plan.new_customers.values()))
    lost = [key for key in plan.new_customers if key not in inserted_keys]
    if lost:  # a concurrent import created these customers first: their bills go to its customers
        winners = await customers.ids_by_code_keys(session, scope, lost)
        renamed = {plan.new_customers[key]["id"]: winners[key] for key in lost}
        for _, values in plan.new_bills:
            values["customer_id"] = renamed.get(values["customer_id"], values["customer_id"])

    inserted = await repository.insert_many_ignoring_taken(session, bill_rows)
    created = [values for values in bill_rows if values["number"] in inserted]
    if len(created) < len(bill_rows):  # numbers a concurrent import stored first: judged against what it stored
        raced = [(n, values) for n, values in plan.new_bills if values["number"] not in inserted]
        theirs = await repository.contents_by_number(session, scope, (values["number"] for _, values in raced))
        for n, values in raced:
            if _same(theirs[values["number"]], values):
                plan.unchanged += 1
            else:
                errors.append(_conflict(n, values["number"]))
    return inserted_keys, created, bool(lost)


async def _event_rows(rt: Runtime, scope: MerchantScope, bills: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `bill.created` event rows of these bills, built EVENT_STEP at a time: between two steps the event loop
    runs the COPY that is writing meanwhile."""
    rows: list[dict[str, Any]] = []
    for start in range(0, len(bills), EVENT_STEP):
        rows += event_rows(
            rt,
            merchant_id=scope.merchant_id,
            livemode=scope.livemode,
            type=EventType.bill_created,
            objects=[bill_object(cast(Bill, _view(v)), [], []) for v in bills[start : start + EVENT_STEP]],
        )
        await asyncio.sleep(0)
    return rows


async def _write_bill_events(
    session: AsyncSession, rt: Runtime, scope: MerchantScope, bills: list[dict[str, Any]], ahead: list[dict[str, Any]]
) -> None:
    """The bills' events, EVENT_SLICE at a time, each slice built while the previous one is written (`ahead`: the
    rows of the first bills, built already). In slices: 10,000 serialized documents at once would be most of the
    request's memory."""
    rows = ahead or await _event_rows(rt, scope, bills[:EVENT_SLICE])
    start = len(rows)
    writing: asyncio.Future[Any] | None = None
    try:
        while rows:
            if writing is not None:
                await writing
            writing = asyncio.ensure_future(write_events(session, rt, rows))
            rows = await _event_rows(rt, scope, bills[start : start + EVENT_SLICE])
            start += EVENT_SLICE
    finally:
        if writing is not None:
            await writing


def _code_of(row: BillImportRow) -> str | None:
    if isinstance(row.customer, CustomerByCode):
        return row.customer.code
    return row.customer_code


def _conflict(row: int, number: str) -> RowError:
    return RowError(row, "bill_number_conflict", f"bill {number} exists with other content")


def _plan(
    rt: Runtime,
    scope: MerchantScope,
    valid: list[tuple[int, BillImportRow]],
    known_codes: dict[str, str],
    known_ids: set[str],
    stored: dict[str, tuple[Any, ...]],
    errors: list[RowError],
) -> _Plan:
    """Each valid row, in order: its customer (known, created by an earlier row, or to create), then its number
    (stored already, earlier in this file, or new). A customer is created only for a bill that is."""
    plan = _Plan()
    now = rt.clock.now()
    in_file: dict[str, dict[str, Any]] = {}  # number → the earlier row's bill values
    for n, row in valid:
        code = _code_of(row)
        to_create: dict[str, Any] | None = None
        if code is None:
            assert isinstance(row.customer, str)
            if row.customer not in known_ids:
                errors.append(RowError(n, "customer_not_found", f"customer: no customer {row.customer}"))
                continue
            customer_id = row.customer
        else:
            key = customers.code_key(code)
            known = known_codes.get(key) or plan.new_customers.get(key, {}).get("id")
            if known is not None:
                customer_id = known
            elif row.customer_name is None:
                errors.append(
                    RowError(
                        n, "customer_not_found", f"customer_code: no customer {code} (give customer_name to create it)"
                    )
                )
                continue
            else:
                to_create = _customer_row(scope, code, row.customer_name, now)
                customer_id = to_create["id"]
        values = _bill_row(scope, row, customer_id, now)
        earlier = stored.get(row.number)
        if earlier is None and row.number in in_file:
            earlier = _content(in_file[row.number])
        if earlier is not None:
            if _same(earlier, values):
                plan.unchanged += 1
            else:
                errors.append(_conflict(n, row.number))
            continue
        if to_create is not None:
            plan.new_customers[customers.code_key(code or "")] = to_create
        in_file[row.number] = values
        plan.new_bills.append((n, values))
    _assign_ids(rt, plan)
    return plan


def _assign_ids(rt: Runtime, plan: _Plan) -> None:
    """The planned rows' ids, made in bulk (ids.new_many) once the plan is known: until then a new customer's id
    is a placeholder its bills share."""
    real = {}
    # new_payment_code looks its provider up on each call (a Protocol isinstance check: 50 µs): once here.
    codes = transfer_codes(rt)
    payment_code = codes.customer_payment_code if codes is not None else partial(new_payment_code, rt)
    for values, customer_id in zip(
        plan.new_customers.values(), rt.ids.new_many("cus", len(plan.new_customers)), strict=True
    ):
        real[values["id"]] = values["id"] = customer_id
        values["payment_code"] = payment_code(customer_id)
    for (_, values), bill_id in zip(plan.new_bills, rt.ids.new_many("bill", len(plan.new_bills)), strict=True):
        values["id"] = bill_id
        values["customer_id"] = real.get(values["customer_id"], values["customer_id"])


def _customer_row(scope: MerchantScope, code: str, name: str, now: datetime) -> dict[str, Any]:
    return {
        "id": f"new:{customers.code_key(code)}",  # a placeholder (_assign_ids): no real id has a colon
        "merchant_id": scope.merchant_id,
        "livemode": scope.livemode,
        "code": code,
        "code_key": customers.code_key(code),
        "name": name,
        "phone": None,
        "email": None,
        "address": None,
        "org_unit": None,
        "metadata": {},
        "payment_code": None,
        "balance": 0,
        "currency": "VND",
        "created_at": now,
        "updated_at": now,
    }


def _bill_row(scope: MerchantScope, row: BillImportRow, customer_id: str, now: datetime) -> dict[str, Any]:
    return {
        "id": None,  # _assign_ids
        "merchant_id": scope.merchant_id,
        "livemode": scope.livemode,
        "customer_id": customer_id,
        "number": row.number,
        "amount": row.amount,
        "currency": row.currency,
        "description": row.description,
        "period": row.period,
        "due_date": row.due_date,
        "lines": [line.model_dump() for line in row.lines] if row.lines is not None else None,
        "amount_rule": row.amount_rule,
        "metadata": row.metadata,
        "status": BillStatus.open,
        "amount_paid": 0,
        "paid_at": None,
        "voided_at": None,
        "created_at": now,
        "updated_at": now,
    }


def _view(values: dict[str, Any]) -> _BillView:
    return _BillView(
        id=values["id"],
        livemode=values["livemode"],
        customer_id=values["customer_id"],
        number=values["number"],
        amount=values["amount"],
        currency=values["currency"],
        description=values["description"],
        period=values["period"],
        due_date=values["due_date"],
        lines=values["lines"],
        amount_rule=values["amount_rule"],
        metadata_=values["metadata"],
        status=values["status"],
        amount_paid=0,
        paid_at=None,
        created_at=values["created_at"],
        updated_at=values["updated_at"],
    )


async def _apply_balances(
    session: AsyncSession, rt: Runtime, created: list[dict[str, Any]], new_customer_ids: set[str]
) -> None:
    """Rule 3 of §11: the new bills of a customer holding a balance take it at once (typically few customers)."""
    by_customer: dict[str, list[str]] = defaultdict(list)
    for values in created:
        by_customer[values["customer_id"]].append(values["id"])
    existing = [c for c in by_customer if c not in new_customer_ids]
    for customer_id in await customers.with_positive_balance(session, existing):
        bills = await repository.bills_by_ids(session, by_customer[customer_id])
        await apply_balance(session, rt, customer_id, bills)
