"""Storage shared by the event log and derived tables: Delta table handles and the local
commit protocol, DuckDB connections, SQL identifiers."""
