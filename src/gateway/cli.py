"""The `gateway` command: serve, worker, migrate, merchant, ledger, report, sandbox, phone, partner-sim, demo-key,
openapi."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn

from gateway.collections.client import PartnerClient, new_transaction_id
from gateway.domain import MerchantCategory, PartnerChannel
from gateway.ledger.service import Imbalance
from gateway.settings import Settings

app = typer.Typer(help="Payment gateway for public services.", no_args_is_help=True)
merchant_app = typer.Typer(help="Manage merchants.", no_args_is_help=True)
ledger_app = typer.Typer(help="Inspect the ledger.", no_args_is_help=True)
partner_sim_app = typer.Typer(
    help="Act as a collection partner (a bank's bill-payment system) against a running gateway (§12): each command "
    "signs one request with the partner's secret, prints the gateway's JSON answer and exits 1 on a 4xx or 5xx.",
    no_args_is_help=True,
)
app.add_typer(merchant_app, name="merchant")
app.add_typer(ledger_app, name="ledger")
app.add_typer(partner_sim_app, name="partner-sim")


def _settings() -> Settings:
    from gateway.observability import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    return settings


def _migrate(settings: Settings) -> None:
    from gateway.migrate import upgrade

    upgrade(settings.database_url)


@app.command()
def migrate() -> None:
    """Apply every database migration (run once per deploy, before `serve`)."""
    _migrate(_settings())
    typer.echo("database migrated")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Run the API. In development it also migrates, creates the demo merchant and runs the background loops."""
    settings = _settings()
    if settings.is_development:
        _migrate(settings)
        key, admin = asyncio.run(_prepare_development(settings))
        typer.echo(
            f"\n  Payment gateway (development) on http://{host}:{port}  docs: http://{host}:{port}/docs\n"
            f"  demo merchant test key: {key}\n  admin token:            {admin}\n",
            err=True,
        )
    with _metrics_shared_by(workers):
        uvicorn.run(
            "gateway.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,
            log_config=None,
            proxy_headers=True,
        )


