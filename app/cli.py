"""The `privacy` command: serve, migrate, check, token, audit verify, retention run and schedule, worker,
demo, openapi."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import re
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from app.core.config import ConfigError, Settings

log = logging.getLogger("app.cli")

# prometheus_client's multiprocess files: counter_<pid>.db, histogram_<pid>.db, gauge_<mode>_<pid>.db, ...
METRIC_FILE = re.compile(r"(counter|histogram|summary|gauge_[a-z]+)_\d+\.db")


def _settings() -> Settings:
    try:
        settings = Settings()
        settings.check()
    except (ConfigError, ValueError) as exc:
        sys.exit(f"privacy: {exc}")
    return settings


def _preflight(settings: Settings) -> None:
    """Load the keys as a worker will (the receipt key must exist in production), so that a bad key is
    refused here, with its message, rather than in every worker."""
    from app.core.crypto import Keys

    try:
        Keys(settings)
    except ConfigError as exc:
        sys.exit(f"privacy: {exc}")


def _migrate(settings: Settings, action: str = "upgrade", revision: str = "head") -> None:
    """Migrate (under the PostgreSQL advisory lock: core.migrate), or exit saying why not."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from app.core import migrate

    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # a line per plugin, each start
    try:
        if action == "downgrade":
            migrate.downgrade(settings.database_url, revision)
        else:
            migrate.upgrade(settings.database_url, revision)
    except (OSError, SQLAlchemyError) as exc:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
        sys.exit(f"privacy: cannot migrate the database at {where}: {type(exc).__name__}: {reason}")


