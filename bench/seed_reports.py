"""Bulk data for S8 (the collections report, CONTRACT §17): a province's organisation-unit tree, merchants placed in
it, and succeeded payments stamped the way `payments.service._stamp_success` stamps them — written by set-based SQL
(one INSERT … SELECT over generate_series), so 1,000,000 rows take seconds of PostgreSQL and none of Python.

* the tree: 1 province, 13 districts of 15 communes each, 20 agencies (8 provincial departments under the province,
  12 one-stop offices under districts); every district has an online target (0.20–0.44).
* merchants: one utility per district (unit: the district) and one per agency (unit: the agency).
* payments: 70 % utility bills whose customer lives in a commune of the utility's district (unit: that commune; the
  busier communes take more), 29 % an agency's fees (unit: the agency), 1 % a merchant with no unit (unit NULL).
  Online share per district from 12 % to 48 % (about 30 % overall); methods and providers mixed per channel
  (VietQR, cards, e-wallets, telco money, the national platform, partners' apps online; counters and partners'
  counters and agents); 1 % fully refunded, 3 % half refunded; 2 % in test mode. Their moments spread evenly over
  `months` Vietnam calendar months ending with `last_month`; `succeeded_on` is each moment's Vietnam day, and ids
  are "pay_" + a ULID of that moment (time part exact, the rest from the row number), so they sort by time like
  the gateway's own.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg  # type: ignore[import-untyped]

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
PROVINCE = "P"
DISTRICTS = 13
COMMUNES = 15  # per district
PROVINCE_AGENCIES = 8
DISTRICT_AGENCIES = 12  # one each in the first twelve districts
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def district_code(d: int) -> str:
    return f"{PROVINCE}-D{d:02d}"


def commune_code(d: int, c: int) -> str:
    return f"{district_code(d)}-C{c:02d}"


def agency_code(a: int) -> str:
    return f"{PROVINCE}-A{a:02d}"


def agency_parent(a: int) -> str:
    return PROVINCE if a <= PROVINCE_AGENCIES else district_code(a - PROVINCE_AGENCIES)


def district_target(d: int) -> float:
    return round(0.20 + 0.02 * (d - 1), 4)


AGENCIES = PROVINCE_AGENCIES + DISTRICT_AGENCIES


def org_unit_rows(now: datetime) -> list[tuple[str, str, str, str | None, float | None, datetime, datetime]]:
    rows: list[tuple[str, str, str, str | None, float | None, datetime, datetime]] = [
        (PROVINCE, "Tỉnh Bến Thử", "province", None, 0.30, now, now)
    ]
    for d in range(1, DISTRICTS + 1):
        rows.append((district_code(d), f"Huyện Số {d}", "district", PROVINCE, district_target(d), now, now))
    for d in range(1, DISTRICTS + 1):
        for c in range(1, COMMUNES + 1):
            rows.append((commune_code(d, c), f"Xã {c} huyện {d}", "commune", district_code(d), None, now, now))
    for a in range(1, AGENCIES + 1):
        name = f"Sở ban ngành {a}" if a <= PROVINCE_AGENCIES else f"Bộ phận một cửa huyện {a - PROVINCE_AGENCIES}"
        rows.append((agency_code(a), name, "agency", agency_parent(a), 0.35, now, now))
    return rows


def _ulid_sql(ms: str, g: str) -> str:
    """SQL for a ULID: 10 Crockford characters of the millisecond `ms`, then 16 from the row number `g`."""
    head = [f"substr('{CROCKFORD}', (({ms} >> {5 * (9 - k)}) & 31)::int + 1, 1)" for k in range(10)]
    tail = [f"substr('{CROCKFORD}', (({g} >> {5 * (6 - k)}) & 31)::int + 1, 1)" for k in range(7)]
    return " || ".join([*head, "'S8000000R'", *tail])  # 10 + 9 + 7 = 26


# The payments, one statement. $1 count, $2 first moment, $3 span in seconds, $4 seeding run's tag (makes the
# ULIDs of two seeds differ), $5 the test-mode share, $6..$7 the rows (of 1..$1) this statement writes. Every random
# draw is made once per row, in the innermost SELECT. (Only this module's constants are formatted into it.)
_INSERT = f"""
INSERT INTO payments (
    id, merchant_id, livemode, status, amount, currency, amount_received, amount_refunded, method, provider,
    provider_reference, reference, description, customer, metadata, return_url, channel, partner_channel,
    org_unit, succeeded_at, succeeded_on, next_action, provider_data, failure_code, failure_message,
    provider_attempted_at, next_status_check_at, status_checks, expires_at, created_at, updated_at)