@contextlib.contextmanager
def _metrics_shared_by(workers: int) -> Iterator[None]:
    """With several worker processes, /metrics must be the whole server's: the workers (started after this)
    write their metrics to a directory of this run, and any of them reads all (an operator's own directory wins)."""
    from gateway.observability import MULTIPROCESS_DIR_ENV

    if workers <= 1 or os.environ.get(MULTIPROCESS_DIR_ENV):
        yield
        return
    directory = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ[MULTIPROCESS_DIR_ENV] = directory
    try:
        yield
    finally:
        os.environ.pop(MULTIPROCESS_DIR_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


async def _prepare_development(settings: Settings) -> tuple[str, str]:
    from gateway.app import build_runtime
    from gateway.merchants.service import ensure_demo_merchant

    rt = build_runtime(settings)
    try:
        key = await ensure_demo_merchant(rt)
    finally:
        await rt.db.dispose()
        await rt.provider_http.aclose()
    assert settings.admin_token is not None
    return key, settings.admin_token.get_secret_value()


@app.command("demo-key")
def demo_key(
    admin: Annotated[bool, typer.Option("--admin", help="Print the admin token instead")] = False,
) -> None:
    """Print the demo merchant's test key, or with --admin the admin token (development profile)."""
    from gateway.app import build_runtime
    from gateway.crypto import SecretBox
    from gateway.merchants.service import demo_key_secret

    settings = Settings()
    if not admin:
        typer.echo(demo_key_secret(SecretBox(settings.master_secret)))
        return
    build_runtime(settings)  # derives the development admin token when none is set
    if settings.admin_token is None:
        typer.echo("no admin token: set GATEWAY_ADMIN_TOKEN", err=True)
        raise typer.Exit(1)
    typer.echo(settings.admin_token.get_secret_value())


@app.command()
def worker() -> None:
    """Run the background loops (webhook dispatcher, expiry sweeper, housekeeping) until SIGTERM."""
    settings = _settings()
    asyncio.run(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    from gateway.app import build_runtime
    from gateway.webhooks.dispatcher import Dispatcher
    from gateway.workers import run_periodically

    rt = build_runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    dispatcher = Dispatcher(rt)
    try:
        await asyncio.gather(run_periodically(rt, stop), dispatcher.run_forever(stop))
    finally:
        await dispatcher.aclose()
        await rt.db.dispose()
        await rt.provider_http.aclose()


@merchant_app.command("create")
def merchant_create(
    name: Annotated[str, typer.Option(help="Merchant's name")],
    category: Annotated[MerchantCategory, typer.Option(help="What it collects for")] = MerchantCategory.other,
) -> None:
    """Create a merchant and print its first test key."""
    settings = _settings()
    merchant_id, secret = asyncio.run(_create_merchant(settings, name, category))
    typer.echo(json.dumps({"id": merchant_id, "api_key": secret}))


async def _create_merchant(settings: Settings, name: str, category: MerchantCategory) -> tuple[str, str]:
    from gateway.app import build_runtime
    from gateway.merchants.service import create_merchant

    rt = build_runtime(settings)
    try:
        async with rt.db.transaction() as session:
            merchant, _key, secret = await create_merchant(session, rt, name, category)
        return merchant.id, secret
    finally:
        await rt.db.dispose()
        await rt.provider_http.aclose()


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Check that every ledger transaction balances, and that customers' funds are all allocated: each bill's
    amount paid and each balance equal their allocation rows, and the allocations plus balances equal the funds
    received for customers. Exit 1 on any discrepancy."""
    settings = _settings()
    problems, count, mismatches = asyncio.run(_verify(settings))
    for p in problems:
        typer.echo(f"UNBALANCED {p.transaction_id} {p.currency}: debits {p.debits} credits {p.credits}", err=True)
    for what, subject, recorded, expected in mismatches:
        typer.echo(f"ALLOCATION {what}: {subject} records {recorded}, expected {expected}", err=True)
    if problems or mismatches:
        typer.echo(
            f"ledger NOT verified: {len(problems)} of {count} transactions unbalanced, "
            f"{len(mismatches)} allocation discrepancies",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"ledger balanced: {count} transactions; customers' funds fully allocated")


async def _verify(settings: Settings) -> tuple[list[Imbalance], int, list[tuple[str, str, int, int]]]:
    from gateway.bills.repository import allocation_mismatches
    from gateway.db import Database, create_engine
    from gateway.ledger.service import count_transactions, find_imbalances

    db = Database(create_engine(settings.database_url))
    try:
        async with db.transaction() as session:
            problems = await find_imbalances(session)
            count = await count_transactions(session)
            mismatches = await allocation_mismatches(session)
        return list(problems), int(count), mismatches
    finally:
        await db.dispose()


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8001,
) -> None:
    """Run the provider simulators on their own port; they notify GATEWAY_PUBLIC_URL.

    Start the gateway with GATEWAY_SANDBOX_URL=http://HOST:PORT and the same GATEWAY_SECRET_KEY.
    """

    from gateway.adapters.registry import installed_registry
    from gateway.clock import SystemClock
    from gateway.crypto import SecretBox
    from gateway.sandbox.app import create_sandbox_app

    settings = _settings()
    # Its own port is not the gateway's: the control routes answer here; the fault switches only in development.
    sandbox_app = create_sandbox_app(
        installed_registry(),
        SecretBox(settings.master_secret),
        settings.public_url,
        httpx.AsyncClient(timeout=10),
        SystemClock(),
        control_open_to_network=True,
        faults=settings.is_development,
    )
    uvicorn.run(sandbox_app, host=host, port=port, access_log=False, log_config=None)


@app.command("phone")
def phone_command(
    provider: Annotated[str, typer.Option(help="The telco: viettel_money, vnpt_money or mobifone_money")],
    number: Annotated[str, typer.Option("--phone", help="The subscriber's phone number, e.g. 0987654321")],
    url: Annotated[str, typer.Option(help="The gateway (its sandbox answers at /sandbox/<provider>)")] = (
        "http://127.0.0.1:8000"
    ),
    service_code: Annotated[str | None, typer.Option(help="The USSD code dialled (default: the telco's)")] = None,
) -> None:
    """Play a feature phone on a sandbox telco's USSD menu: type each input, or pipe them in one a line."""
    import httpx

    from gateway.adapters.telco.wire import PROFILES
    from gateway.sandbox.phone import play_phone

    profiles = {p.provider: p for p in PROFILES}
    if provider not in profiles:
        typer.echo(f"unknown telco {provider!r}: one of {', '.join(profiles)}", err=True)
        raise typer.Exit(2)
    piped = not sys.stdin.isatty()

    def read_line() -> str | None:
        typer.echo("> ", nl=False)
        line = sys.stdin.readline()
        if not line:
            typer.echo()
            return None
        if piped:  # a terminal shows what was typed; a pipe does not
            typer.echo(line.rstrip("\n"))
        return line.rstrip("\r\n")

    async def run() -> int:
        async with httpx.AsyncClient(timeout=30) as http:
            return await play_phone(
                http,
                f"{url.rstrip('/')}/sandbox/{provider}/ussd",
                number,
                service_code or profiles[provider].ussd_service_code,
                read_line,
                typer.echo,
            )

    raise typer.Exit(asyncio.run(run()))


UrlOption = Annotated[str, typer.Option("--url", help="The gateway's base URL")]
PartnerIdOption = Annotated[str, typer.Option("--partner-id", help="The partner's id (ptn_...)")]
SecretOption = Annotated[
    str, typer.Option("--secret", envvar="GATEWAY_PARTNER_SECRET", help="The partner's secret (psk_...)")
]
TransactionOption = Annotated[str, typer.Option("--transaction-id", help="The partner's transaction id")]


def _partner_call(url: str, partner_id: str, secret: str, call: Callable[[PartnerClient], Awaitable[Any]]) -> None:
    async def run() -> Any:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            return await call(PartnerClient(http, partner_id, secret))

    try:
        response = asyncio.run(run())
    except httpx.HTTPError as exc:
        typer.echo(f"could not reach {url}: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        typer.echo(json.dumps(response.json(), indent=2, ensure_ascii=False))
    except ValueError:
        typer.echo(response.text)
    if response.status_code >= 400:
        raise typer.Exit(1)


@partner_sim_app.command("inquiry")
def partner_inquiry(
    biller: Annotated[str, typer.Option(help="The biller's code, e.g. EVNQN")],
    customer: Annotated[str, typer.Option(help="The customer's code, e.g. PA01000123456")],
    partner_id: PartnerIdOption,
    secret: SecretOption,
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """Look up what a customer owes."""
    _partner_call(url, partner_id, secret, lambda c: c.inquiry(biller, customer))


@partner_sim_app.command("pay")
def partner_pay(
    biller: Annotated[str, typer.Option(help="The biller's code")],
    customer: Annotated[str, typer.Option(help="The customer's code")],
    amount: Annotated[int, typer.Option(help="Amount in minor units (VND: đồng)")],
    partner_id: PartnerIdOption,
    secret: SecretOption,
    bill: Annotated[list[str] | None, typer.Option("--bill", help="A bill number to pay (repeat, in order)")] = None,
    transaction_id: Annotated[
        str | None, typer.Option("--transaction-id", help="The partner's transaction id (default: a new one)")
    ] = None,
    channel: Annotated[PartnerChannel, typer.Option(help="Where the payer paid")] = PartnerChannel.app,
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """Tell the gateway the payer paid (a collection)."""
    tid = transaction_id or new_transaction_id()
    _partner_call(
        url,
        partner_id,
        secret,
        lambda c: c.pay(biller, customer, amount, transaction_id=tid, bill_numbers=bill, channel=channel.value),
    )


@partner_sim_app.command("status")
def partner_status(
    transaction_id: TransactionOption,
    partner_id: PartnerIdOption,
    secret: SecretOption,
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """What became of a payment sent earlier (ask after a timeout, before retrying)."""
    _partner_call(url, partner_id, secret, lambda c: c.status(transaction_id))


@partner_sim_app.command("reverse")
def partner_reverse(
    transaction_id: TransactionOption,
    reason: Annotated[str, typer.Option(help="Why the payment is reversed")],
    partner_id: PartnerIdOption,
    secret: SecretOption,
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """Reverse a payment of today (Vietnam time)."""
    _partner_call(url, partner_id, secret, lambda c: c.reverse(transaction_id, reason))


def _vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".")


def _percent(share: float | None) -> str:
    return "" if share is None else f"{share * 100:.1f}%"


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: ""}[value]


def _report_cells(row: dict[str, Any]) -> list[str]:
    return [
        "" if row["key"] is None else str(row["key"]),
        row["name"] or "",
        str(row["payments"]),
        _vnd(row["amount"]),
        str(row["online_payments"]),
        _vnd(row["online_amount"]),
        _percent(row["online_share"]),
        _percent(row["target"]),
        _yes_no(row["meets_target"]),
    ]


def _report_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    unit = f", unit {report['org_unit']}" if report["org_unit"] else ""
    level = f", level {report['level']}" if report["level"] else ""
    table = Table(title=f"Collections {report['from']} to {report['to']} by {report['group_by']}{unit}{level}")
    for name in ("key", "name"):
        table.add_column(name)
    for name in ("payments", "amount", "online_payments", "online_amount", "online_share", "target", "meets_target"):
        table.add_column(name, justify="right")
    for row in report["rows"]:
        table.add_row(*_report_cells(row))
    table.add_section()
    table.add_row(*_report_cells({"key": "total", "name": "", **report["totals"]}))
    return table


@app.command("report")
def report_command(
    first: Annotated[str, typer.Option("--from", help="The first Vietnam calendar day (YYYY-MM-DD)")],
    to: Annotated[str, typer.Option("--to", help="The last Vietnam calendar day, inclusive (YYYY-MM-DD)")],
    group_by: Annotated[str, typer.Option(help="org_unit, merchant, method, channel, provider or day")] = "org_unit",
    org_unit: Annotated[str | None, typer.Option(help="Only this unit and the units below it (its code)")] = None,
    level: Annotated[str | None, typer.Option(help="Roll units up to this kind (e.g. district)")] = None,
    livemode: Annotated[
        bool | None, typer.Option("--livemode/--testmode", help="Only live or only test payments (default: both)")
    ] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write the report as CSV here")] = None,
    svg_path: Annotated[Path | None, typer.Option("--svg", help="Also write the chart as SVG here")] = None,
) -> None:
    """The collection report (§17) of every merchant, as GET /v1/reports/collections computes it with the admin
    token, printed as a table; optionally written as CSV and as the SVG chart. Exit 2 on a bad option."""
    from rich.console import Console

    settings = _settings()
    try:
        report = asyncio.run(_collections_report(settings, first, to, group_by, org_unit, level, livemode))
    except ValueError as exc:
        typer.echo(f"bad option: {exc}", err=True)
        raise typer.Exit(2) from None
    Console(width=max(shutil.get_terminal_size().columns, 120)).print(_report_table(report))
    if csv_path is not None:
        from gateway.reports.service import report_csv

        csv_path.write_text(report_csv(report), encoding="utf-8", newline="")
    if svg_path is not None:
        from gateway.reports.chart import report_svg

        svg_path.write_bytes(report_svg(report))


async def _collections_report(
    settings: Settings,
    first: str,
    to: str,
    group_by: str,
    org_unit: str | None,
    level: str | None,
    livemode: bool | None,
) -> dict[str, Any]:
    from datetime import date

    from gateway.db import Database, create_engine
    from gateway.domain import OrgUnitKind
    from gateway.errors import ValidationFailed
    from gateway.reports.schemas import GroupBy
    from gateway.reports.service import ReportQuery, collections_report

    def parsed(name: str, read: Callable[[str], Any], value: str) -> Any:
        try:
            return read(value)
        except ValueError:
            raise ValueError(f"--{name.replace('_', '-')} {value!r} is not valid") from None

    query = ReportQuery(
        parsed("from", date.fromisoformat, first),
        parsed("to", date.fromisoformat, to),
        parsed("group_by", GroupBy, group_by),
        org_unit,
        parsed("level", OrgUnitKind, level) if level is not None else None,
        livemode,
    )
    db = Database(create_engine(settings.database_url))
    try:
        async with db.transaction() as session:
            return await collections_report(session, query, None)
    except ValidationFailed as exc:
        raise ValueError(exc.detail) from None
    finally:
        await db.dispose()


@app.command()
def openapi(output: Annotated[Path | None, typer.Option(help="Write here instead of stdout")] = None) -> None:
    """Print (or write) the OpenAPI document the app serves."""
    from gateway.app import create_app

    document = (
        json.dumps(
            create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", secret_key="x" * 32)).openapi(),
            indent=2,
        )
        + "\n"
    )
    if output is None:
        sys.stdout.write(document)
    else:
        output.write_text(document)


if __name__ == "__main__":
    app()
