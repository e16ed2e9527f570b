"""SQLite's write tail with concurrent writers (issue 17, item 21): the service as shipped, whose transactions
wait in line per process (core.db._SqliteWriters), against the same code with that line taken away, so that
they wait in SQLite's polling busy handler as before. Both in the same run, alternating, on one machine.

    .venv/bin/python bench/sqlite_writers.py [--writers 16] [--duration 15] [--rounds 2] [--workers 1]

Each variant: a fresh SQLite database (migrated), `uvicorn app.main:create_app` with `--workers` processes,
`--writers` clients each recording consent for a subject of its own, one request after another, for
`--duration` seconds after a 2-second warm-up. Latencies are the clients' (request sent to response read).
Results: bench/results/sqlite_writers.md and .json."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

# The "before" variant: the service with its writers' line taken away (what it did before item 21).
WITHOUT_LINE = """
import app.core.db as db
db._SqliteWriters.enter = lambda self, info: None
db._SqliteWriters.leave = lambda self, info: None
"""
SERVE = """
import sys, uvicorn
uvicorn.run("app.main:create_app", factory=True, host="127.0.0.1", port=int(sys.argv[1]),
            workers=int(sys.argv[2]), log_level="warning", access_log=False)
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def write_load(url: str, token: str, writers: int, duration: float) -> dict[str, object]:
    from bench import load

    async with load.client(url, token, writers) as client:
        subjects = await load.new_subjects(client, writers, prefix="w", name="Bench Writer")
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        measure_from = time.monotonic() + 2
        until = measure_from + duration

        async def writer(subject: str) -> None:
            number = 0
            while (started := time.monotonic()) < until:
                number += 1
                body = {
                    "purpose": "newsletter",
                    "status": ("granted", "withdrawn")[number % 2],
                    "channel": "web",
                }
                response = await client.post(f"/v1/subjects/{subject}/consents", json=body)
                if started >= measure_from:
                    latencies.append(time.monotonic() - started)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        await asyncio.gather(*[writer(s) for s in subjects])
    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / duration, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p90_ms": round(percentile(latencies, 0.90) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "statuses": statuses,
    }


def run_variant(name: str, args: argparse.Namespace, token: str) -> dict[str, object]:
    from app.core import migrate
    from bench import load

    folder = Path(tempfile.mkdtemp(prefix=f"bench-sqlite-{name}-"))
    url = f"sqlite:///{folder}/privacy.db"
    migrate.upgrade(url)
    port = load.free_port()
    code = (WITHOUT_LINE if name == "busy handler" else "") + SERVE
    with load.serving(
        [sys.executable, "-c", code, str(port), str(args.workers)],
        port=port,
        database_url=url,
        folder=folder,
        ready="/healthz",
    ) as served:
        return asyncio.run(write_load(served, token, args.writers, args.duration))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench import load

    token = load.staff_token()
    rounds: list[dict[str, object]] = []
    for number in range(args.rounds):
        for name in ("busy handler", "in line"):
            result = run_variant(name, args, token)
            rounds.append({"round": number + 1, "variant": name, **result})
            print(json.dumps(rounds[-1]), flush=True)

    def mean(variant: str, key: str) -> float:
        values = [float(r[key]) for r in rounds if r["variant"] == variant]  # type: ignore[arg-type]
        return sum(values) / len(values)

    lines = [
        f"# SQLite, {args.writers} concurrent writers ({args.workers} worker process(es), "
        f"{args.duration:g} s per variant, {args.rounds} round(s), alternating)",
        "",
        "| round | variant | requests/s | p50 ms | p90 ms | p99 ms | max ms | statuses |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['round']} | {r['variant']} | {r['per_second']} | {r['p50_ms']} | {r['p90_ms']} "
            f"| {r['p99_ms']} | {r['max_ms']} | {r['statuses']} |"
            for r in rounds
        ),
        "",
        "In line / busy handler (means over the rounds): "
        + ", ".join(
            f"{key.removesuffix('_ms')} {mean('in line', key) / mean('busy handler', key):.2f}"
            for key in ("p50_ms", "p99_ms", "max_ms", "per_second")
        ),
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sqlite_writers.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "sqlite_writers.json").write_text(json.dumps({"args": vars(args), "rounds": rounds}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
