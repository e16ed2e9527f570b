"""A/B of checkouts: this checkout's service and other ones (another commit, a change being tried), each
against the reference, measured in alternating rounds on one database, so that every tree sees the same
machine.

    git worktree add /tmp/before <commit> && python3 -m venv /tmp/before/.venv
    /tmp/before/.venv/bin/pip install -q -c /tmp/before/constraints.txt -e /tmp/before
    .venv/bin/python bench/compare.py /tmp/before --paths consent_write rights_request [--rounds 4]

The database is migrated and seeded by this checkout (bench/run.py's `prepare`): another tree must run on
this checkout's schema. One app runs at a time, each with its own default settings, so that none pays for
another's idle connections (PostgreSQL's 100 by default are shared by all).
Prints, per path and tree, the median ratio to the reference over the rounds, each round's ratio, and the
CPU time per request. Needs wrk and PostgreSQL, as bench/run.py does.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
from datetime import datetime
from pathlib import Path

# name -> (the service's load script, the reference's, wrk connections)
PATHS = {
    "consent_write": ("consent_write.lua", "reference_insert.lua", 32),
    "rights_request": ("rights_request.lua", "reference_insert.lua", 32),
    "decision": ("decision.lua", "reference_read.lua", 32),
    "decision_batch": ("decision_batch.lua", "reference_read.lua", 4),
    "marketing_check": ("marketing_check.lua", "reference_read.lua", 4),
}


def main() -> None:
    from bench import run

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trees", nargs="+", type=Path, help="other checkouts, each with a .venv of its own")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=["consent_write"])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (after a warm-up)")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    trees = [run.ROOT, *(tree.resolve() for tree in args.trees)]

    run.RESULTS.mkdir(exist_ok=True)
    database = f"privacy_compare_{datetime.now():%Y%m%d%H%M%S}"
    asyncio.run(run.sql(args.server, f'CREATE DATABASE "{database}"'))
    run.log(f"database {database}")
    try:
        env = run.prepare(f"{args.server}/{database}") | {"BENCH_BATCH": "1000"}
        reference_app = [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.reference_app:app",
            "--port",
            str(run.REFERENCE_PORT),
            "--workers",
            "2",
            "--no-access-log",
            "--log-level",
            "warning",
        ]

        def measure(
            name: str, command: list[str], port: int, script: str, connections: int, tree: Path
        ) -> dict[str, float]:
            app = run.start(command, env, port, name, cwd=tree)
            try:
                return run.measure(f"{name} {tree}", port, script, env, args, connections, group=app.pid)
            finally:
                run.stop(app)

        rounds: dict[tuple[str, Path], list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for path in args.paths:
                script, reference_script, connections = PATHS[path]
                reference = measure(
                    "reference", reference_app, run.REFERENCE_PORT, reference_script, connections, run.ROOT
                )
                for tree in trees:
                    service = [
                        str(tree / ".venv/bin/python"),
                        "-m",
                        "app.cli",
                        "serve",
                        "--no-migrate",
                        "--port",
                        str(run.SERVICE_PORT),
                        "--workers",
                        "2",
                    ]
                    result = measure(path, service, run.SERVICE_PORT, script, connections, tree)
                    result["ratio"] = result["rps"] / reference["rps"]
                    rounds.setdefault((path, tree), []).append(result)
        for (path, tree), results in rounds.items():
            print(
                f"{path} {tree}: ratio {statistics.median(r['ratio'] for r in results):.2f} (rounds "
                + " ".join(f"{r['ratio']:.2f}" for r in results)
                + f"), {statistics.median(r['rps'] for r in results):.0f} req/s, CPU per request: app "
                f"{statistics.median(r['app_cpu_us'] for r in results):.0f} µs, database "
                f"{statistics.median(r['db_cpu_us'] for r in results):.0f} µs"
            )
    finally:
        asyncio.run(run.sql(args.server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
