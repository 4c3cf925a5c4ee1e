"""Metadata stores: SQLite (the embedded default) and PostgreSQL, through SQLAlchemy."""
