"""The `privacy` command: serve, migrate, token, audit verify, retention run, worker, demo, openapi."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from app.core.config import ConfigError, Settings


def _settings() -> Settings:
    try:
        settings = Settings()
        settings.check()
    except (ConfigError, ValueError) as exc:
        sys.exit(f"privacy: {exc}")
    return settings


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from app.core import migrate

    settings = _settings()
    if not args.no_migrate:
        migrate.upgrade(settings.database_url)
    if args.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker writes its metrics to files here; /metrics sums them.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="privacy-metrics-")
    print(f"privacy: serving on http://{args.host}:{args.port} (API docs at /docs)", file=sys.stderr)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )


def cmd_migrate(args: argparse.Namespace) -> None:
    from app.core import migrate

    settings = _settings()
    if args.direction == "downgrade":
        migrate.downgrade(settings.database_url, args.revision or "-1")
    else:
        migrate.upgrade(settings.database_url, args.revision or "head")


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
    from app.audit.service import verify_chains
    from app.core.db import create_engine
    from app.runtime import Runtime

    settings = _settings()

    async def run() -> int:
        engine = create_engine(settings)
        try:
            async with Runtime.build(settings).sessions(engine)() as session:
                checked, broken = await verify_chains(session)
        finally:
            await engine.dispose()
        if broken is None:
            print(f"audit chain intact: {checked} events verified")
            return 0
        print(
            f"audit chain BROKEN at event {broken.event_id} (chain {broken.chain}, sequence {broken.seq}): "
            f"{broken.reason}; {checked} events verified before it",
            file=sys.stderr,
        )
        return 1

    sys.exit(asyncio.run(run()))


def cmd_worker(args: argparse.Namespace) -> None:
    import signal

    from app.core.db import create_engine
    from app.core.logging import configure_logging
    from app.runtime import Runtime
    from app.webhooks import delivery

    settings = _settings()
    configure_logging(settings.log_level)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        engine = create_engine(settings)
        sessions = Runtime.build(settings).sessions(engine)
        try:
            async with delivery.http_client(settings) as http:
                while not stop.is_set():
                    done = await delivery.run_once(sessions, settings, http)
                    if done == 0:
                        if args.once:
                            break
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), timeout=args.interval)
        finally:
            await engine.dispose()

    asyncio.run(run())


def cmd_retention_run(args: argparse.Namespace) -> None:
    import resource

    from app.auth.principals import Principal
    from app.core.db import create_engine, unit_of_work
    from app.retention import service as retention
    from app.runtime import Runtime

    settings = _settings()

    async def run() -> dict[str, Any]:
        engine = create_engine(settings)
        sessions = Runtime.build(settings).sessions(engine)
        try:
            async with unit_of_work(sessions) as session:
                started = await retention.start(
                    session, dry_run=args.dry_run, actor=Principal.system("privacy-cli")
                )
            finished = await retention.execute(sessions, started.id, batch_size=args.batch_size)
            return {
                "run_id": str(finished.id),
                "status": finished.status,
                "dry_run": finished.dry_run,
                "subjects_scanned": finished.subjects_scanned,
                "items_scanned": finished.items_scanned,
                "report": finished.report,
            }
        finally:
            await engine.dispose()

    outcome = asyncio.run(run())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(outcome, indent=2))
    print(f"peak memory: {peak_mb:.0f} MB", file=sys.stderr)


def cmd_demo(_args: argparse.Namespace) -> None:
    from app.core import migrate
    from app.demo import load_demo

    settings = _settings()
    migrate.upgrade(settings.database_url)
    print(asyncio.run(load_demo(settings)))


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
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--no-migrate", action="store_true", help="do not migrate before serving")
    serve.set_defaults(handler=cmd_serve)

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
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    token.set_defaults(handler=cmd_token)

    audit = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="recompute every hash chain; non-zero exit if broken")
    verify.set_defaults(handler=cmd_audit_verify)

    retention = commands.add_parser("retention", help="the retention sweep")
    retention_commands = retention.add_subparsers(dest="retention_command", required=True)
    sweep = retention_commands.add_parser(
        "run", help="delete or anonymize what has expired (cron it nightly)"
    )
    sweep.add_argument("--dry-run", action="store_true", help="report what would happen; change nothing")
    sweep.add_argument("--batch-size", type=int, default=500, help="subjects per transaction (default 500)")
    sweep.set_defaults(handler=cmd_retention_run)

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
