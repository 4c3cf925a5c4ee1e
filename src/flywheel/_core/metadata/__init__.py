"""Metadata by capability: the interfaces the metadata backends (SQLite, PostgreSQL) implement.

One module per capability: schemas, tokens, recoveries, table versions (with cursors), runs,
models, and alerts (with retraining decisions), each a record type or two and a small
Protocol. A consumer takes only the capability it uses; `store.MetadataStore` is all of
them at once, as one backend opened from a URL provides them. Backends store and fetch;
the rules (schema immutability, what a token scope may be) live above them, once.
"""
