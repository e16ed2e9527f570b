"""The statement machinery the repositories share: a small library, and the only code besides the
repositories (and core.db) that touches SQL.

- `run(session, statement, params)`: a statement built once, at import, executed past SQLAlchemy's
  per-execution work (prebuilt.py). On the hot paths that work costs the application more than the
  statement costs the database.
- `Insert(table, prefix)`: an INSERT (or upsert) of every column from named parameters, built once; calling
  it with a row's values gives a `Write`.
- `write(session, *writes)` runs writes in order; `write_guarded(session, guard, writes)` runs them only if
  `guard`, a write with RETURNING, matches a row: on PostgreSQL as one statement, atomic on its own
  (writes.py).
- `execute(session, statement)`: a statement built per call (filters, lists, batches), `modify` for an
  UPDATE or DELETE built so, counting its rows; `paginate` for keyset pages, and `where_given` for a
  list's optional filters (pagination.py).
- `upsert_for`, `among`: the dialect's INSERT ... ON CONFLICT, and `IN` as one array parameter on
  PostgreSQL (dialects.py).

Outside a transaction (core.db.transaction) a session may write once: a second write raises, so that a
request cannot half-write by forgetting to ask for one.
"""

from app.core.sql.dialects import among, dialect_of, table_of, upsert_for
from app.core.sql.pagination import paginate, where_given
from app.core.sql.prebuilt import execute, modify, run
from app.core.sql.writes import Insert, Write, write, write_guarded

__all__ = [
    "Insert",
    "Write",
    "among",
    "dialect_of",
    "execute",
    "modify",
    "paginate",
    "run",
    "table_of",
    "upsert_for",
    "where_given",
    "write",
    "write_guarded",
]
