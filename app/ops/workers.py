"""Several uvicorn workers and prometheus_client's multiprocess mode: when uvicorn's supervisor reaps a worker
(it died and is replaced, or the server stops), prometheus_client is told, and drops that worker's live
gauges (`mark_process_dead`). uvicorn has no hook for a worker's exit, but its supervisor joins every worker
it ends through `Process.join`; `install()` puts a subclass of that Process in its place.

The subclass lives at module level: uvicorn starts workers with multiprocessing's spawn, which pickles the
Process (its bound `target`) by its importable name."""

from __future__ import annotations

import logging

from prometheus_client import multiprocess as prometheus_multiprocess
from uvicorn.supervisors import multiprocess as supervisor

log = logging.getLogger("app.ops.workers")


class Worker(supervisor.Process):
    def join(self) -> None:
        super().join()
        if self.pid is not None:
            prometheus_multiprocess.mark_process_dead(self.pid)  # type: ignore[no-untyped-call]  # prometheus_client is unannotated
            log.info("worker exited; its metrics marked dead", extra={"pid": self.pid})


def install() -> None:
    """Make uvicorn's supervisor start (and so join) workers as `Worker`: call before uvicorn.run()."""
    supervisor.Process = Worker  # type: ignore[misc]  # uvicorn offers no hook for a worker's exit
