"""Alembic migrations of the Stockade database (run by Store at open: upgrade to head)."""
