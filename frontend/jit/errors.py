"""Errors of ``ember.jit``."""


class TraceError(RuntimeError):
    """Raised when user code does something a captured graph cannot represent."""
