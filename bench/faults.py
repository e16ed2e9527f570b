"""Database faults under load, for longer than the suite's test (tests/test_faults.py): the service on a
private PostgreSQL cluster (tests/pgcluster.py: initdb in a temporary folder, a free port), clients writing
consent all along, and a fault every `--interval` seconds, in turn:

- `restart`: a fast shutdown and a start (what an upgrade or a failover does);
- `crash`: an immediate shutdown (the server's processes quit at once; recovery at the next start);
- `kill`: SIGKILL to the postmaster and its children, then a start;
- `freeze`: SIGSTOP to every process of the server for `--freeze` seconds, then SIGCONT (a hung disk, a
  paused VM).

    .venv/bin/python bench/faults.py [--duration 180] [--interval 20] [--writers 16] [--workers 2]

Per fault: the requests answered while it lasted and until the service wrote again, by status; how long
after the database was back the first write succeeded (recovery) and the last one failed; the slowest
answer. At the end, every consent the service acknowledged (201) is looked for in the subjects' histories.
Only 201 and 503 may answer; a 500 or a lost write fails the run (exit 1). Results:
bench/results/faults.md and .json."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FAULTS = ("restart", "crash", "kill", "freeze")


@dataclass
class Request:
    sent: float
    answered: float
    status: int  # 0: no HTTP answer at all (the connection to the service failed)
    consent: str = ""


@dataclass
class Fault:
    kind: str
    began: float
    back: float = 0.0
    requests: list[Request] = field(default_factory=list)


async def writer(client: httpx.AsyncClient, subject: str, until: float, log: list[Request]) -> None:
    number = 0
    while time.monotonic() < until:
        number += 1
        body = {
            "purpose": ("newsletter", "marketing", "analytics")[number % 3],
            "status": ("granted", "withdrawn")[number % 2],
            "channel": "web",
        }
        sent = time.monotonic()
        try:
            response = await client.post(f"/v1/subjects/{subject}/consents", json=body)
        except httpx.HTTPError:
            log.append(Request(sent, time.monotonic(), 0))
            await asyncio.sleep(0.1)
            continue
        entry = Request(sent, time.monotonic(), response.status_code)
        if response.status_code == 201:
            entry.consent = response.json()["id"]
        log.append(entry)
        if response.status_code != 201:
            await asyncio.sleep(0.1)  # a client backing off


async def inject(cluster: object, kind: str, freeze: float) -> None:
    from tests.pgcluster import Cluster

    assert isinstance(cluster, Cluster)
    if kind == "restart":
        await asyncio.to_thread(cluster.restart, "fast")
    elif kind == "crash":
        await asyncio.to_thread(cluster.stop, "immediate")
        await asyncio.sleep(1)
        await asyncio.to_thread(cluster.start)
    elif kind == "kill":
        await asyncio.to_thread(cluster.kill)
        await asyncio.sleep(1)
        await asyncio.to_thread(cluster.start)
    else:
        cluster.freeze()
        await asyncio.sleep(freeze)
        cluster.thaw()


async def soak(
    url: str, token: str, cluster: object, args: argparse.Namespace
) -> tuple[list[Request], list[Fault], dict[str, set[str]], float]:
    from bench import load

    log: list[Request] = []
    faults: list[Fault] = []
    async with load.client(url, token, args.writers) as client:
        subjects = await load.new_subjects(client, args.writers, prefix="f", name="Soak Writer")
        start = time.monotonic()
        until = start + args.duration
        load = [asyncio.create_task(writer(client, s, until, log)) for s in subjects]
        try:
            number = 0
            while time.monotonic() + 1.5 * args.interval < until:  # the last one recovers in the run
                await asyncio.sleep(args.interval / 2)
                fault = Fault(FAULTS[number % len(FAULTS)], time.monotonic())
                print(f"{fault.began - start:6.1f} s: {fault.kind}", flush=True)
                await inject(cluster, fault.kind, args.freeze)
                fault.back = time.monotonic()
                faults.append(fault)
                number += 1
                await asyncio.sleep(args.interval / 2)
        except BaseException:
            for task in load:
                task.cancel()
            raise
        await asyncio.gather(*load)
        stored: dict[str, set[str]] = {}
        for subject in subjects:
            items: set[str] = set()
            cursor = None
            while True:
                params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
                response = await client.get(f"/v1/subjects/{subject}/consents/history", params=params)
                response.raise_for_status()
                page = response.json()
                items |= {item["id"] for item in page["items"]}
                cursor = page.get("next_cursor")
                if not cursor:
                    break
            stored[subject] = items
    return log, faults, stored, start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=180)
    parser.add_argument("--interval", type=float, default=20, help="seconds between faults")
    parser.add_argument("--freeze", type=float, default=10, help="how long a freeze lasts")
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench import load
    from tests.pgcluster import Cluster

    token = load.staff_token()
    folder = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    with Cluster() as cluster:
        database_url = cluster.database("soak", migrated=True)
        port = load.free_port()
        serve = ["serve", "--no-migrate", "--port", str(port), "--workers", str(args.workers)]
        with load.serving(
            [sys.executable, "-m", "app.cli", *serve],
            port=port,
            database_url=database_url,
            folder=folder,
            ready="/readyz",
        ) as url:
            log, faults, stored, start = asyncio.run(soak(url, token, cluster, args))
    report(args, log, faults, stored, start, (folder / "server.log").read_text(errors="replace"))


def report(
    args: argparse.Namespace,
    log: list[Request],
    faults: list[Fault],
    stored: dict[str, set[str]],
    start: float,
    server_log: str,
) -> None:
    rows = []
    for number, fault in enumerate(faults):
        end = faults[number + 1].began if number + 1 < len(faults) else float("inf")
        during = [r for r in log if fault.began <= r.answered < end]
        written_after = [r.answered for r in during if r.status == 201 and r.sent >= fault.back]
        failed = [r.answered for r in during if r.status != 201]
        statuses: dict[int, int] = {}
        for r in during:
            if r.status != 201 or r.answered < fault.back:
                statuses[r.status] = statuses.get(r.status, 0) + 1
        rows.append(
            {
                "fault": fault.kind,
                "at_s": round(fault.began - start, 1),
                "lasted_s": round(fault.back - fault.began, 1),
                "recovery_s": round(min(written_after) - fault.back, 2) if written_after else None,
                "last_failure_after_back_s": round(max(failed) - fault.back, 2) if failed else None,
                "answers_until_back": statuses,
                "slowest_s": round(max((r.answered - r.sent for r in during), default=0), 2),
            }
        )
    acknowledged = {r.consent for r in log if r.status == 201}
    found = set().union(*stored.values())
    statuses_all: dict[int, int] = {}
    for r in log:
        statuses_all[r.status] = statuses_all.get(r.status, 0) + 1
    lost = len(acknowledged - found)
    bad = {s: n for s, n in statuses_all.items() if s not in (201, 503)}
    lines = [
        f"# Database faults under load ({args.writers} writers, {args.workers} workers, {args.duration:g} s, "
        f"a fault every {args.interval:g} s, freezes of {args.freeze:g} s)",
        "",
        "| fault | at s | lasted s | recovery s | last failure after back s | answers until back "
        "| slowest s |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {r['fault']} | {r['at_s']} | {r['lasted_s']} | {r['recovery_s']} "
            f"| {r['last_failure_after_back_s']} | {r['answers_until_back']} | {r['slowest_s']} |"
            for r in rows
        ),
        "",
        f"Requests: {len(log)}, by status {dict(sorted(statuses_all.items()))}. Acknowledged writes: "
        f"{len(acknowledged)}, lost: {lost}. Tracebacks in the server's log: "
        f"{server_log.count('Traceback')}.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "faults.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "faults.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "faults": rows,
                "statuses": statuses_all,
                "acknowledged": len(acknowledged),
                "lost": lost,
            },
            indent=2,
        )
    )
    print("\n".join(lines))
    if lost or bad:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
