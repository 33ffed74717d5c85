"""Which failures are worth retrying unchanged."""

from __future__ import annotations

from django.db import InterfaceError, OperationalError

from dw_analytics.core.exceptions import DWError

# Fragments of driver messages that mean the connection, not the data, failed.
_TRANSIENT_MESSAGES = (
    "server closed the connection",
    "terminating connection",
    "connection refused",
    "connection is closed",
    "connection already closed",
    "could not connect",
    "connection timed out",
    "database is locked",
    "the database system is starting up",
    "the database system is shutting down",
    "ssl connection has been closed",
    "lost connection",
    "gone away",
)


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same work later can succeed (lost connection, lock), never for data errors.

    Example:
        >>> is_transient(OperationalError("server closed the connection unexpectedly"))
        True
        >>> is_transient(ValueError("bad decimal"))
        False
    """
    if isinstance(exc, DWError):
        return exc.retryable
    if isinstance(exc, InterfaceError):
        return True
    if isinstance(exc, OperationalError):
        message = str(exc).lower()
        return any(fragment in message for fragment in _TRANSIENT_MESSAGES)
    return False
