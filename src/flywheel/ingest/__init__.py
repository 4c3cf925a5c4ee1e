"""Doors into the log: SDK, files, the HTTP collector and the Snowplow tracker protocol."""
