"""`healthpay`: the operator's command line."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from cli import fraud
from domain.wallet.model import GATEWAYS
from infrastructure.auth.tokens import Role, TokenCodec
from infrastructure.logs import configure_logging
from infrastructure.settings import Settings, SettingsError

# The commands that sign or verify bearer tokens: they refuse to start without a usable key.
NEEDS_SIGNING_KEY = frozenset({"token", "serve-commands", "serve-gateway"})

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = Any


Handler = Callable[[argparse.Namespace, Settings, TokenCodec | None], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="healthpay", description="HealthPay Ledger operations")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_db(commands)
    _add_token(commands)
    _add_servers(commands)
    _add_stores(commands)
    _add_events(commands)
    _add_backup(commands)
    _add_settlement(commands)
    _add_payments(commands)
    fraud.add_parser(commands)
    _add_sms(commands)
    return parser


def _add_sms(commands: Subparsers) -> None:
    sms = commands.add_parser("sms", help="members' SMS choices (docs/notifications.md)")
    sms_commands = sms.add_subparsers(dest="sms_command", required=True)
    for name, text in (
        ("opt-out", "send a card no more SMS"),
        ("opt-in", "send a card SMS again"),
        ("language", "the language of a card's SMS"),
    ):
        sub = sms_commands.add_parser(name, help=text)
        sub.add_argument("--card", type=UUID, required=True, help="the card's id")
        if name == "language":
            sub.add_argument("--set", dest="language", choices=("ar", "en"), required=True)


def _add_payments(commands: Subparsers) -> None:
    payments = commands.add_parser("payments", help="the payment gateways' money")
    payment_commands = payments.add_subparsers(dest="payments_command", required=True)
    reconcile = payment_commands.add_parser(
        "reconcile",
        help="a gateway's settlement file against the top-ups credited here; exits 1 on any"
        " difference, 2 on a refused file",
    )
    reconcile.add_argument("file", type=Path, help="the gateway's settlement file (CSV)")
    reconcile.add_argument("--gateway", choices=sorted(GATEWAYS), required=True)
    reconcile.add_argument(
        "--from",
        dest="first",
        metavar="DATE",
        default=None,
        help="YYYY-MM-DD (Cairo; default: the file's first)",
    )
    reconcile.add_argument(
        "--to",
        dest="last",
        metavar="DATE",
        default=None,
        help="YYYY-MM-DD (Cairo; default: the file's last)",
    )
    reconcile.add_argument("--format", choices=["text", "json"], default="text")


def _add_settlement(commands: Subparsers) -> None:
    settlement = commands.add_parser("settlement", help="what insurers owe pharmacies")
    settlement_commands = settlement.add_subparsers(dest="settlement_command", required=True)
    report = settlement_commands.add_parser(
        "report", help="per insurer and pharmacy for a month, from the ledger's postings"
    )
    report.add_argument("--period", required=True, help="YYYY-MM (a benefit month, Cairo)")
    report.add_argument("--insurer", default=None, help="one insurer (its provider name)")
    report.add_argument("--pharmacy", default=None, help="one pharmacy (its id)")
    report.add_argument("--format", choices=["csv", "json"], default="csv")


def _add_backup(commands: Subparsers) -> None:
    backup = commands.add_parser(
        "backup", help="a verified base backup of the event store's PostgreSQL (with its WAL)"
    )
    backup.add_argument("directory", type=Path, help="where base-<UTC time> is made")
    backup.add_argument("--url", default=None, help="the server (default: POSTGRES_URL)")
    restore = commands.add_parser(
        "restore", help="a new data directory from a base backup (+ WAL archive: point in time)"
    )
    restore.add_argument("base", type=Path, help="a base-<time> directory of healthpay backup")
    restore.add_argument("data", type=Path, help="the new data directory (must not exist)")
    restore.add_argument("--wal-archive", type=Path, default=None, help="PG_WAL_ARCHIVE's files")
    restore.add_argument("--target-time", default=None, help="replay up to this time, then stop")


def _add_db(commands: Subparsers) -> None:
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_migrate = db_commands.add_parser(
        "migrate", help="apply pending SQL (POSTGRES_URL) and CQL (SCYLLA_HOSTS) migrations"
    )
    db_migrate.add_argument(
        "--only", choices=["sql", "cql"], default=None, help="one store only (default: both)"
    )


def _add_token(commands: Subparsers) -> None:
    token = commands.add_parser("token", help="print a bearer token for local use")
    token.add_argument("--role", choices=[r.value for r in Role], default=Role.ADMIN.value)
    token.add_argument(
        "--sub", default=None, help="subject (a member's user id); default: the role"
    )
    token.add_argument("--pharmacy-id", default=None)
    token.add_argument("--ttl", type=int, default=8 * 3600, help="seconds the token stays valid")


def _add_servers(commands: Subparsers) -> None:
    commands_server = commands.add_parser("serve-commands", help="run one command-service process")
    commands_server.add_argument("--host", default="127.0.0.1")
    commands_server.add_argument("--port", type=int, default=None, help="default: $PORT or 3000")

    gateway_server = commands.add_parser("serve-gateway", help="run one gateway process")
    gateway_server.add_argument("--host", default="127.0.0.1")
    gateway_server.add_argument("--port", type=int, default=3100)

    relay = commands.add_parser("relay", help="publish committed events to Kafka (one active)")
    project = commands.add_parser("project", help="run a projection worker (consumer group)")
    project_balances = commands.add_parser(
        "project-balances", help="run the CQL balance projection (group healthpay-balances)"
    )
    notify = commands.add_parser("notify", help="send SMS notifications (group healthpay-notifier)")
    for worker in (relay, project, project_balances, notify):
        worker.add_argument("--metrics-port", type=int, default=None, help="serve /metrics here")
        worker.add_argument(
            "--metrics-host",
            default="127.0.0.1",
            help="address /metrics listens on (0.0.0.0 in a container, scraped from outside)",
        )


def _add_stores(commands: Subparsers) -> None:
    balances = commands.add_parser("balances", help="the CQL balance store")
    balance_commands = balances.add_subparsers(dest="balances_command", required=True)
    balance_commands.add_parser("migrate", help="create the keyspace, apply CQL migrations")
    balance_commands.add_parser("verify", help="compare CQL balances with the event store")

    projections = commands.add_parser("projections", help="watch, rebuild and redrive projections")
    projection_commands = projections.add_subparsers(dest="projections_command", required=True)
    projection_commands.add_parser("status", help="offsets, lag (events and seconds), parked")
    rebuild = projection_commands.add_parser(
        "rebuild", help="rebuild from the event store into shadow tables, compare, swap"
    )
    redrive = projection_commands.add_parser(
        "redrive", help="apply parked events once fixed (a rebuild; their dead letters removed)"
    )
    for each in (rebuild, redrive):
        each.add_argument(
            "name", nargs="?", default="all", help="read_models, balances (default: all)"
        )
        each.add_argument("--dry-run", action="store_true", help="compare only; never swap")

    idempotency = commands.add_parser("idempotency", help="stored Idempotency-Key answers")
    idempotency_commands = idempotency.add_subparsers(dest="idempotency_command", required=True)
    purge = idempotency_commands.add_parser(
        "purge", help="delete answers older than IDEMPOTENCY_RETENTION_DAYS (default 7)"
    )
    purge.add_argument("--dry-run", action="store_true", help="count them only")


def _add_events(commands: Subparsers) -> None:
    kafka = commands.add_parser("kafka", help="the events topic")
    kafka_commands = kafka.add_subparsers(dest="kafka_command", required=True)
    topic = kafka_commands.add_parser(
        "create-topic", help="create KAFKA_TOPIC with KAFKA_PARTITIONS partitions (or check it)"
    )
    topic.add_argument("--replication-factor", type=int, default=1)
    events = commands.add_parser("events", help="read the event store")
    event_commands = events.add_subparsers(dest="events_command", required=True)
    show = event_commands.add_parser("show", help="a card's or wallet's history, decoded")
    show.add_argument("aggregate_id", type=UUID)
    follow = event_commands.add_parser("tail", help="follow new events as they commit")
    follow.add_argument("--from-start", action="store_true")
    follow.add_argument("--limit", type=int, default=None, help="stop after this many")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    codec: TokenCodec | None = None
    try:
        settings = Settings.from_env()
        if args.command in NEEDS_SIGNING_KEY:
            # `token` may read make up's .local/jwt-secret from a shell make up did not set up.
            codec = TokenCodec.from_settings(settings, local_fallback=args.command == "token")
    except SettingsError as exc:
        print(f"healthpay {args.command}: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.command, settings.log_level, settings.log_format)
    return HANDLERS[args.command](args, settings, codec)


def _db(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    from infrastructure.postgres.migrations import migrate

    if args.only in (None, "sql"):
        applied = asyncio.run(migrate(settings.postgres_url))
        print("sql applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    if args.only in (None, "cql"):
        from cli import balances as cql_balances

        print("cql ", end="")
        return cql_balances.migrate(settings)
    return 0


def _token(args: argparse.Namespace, _: Settings, codec: TokenCodec | None) -> int:
    role = Role(args.role)
    pharmacy_id = args.pharmacy_id
    if role is Role.PHARMACY and not pharmacy_id:
        pharmacy_id = args.sub or "pharmacy-1"
    subject = args.sub or pharmacy_id or role.value
    assert codec is not None
    print(codec.issue(role, subject, pharmacy_id=pharmacy_id, ttl_seconds=args.ttl))
    return 0


def _serve_commands(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    from command_service.server import serve

    serve(settings, args.host, args.port or settings.port)
    return 0


def _serve_gateway(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    from api_gateway.server import serve as serve_gateway

    serve_gateway(settings, args.host, args.port)
    return 0


def _relay(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    from command_service.relay.process import run_relay

    run_relay(settings, args.metrics_port, args.metrics_host)
    return 0


def _project(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    from projection_service.process import run_projection_worker

    run_projection_worker(settings, args.metrics_port, args.metrics_host)
    return 0


def _project_balances(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    from projection_service.balances.process import run_balance_projection

    run_balance_projection(settings, args.metrics_port, args.metrics_host)
    return 0


def _notify(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    from projection_service.notifier.process import run_notifier

    try:
        run_notifier(settings, args.metrics_port, args.metrics_host)
    except SettingsError as exc:
        print(f"healthpay notify: {exc}", file=sys.stderr)
        return 2
    return 0


def _sms(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    from cli import sms

    return sms.run(
        settings.postgres_url, args.sms_command, args.card, getattr(args, "language", None)
    )


def _balances(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    from cli import balances as cql_balances

    if args.balances_command == "migrate":
        return cql_balances.migrate(settings)
    return cql_balances.verify(settings)


def _projections(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    from cli import projections as ops

    if args.projections_command == "status":
        return ops.status(settings)
    if args.projections_command == "redrive":
        return ops.run_redrive(settings, args.name, args.dry_run)
    return ops.run_rebuild(settings, args.name, args.dry_run)


def _idempotency(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    return _purge_idempotency(settings, args.dry_run)


def _kafka(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    from cli import kafka as events_topic

    return events_topic.create_topic(settings, args.replication_factor)


def _events(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    from cli import events as history

    if args.events_command == "show":
        return history.show(settings.postgres_url, args.aggregate_id)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    return history.tail(settings.postgres_url, args.from_start, stop, args.limit)


def _backup(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    from cli import backup

    try:
        if args.command == "backup":
            print(backup.base_backup(args.url or settings.postgres_url, args.directory))
        else:
            print(backup.restore(args.base, args.data, args.wal_archive, args.target_time))
    except backup.BackupError as exc:
        print(f"healthpay {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


def _settlement(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    from cli import settlement

    return settlement.run(
        settings.postgres_url, args.period, args.insurer, args.pharmacy, args.format
    )


def _payments(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    from cli import payments

    return payments.run(
        settings.postgres_url, args.file, args.gateway, args.first, args.last, args.format
    )


HANDLERS: dict[str, Handler] = {
    "db": _db,
    "token": _token,
    "serve-commands": _serve_commands,
    "serve-gateway": _serve_gateway,
    "relay": _relay,
    "project": _project,
    "project-balances": _project_balances,
    "notify": _notify,
    "sms": _sms,
    "balances": _balances,
    "projections": _projections,
    "idempotency": _idempotency,
    "kafka": _kafka,
    "events": _events,
    "backup": _backup,
    "restore": _backup,
    "settlement": _settlement,
    "payments": _payments,
    "fraud": fraud.run,
}


def _purge_idempotency(settings: Settings, dry_run: bool) -> int:
    from infrastructure.postgres.idempotency import count_expired, purge_expired

    retention = timedelta(days=settings.idempotency_retention_days)
    if dry_run:
        count = count_expired(settings.postgres_url, retention)
        print(f"{count} Idempotency-Key answers older than {retention} (dry run: kept)")
    else:
        count = purge_expired(settings.postgres_url, retention)
        print(f"purged {count} Idempotency-Key answers older than {retention}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