SELECT
    'pay_' || {_ulid_sql("(extract(epoch FROM at) * 1000)::bigint", "(g + $4::bigint * 4294967296)")},
    merchant_id, livemode, 'succeeded', amount, 'VND', amount,
    CASE WHEN r_refund < 0.01 THEN amount WHEN r_refund < 0.04 THEN amount / 2 ELSE 0 END,
    method, provider, NULL, 'HD-' || g, NULL, NULL, '{{}}', NULL, channel, partner_channel,
    org_unit, at, (at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, NULL, '{{}}', NULL, NULL,
    NULL, NULL, 0, at + interval '13 minutes', at - interval '2 minutes', at
FROM (
    SELECT g, at, amount, livemode, merchant_id, org_unit, r_refund,
        CASE WHEN online THEN (ARRAY['vietqr', 'vietqr', 'vietqr', 'card', 'ewallet', 'ewallet', 'mobile_money',
                                     'national_platform', 'partner', 'partner'])[1 + floor(r_method * 10)::int]
             ELSE (ARRAY['counter', 'counter', 'counter', 'partner', 'partner'])[1 + floor(r_method * 5)::int]
        END AS method,
        CASE WHEN online THEN (ARRAY['vietqr', 'vietqr', 'vietqr', 'vnpay', 'momo', 'momo', 'viettel_money',
                                     'national_platform', 'VCBPAY', 'VNPOST'])[1 + floor(r_method * 10)::int]
             ELSE (ARRAY['counter', 'counter', 'counter', 'AGRIBANK', 'VNPOST'])[1 + floor(r_method * 5)::int]
        END AS provider,
        CASE WHEN online THEN 'online' ELSE 'counter' END AS channel,
        CASE WHEN online AND r_method >= 0.8 THEN (CASE WHEN r_method >= 0.9 THEN 'app' ELSE 'internet_banking' END)
             WHEN NOT online AND r_method >= 0.6 THEN (CASE WHEN r_method >= 0.8 THEN 'agent' ELSE 'counter' END)
        END AS partner_channel
    FROM (
        SELECT g, at, livemode, r_refund, r_method,
            10000 * (2 + floor(r_amount * r_amount * 200)::int) AS amount,
            CASE kind WHEN 'bill' THEN 'mch_S8UTIL' || lpad(d::text, 2, '0')
                      WHEN 'agency' THEN 'mch_S8AGCY' || lpad(a::text, 2, '0')
                      ELSE 'mch_S8NOUNIT' END AS merchant_id,
            CASE kind WHEN 'bill' THEN '{PROVINCE}-D' || lpad(d::text, 2, '0') || '-C' || lpad(c::text, 2, '0')
                      WHEN 'agency' THEN '{PROVINCE}-A' || lpad(a::text, 2, '0') END AS org_unit,
            r_channel < CASE kind WHEN 'bill' THEN 0.12 + 0.03 * (d - 1) ELSE 0.35 END AS online
        FROM (
            SELECT g, at, r_refund, r_method, r_amount, r_channel, r_mode >= $5 AS livemode,
                CASE WHEN r_kind < 0.70 THEN 'bill' WHEN r_kind < 0.99 THEN 'agency' ELSE 'none' END AS kind,
                1 + floor(r_unit * {DISTRICTS})::int AS d,
                1 + floor(power(r_sub, 1.6) * {COMMUNES})::int AS c,
                1 + floor(r_unit * {AGENCIES})::int AS a
            FROM (
                SELECT g, $2::timestamptz + make_interval(secs => $3 * (g - 1 + random()) / $1) AS at,
                    random() AS r_kind, random() AS r_unit, random() AS r_sub, random() AS r_channel,
                    random() AS r_method, random() AS r_amount, random() AS r_refund, random() AS r_mode
                FROM generate_series($6::bigint, $7::bigint) AS g
            ) AS draws
        ) AS units
    ) AS placed
) AS r
"""  # noqa: S608


def month_start(month: date) -> datetime:
    """The first moment of a Vietnam calendar month."""
    return datetime(month.year, month.month, 1, tzinfo=VIETNAM)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def last_day(month: date) -> date:
    return add_months(month, 1) - timedelta(days=1)


def last_full_month(now: datetime) -> date:
    today = now.astimezone(VIETNAM).date()
    return add_months(date(today.year, today.month, 1), -1)


@dataclass(frozen=True)
class SeededReport:
    payments: int
    months: int  # the span they were spread over
    month: date  # the month a report is asked for: the span's last
    in_month: int  # of them in that month (all modes)
    in_month_live: int
    seconds: float  # INSERT
    vacuum_seconds: float  # VACUUM (ANALYZE)

    @property
    def date_from(self) -> date:
        return self.month

    @property
    def date_to(self) -> date:
        return last_day(self.month)


async def seed_org_tree(dsn: str) -> None:
    """The province's tree and its merchants (idempotent: a second call adds nothing)."""
    now = datetime.now(UTC)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO org_units (code, name, kind, parent_code, online_target, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO NOTHING",
                org_unit_rows(now),
            )
            merchants = [
                (f"mch_S8UTIL{d:02d}", f"Điện nước huyện {d}", "utility", district_code(d)) for d in range(1, 14)
            ]
            merchants += [(f"mch_S8AGCY{a:02d}", f"Cơ quan {a}", "government", agency_code(a)) for a in range(1, 21)]
            merchants.append(("mch_S8NOUNIT", "Đơn vị chưa gắn địa bàn", "other", None))
            await conn.executemany(
                "INSERT INTO merchants (id, name, category, org_unit, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING",
                [(*m, now) for m in merchants],
            )
    finally:
        await conn.close()


async def seed_report_payments(
    dsn: str, count: int, *, months: int, last_month: date, tag: int = 0, test_share: float = 0.02, parallel: int = 2
) -> SeededReport:
    """`count` succeeded payments over the `months` Vietnam months ending with `last_month`, then VACUUM (ANALYZE):
    autovacuum does the same to an insert-only table once enough rows arrived (PostgreSQL ≥ 13), and index-only
    scans need its visibility map."""
    await seed_org_tree(dsn)
    start = month_start(add_months(last_month, 1 - months))
    span = (month_start(add_months(last_month, 1)) - start).total_seconds()
    started = time.monotonic()

    async def insert(part: int) -> None:
        first, last = 1 + count * part // parallel, count * (part + 1) // parallel
        conn = await asyncpg.connect(dsn)
        try:
            # The foreign key to merchants is checked by a trigger per row (~20 µs each); these rows name merchants
            # inserted above, so the seed skips the triggers for its own session (superuser, as the harness is).
            await conn.execute("SET statement_timeout = 0; SET session_replication_role = replica")
            await conn.execute("SELECT setseed($1)", 1 / (2 + tag * parallel + part))
            await conn.execute(_INSERT, count, start, span, tag, test_share, first, last)
        finally:
            await conn.close()

    await asyncio.gather(*(insert(part) for part in range(parallel)))
    inserted = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM (ANALYZE) payments")
        vacuumed = time.monotonic()
        counts = await conn.fetchrow(
            "SELECT count(*) AS all, count(*) FILTER (WHERE livemode) AS live FROM payments"
            " WHERE succeeded_on BETWEEN $1 AND $2",
            last_month,
            last_day(last_month),
        )
    finally:
        await conn.close()
    return SeededReport(
        count, months, last_month, counts["all"], counts["live"], inserted - started, vacuumed - inserted
    )
