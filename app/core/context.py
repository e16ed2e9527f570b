"""Per-request context readable anywhere (log lines, audit rows, problem bodies)."""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
