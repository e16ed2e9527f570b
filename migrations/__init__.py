"""Alembic migrations (a package, so that an installed service can migrate itself)."""
