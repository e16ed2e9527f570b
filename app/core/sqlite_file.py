"""The SQLite database file is created readable by the service's user alone (0600): it holds personal data,
and SQLite would create it (and its -wal and -shm files, which take the database file's mode) with the
process umask, typically 0644: readable by every local user."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

MODE = 0o600


def create_private(database_url: str) -> None:
    """Create the SQLite file of `database_url` empty, mode 0600, if it does not exist yet (SQLite takes an
    empty file for a new database). An existing file is left as the operator made it; other URLs: nothing."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    if url.database.startswith("file:") or url.query.get("mode") == "memory":
        return  # a URI filename: SQLite's to interpret
    # Exists already, or cannot be made here (its folder missing): SQLite's connect has its say.
    with contextlib.suppress(OSError):
        os.close(os.open(url.database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE))


def creator(database_url: str) -> Callable[..., None]:
    """A `do_connect` listener that makes the file private before each connection is opened (and lets the
    driver connect as usual)."""

    def before_connect(*_args: Any) -> None:
        create_private(database_url)

    return before_connect
