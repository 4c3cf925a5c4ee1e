"""Online stores: the latest feature values per entity key (SQLite, Redis)."""
