"""The error hierarchy. Every error a user can cause is a `FlywheelError` with one line to show."""

from __future__ import annotations


class FlywheelError(Exception):
    """Base of every error Flywheel raises on purpose.

    `hint` says what to do next; the CLI prints `error: {message} ({hint})` and exits 2,
    the HTTP server answers 4xx with the same text.
    """

    http_status = 400

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = self.message if not self.hint else f"{self.message} — {self.hint}"
        return " ".join(text.split())


class ConfigError(FlywheelError):
    """`flywheel.yaml` or an environment variable is wrong."""


class ProjectNotFoundError(FlywheelError):
    """No `flywheel.yaml` where a project was expected."""


class SchemaDefinitionError(FlywheelError):
    """A schema file is not valid JSON Schema or breaks the versioning rules."""


class UnknownSchemaError(FlywheelError):
    """An event names a schema that is not registered."""

    http_status = 404


class BackendError(FlywheelError):
    """A backend is unknown, not installed or unreachable."""

    http_status = 503


class LogUnavailableError(FlywheelError):
    """The log could not commit; nothing in the failed batch was acknowledged."""

    http_status = 503


class AuthError(FlywheelError):
    """A request lacks a valid token or the scope it needs."""

    http_status = 401


class InputError(FlywheelError):
    """A request or file cannot be read at all (as opposed to a bad event inside it)."""