def local_base_url(host: str, port: int) -> str:
    """Where a server bound to host:port is reached from this machine (development's public base URL)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    return f"http://{host}:{port}"


def metrics_folder(settings: Settings) -> Path:
    """The one folder the workers' metric files go to (PROMETHEUS_MULTIPROC_DIR if set, else
    PRIVACY_METRICS_DIR), created, and emptied of the files an earlier run left: counters would otherwise
    carry on from the dead processes of that run."""
    folder = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.metrics_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        if METRIC_FILE.fullmatch(stale.name):
            stale.unlink(missing_ok=True)
    return folder


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from app.core import server
    from app.core.logging import configure_logging

    if "PRIVACY_FORWARDED_ALLOW_IPS" not in os.environ and os.environ.get("FORWARDED_ALLOW_IPS"):
        os.environ["PRIVACY_FORWARDED_ALLOW_IPS"] = os.environ["FORWARDED_ALLOW_IPS"]  # uvicorn's own name
    settings = _settings()
    if settings.env == "development" and "public_base_url" not in settings.model_fields_set:
        # Links the service writes (unsubscribe, receipts' policy) point at this server. The workers read
        # their settings from the environment, so that is where it goes.
        os.environ["PRIVACY_PUBLIC_BASE_URL"] = local_base_url(args.host, args.port)
        settings = _settings()
    _preflight(settings)
    configure_logging(settings.log_level)
    if not args.no_migrate:
        _migrate(settings)
    if args.workers > 1:
        # Each worker writes its metrics to files there; /metrics sums them.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_folder(settings))
        from app.ops import workers

        workers.install()  # dead workers' metrics marked dead as uvicorn reaps them
    print(
        f"privacy: serving on http://{args.host}:{args.port} (API docs at /docs); "
        f"public base URL {settings.public_base_url}",
        file=sys.stderr,
    )
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        **server.options(),  # httptools, with the request line and headers capped (431)
    )


def cmd_migrate(args: argparse.Namespace) -> None:
    from app.core.logging import configure_logging

    settings = _settings()
    configure_logging(settings.log_level)
    if args.direction == "downgrade":
        _migrate(settings, "downgrade", args.revision or "-1")
    else:
        _migrate(settings, "upgrade", args.revision or "head")


def cmd_check(_args: argparse.Namespace) -> None:
    from sqlalchemy.engine import make_url

    settings = _settings()
    _preflight(settings)
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    print(
        f"privacy: the configuration is usable ({settings.env}; database {where}; {settings.public_base_url})"
    )


def cmd_token(args: argparse.Namespace) -> None:
    from app.auth.principals import TOKEN_ROLES, Scope
    from app.core.security import mint_token

    settings = _settings()
    scopes = args.scope.split() if args.scope else []
    unknown = sorted(set(scopes) - {s.value for s in Scope})
    if unknown:
        sys.exit(f"privacy: unknown scope(s): {' '.join(unknown)}")
    if args.role not in TOKEN_ROLES:
        sys.exit(f"privacy: unknown role {args.role!r}")
    print(mint_token(settings, role=args.role, sub=args.sub, scopes=scopes, ttl_seconds=args.ttl))


def cmd_audit_verify(_args: argparse.Namespace) -> None:
    from app.audit.service import verify

    settings = _settings()

    async def run(session: Any) -> int:
        result = await verify(session)
        log = result.log
        for warning in log.warnings:
            print(f"privacy: {warning}", file=sys.stderr)
        for problem in log.problems:
            print(f"audit checkpoint log BROKEN: {problem}", file=sys.stderr)
        if result.unsealed:
            print(
                f"privacy: {result.unsealed} unkeyed events from before the audit key are not sealed by any "
                "checkpoint yet; run `privacy audit checkpoint`",
                file=sys.stderr,
            )
        for broken in result.breaks:
            print(
                f"audit chain BROKEN at event {broken.event_id} (chain {broken.chain}, "
                f"sequence {broken.seq}): {broken.reason}",
                file=sys.stderr,
            )
        against = (
            f"against checkpoint {log.count} of {log.last_at} ({len(log.heads)} chains)"
            if log.count
            else f"with no checkpoint in {settings.audit_checkpoint_dir} (run `privacy audit checkpoint`: "
            "until then, deleted chains and cut-off ends cannot be noticed)"
        )
        if result.intact:
            print(f"audit chain intact: {result.checked} events verified, {against}")
            return 0
        print(
            f"audit chain BROKEN: {len(result.breaks)} chain(s) broken, {len(log.problems)} checkpoint log "
            f"problem(s); {result.checked} events verified, {against}",
            file=sys.stderr,
        )
        return 1

    sys.exit(_with_session(settings, run))


def cmd_audit_checkpoint(args: argparse.Namespace) -> None:
    from time import sleep

    from app.audit.checkpoints import CheckpointRefused
    from app.audit.service import checkpoint

    settings = _settings()

    async def run(session: Any) -> int:
        try:
            line = await checkpoint(session)
        except CheckpointRefused as refused:
            print(f"privacy: audit checkpoint REFUSED: {refused}", file=sys.stderr)
            return 1
        print(
            f"audit checkpoint {line['n']} written to {settings.audit_checkpoint_dir}: "
            f"{line['chains']} chains, {len(line['heads'])} moved since the last one",
            flush=True,
        )
        return 0

    while True:
        code = _with_session(settings, run)
        if not args.every or code:
            sys.exit(code)
        sleep(args.every)


def _with_session(settings: Any, work: Callable[[Any], Awaitable[int]]) -> int:
    """Run `work` with a session on the configured database, then dispose of the engine."""
    from app.core.db import create_engine
    from app.runtime import Runtime

    async def run() -> int:
        engine = create_engine(settings)
        try:
            async with Runtime.build(settings).sessions(engine)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def cmd_worker(args: argparse.Namespace) -> None:
    import signal

    from app.core.db import create_engine
    from app.core.logging import configure_logging
    from app.runtime import Runtime
    from app.webhooks import delivery

    settings = _settings()
    _preflight(settings)
    configure_logging(settings.log_level)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        engine = create_engine(settings)
        sessions = Runtime.build(settings).sessions(engine)
        try:
            if args.once:
                async with delivery.http_client(settings) as http:
                    while not stop.is_set() and await delivery.run_once(sessions, settings, http):
                        pass
            else:  # database errors are logged and waited out (delivery.serve), never the end of it
                await delivery.serve(sessions, settings, stop, interval=args.interval)
        finally:
            await engine.dispose()

    asyncio.run(run())


async def _sweep(settings: Settings, *, dry_run: bool, batch_size: int) -> dict[str, Any]:
    from app.auth.principals import Principal
    from app.core.db import create_engine, unit_of_work
    from app.retention import service as retention
    from app.runtime import Runtime

    engine = create_engine(settings)
    sessions = Runtime.build(settings).sessions(engine)
    try:
        async with unit_of_work(sessions) as session:
            started = await retention.start(session, dry_run=dry_run, actor=Principal.system("privacy-cli"))
        finished = await retention.execute(sessions, started.id, batch_size=batch_size)
        return {
            "run_id": str(finished.id),
            "status": finished.status,
            "dry_run": finished.dry_run,
            "resumed_from": str(finished.resumed_from) if finished.resumed_from else None,
            "subjects_scanned": finished.subjects_scanned,
            "items_scanned": finished.items_scanned,
            "report": finished.report,
        }
    finally:
        await engine.dispose()


def cmd_retention_run(args: argparse.Namespace) -> None:
    import resource

    from sqlalchemy.exc import SQLAlchemyError

    from app.core.db import DatabaseUnavailable
    from app.core.errors import AppError
    from app.core.logging import configure_logging

    settings = _settings()
    configure_logging(settings.log_level)
    try:
        outcome = asyncio.run(_sweep(settings, dry_run=args.dry_run, batch_size=args.batch_size))
    except AppError as exc:  # another run under way: one line, exit 1
        sys.exit(f"privacy: retention run refused: {exc.detail}")
    except (DatabaseUnavailable, SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300] if str(exc) else ""
        sys.exit(f"privacy: retention run failed: {type(exc).__name__}: {reason}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(outcome, indent=2))
    print(f"peak memory: {peak_mb:.0f} MB", file=sys.stderr)


def cmd_notices_mail(args: argparse.Namespace) -> None:
    """Mail every privacy notice owed (GDPR Art. 14), in batches; what was done, as JSON."""
    from time import sleep

    from app.auth.principals import Principal
    from app.core.db import create_engine
    from app.core.logging import configure_logging
    from app.notices import service as notices
    from app.runtime import Runtime

    settings = _settings()
    configure_logging(settings.log_level)

    async def run() -> dict[str, int]:
        engine = create_engine(settings)
        try:
            sessions = Runtime.build(settings).sessions(engine)
            result = await notices.mail_all_owed(
                sessions, batch=args.batch_size, actor=Principal.system("privacy-cli")
            )
            return result.model_dump()
        finally:
            await engine.dispose()

    while True:
        print(json.dumps(asyncio.run(run()), indent=2), flush=True)
        if not args.every:
            return
        sleep(args.every)


def next_run(now: datetime, at: time) -> datetime:
    """The first moment at `at` (UTC) strictly after `now`."""
    today = datetime.combine(now.astimezone(UTC).date(), at, tzinfo=UTC)
    return today if today > now else today + timedelta(days=1)


def _clock(value: str) -> time:
    try:
        return time.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a time of day like 02:15") from None


async def run_daily(
    at: time,
    sweep: Callable[[], Awaitable[dict[str, Any]]],
    stop: asyncio.Event,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """`sweep()` once a day at `at` (UTC), until `stop` is set. A run that fails (the database away, a run
    already under way) is logged, and the next day's goes ahead."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.core.db import DatabaseUnavailable
    from app.core.errors import AppError

    while not stop.is_set():
        due = next_run(now(), at)
        log.info("next retention run", extra={"at": due.isoformat()})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, (due - now()).total_seconds()))
            return
        try:
            outcome = await sweep()
        except (AppError, DatabaseUnavailable, SQLAlchemyError, OSError) as exc:
            failure = {"error": type(exc).__name__, "detail": str(exc)[:300]}
            log.error("retention run failed", extra=failure)
        else:
            log.info("retention run finished", extra=outcome)


