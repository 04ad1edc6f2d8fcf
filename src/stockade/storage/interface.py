"""Storage: alerts and a bounded event log in SQL (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

from stockade.errors import StorageError

__all__ = ["StorageError"]
