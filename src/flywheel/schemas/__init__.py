"""Event schemas: Iglu keys, JSON Schema documents, versioning rules, compiled validators."""
