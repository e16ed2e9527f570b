"""The layout's rules (docs/architecture.md), checked on the source: SQL lives in repositories (and in the
statement machinery of core.sql and core.db), a service reaches another domain only through its service,
and the audit trail imports no domain."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"
# What builds or runs SQL: SQLAlchemy's statement constructors, and a session's own query methods.
SQL_NAMES = {"select", "insert", "update", "delete", "text", "union_all", "func", "literal", "bindparam", "and_",
             "or_", "tuple_", "any_", "null", "exists"}
SESSION_QUERIES = {"execute", "scalar", "scalars", "get", "add", "add_all", "delete", "flush", "stream",
                   "stream_scalars", "begin_nested", "refresh", "merge"}
DOMAINS = sorted(p.name for p in APP.iterdir() if p.is_dir() and (p / "__init__.py").exists() and p.name != "core")


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), str(path))) for path in sorted(APP.rglob("*.py"))]


def _may_hold_sql(path: Path) -> bool:
    relative = path.relative_to(APP).as_posix()
    return path.name == "repository.py" or relative.startswith("core/sql/") or relative == "core/db.py"


def _imports(tree: ast.Module) -> list[tuple[str, str]]:
    """(module, name) of every `from module import name`, and (module, "") of every `import module`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def test_sql_is_built_only_in_repositories():
    """Tables may spell out their schema (an index's predicate, a server default) with text(); nothing else
    outside the repositories builds SQL."""
    offenders = [f"{path.relative_to(APP)}: {name} from {module}" for path, tree in _modules()
                 if not _may_hold_sql(path) for module, name in _imports(tree)
                 if module.split(".")[0] in ("sqlalchemy", "sqlmodel") and name in SQL_NAMES
                 and not (path.name == "models.py" and name == "text")]
    assert offenders == []


def test_sessions_are_queried_only_in_repositories():
    offenders = [f"{path.relative_to(APP)}:{node.lineno}: session.{node.func.attr}" for path, tree in _modules()
                 if not _may_hold_sql(path) for node in ast.walk(tree)
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                 and isinstance(node.func.value, ast.Name) and node.func.value.id in ("session", "other")
                 and node.func.attr in SESSION_QUERIES]
    assert offenders == []


def test_a_service_reaches_another_domain_only_through_its_service():
    offenders = []
    for path, tree in _modules():
        if path.name != "service.py":
            continue
        own = path.parent.name
        for module, name in _imports(tree):
            parts = module.split(".")
            if parts[0] != "app" or len(parts) < 2 or parts[1] == own or parts[1] not in DOMAINS:
                continue
            if parts[2:3] in (["models"], ["repository"]) or name in ("models", "repository"):
                offenders.append(f"{path.relative_to(APP)}: {module} {name}".strip())
    assert offenders == []


def test_the_audit_trail_imports_no_domain():
    """Every domain records through audit, so audit's service, repository and models depend on none of them
    (its router, like every router, checks callers with auth)."""
    imported = {module for path, tree in _modules() if path.parent.name == "audit" and path.name != "router.py"
                for module, _ in _imports(tree) if module.startswith("app.")}
    assert {module.split(".")[1] for module in imported} <= {"audit", "core"}, imported