def cmd_retention_schedule(args: argparse.Namespace) -> None:
    """The sweep daily at --at (UTC), until SIGTERM or SIGINT: the retention service of compose.yaml."""
    from app.core.logging import configure_logging

    settings = _settings()
    configure_logging(settings.log_level)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_daily(
            args.at, lambda: _sweep(settings, dry_run=args.dry_run, batch_size=args.batch_size), stop
        )

    asyncio.run(run())


def cmd_demo(_args: argparse.Namespace) -> None:
    from app.demo import describe, load_demo

    settings = _settings()
    _migrate(settings)
    # The commands printed run as this one was run (`.venv/bin/privacy demo` prints `.venv/bin/privacy ...`).
    program = sys.argv[0] if Path(sys.argv[0]).name == "privacy" else "privacy"
    print(describe(asyncio.run(load_demo(settings)), base_url=settings.public_base_url, program=program))


def cmd_openapi(args: argparse.Namespace) -> None:
    from app.main import create_app

    with tempfile.TemporaryDirectory() as folder:  # the document does not depend on any key
        app = create_app(Settings(env="test", receipt_key_file=Path(folder) / "receipt.pem"))
        document = json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"
    if args.output:
        Path(args.output).write_text(document)
    else:
        sys.stdout.write(document)


def build_parser() -> argparse.ArgumentParser:
    from app.auth.principals import TOKEN_ROLES

    parser = argparse.ArgumentParser(prog="privacy", description="WeSafe Privacy API")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate the database, then serve the API")
    # argparse converts a string default with `type`, so a bad PRIVACY_PORT is refused like a bad --port.
    env = os.environ.get
    serve.add_argument("--host", default=env("PRIVACY_HOST", "127.0.0.1"), help="(PRIVACY_HOST) 127.0.0.1")
    serve.add_argument("--port", type=int, default=env("PRIVACY_PORT", "8000"), help="(PRIVACY_PORT) 8000")
    serve.add_argument("--workers", type=int, default=env("PRIVACY_WORKERS", "1"), help="(PRIVACY_WORKERS) 1")
    serve.add_argument("--no-migrate", action="store_true", help="do not migrate before serving")
    serve.set_defaults(handler=cmd_serve)

    check = commands.add_parser(
        "check", help="check the configuration (and keys) as serve would; exit 1 if bad"
    )
    check.set_defaults(handler=cmd_check)

    migrate = commands.add_parser("migrate", help="apply (or revert) database migrations")
    migrate.add_argument("direction", nargs="?", choices=["upgrade", "downgrade"], default="upgrade")
    migrate.add_argument("revision", nargs="?", help="target revision (default: head, or one step down)")
    migrate.set_defaults(handler=cmd_migrate)

    token = commands.add_parser("token", help="mint an access token (HS256, configured secret)")
    token.add_argument("--role", required=True, choices=sorted(TOKEN_ROLES))
    token.add_argument("--sub", required=True, help="subject id, processor id, or staff user/client name")
    token.add_argument(
        "--scope", default="", help='space-separated staff scopes, e.g. "subjects:read audit:read"'
    )
    token.add_argument(
        "--ttl", type=int, default=None, help="lifetime in seconds (default PRIVACY_ACCESS_TOKEN_TTL_SECONDS)"
    )
    token.set_defaults(handler=cmd_token)

    audit = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser(
        "verify",
        help="check every chain's MACs and heads against the last checkpoint; non-zero exit if broken",
    )
    verify.set_defaults(handler=cmd_audit_verify)
    checkpoint = audit_commands.add_parser(
        "checkpoint", help="append a signed checkpoint of every chain's head to PRIVACY_AUDIT_CHECKPOINT_DIR"
    )
    checkpoint.add_argument(
        "--every", type=float, default=0, help="seconds: write one every so often, until stopped"
    )
    checkpoint.set_defaults(handler=cmd_audit_checkpoint)

    retention = commands.add_parser("retention", help="the retention sweep")
    retention_commands = retention.add_subparsers(dest="retention_command", required=True)
    sweep = retention_commands.add_parser(
        "run", help="delete or anonymize what has expired (cron it nightly)"
    )
    sweep.add_argument("--dry-run", action="store_true", help="report what would happen; change nothing")
    sweep.add_argument("--batch-size", type=int, default=500, help="subjects per transaction (default 500)")
    sweep.set_defaults(handler=cmd_retention_run)
    schedule = retention_commands.add_parser(
        "schedule", help="run the sweep every day at --at (UTC), until stopped"
    )
    schedule.add_argument("--at", type=_clock, default="02:15", help="time of day, UTC (default 02:15)")
    schedule.add_argument("--dry-run", action="store_true", help="report what would happen; change nothing")
    schedule.add_argument(
        "--batch-size", type=int, default=500, help="subjects per transaction (default 500)"
    )
    schedule.set_defaults(handler=cmd_retention_schedule)

    notices = commands.add_parser("notices", help="the privacy notices owed to subjects")
    notices_commands = notices.add_subparsers(dest="notices_command", required=True)
    notices_mail = notices_commands.add_parser("mail", help="mail every notice owed (Art. 14), in batches")
    notices_mail.add_argument("--batch-size", type=int, default=100, help="mails per transaction")
    notices_mail.add_argument(
        "--every", type=float, default=0, help="seconds: mail what is owed every so often, until stopped"
    )
    notices_mail.set_defaults(handler=cmd_notices_mail)

    worker = commands.add_parser("worker", help="deliver outbox events as signed webhooks")
    worker.add_argument(
        "--interval", type=float, default=1.0, help="seconds to wait when there is nothing to do"
    )
    worker.add_argument("--once", action="store_true", help="work until nothing is due, then exit")
    worker.set_defaults(handler=cmd_worker)

    demo = commands.add_parser("demo", help="load demo data into an empty database")
    demo.set_defaults(handler=cmd_demo)

    openapi = commands.add_parser("openapi", help="print the OpenAPI document")
    openapi.add_argument("--output", "-o", help="write to this file instead of standard output")
    openapi.set_defaults(handler=cmd_openapi)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
