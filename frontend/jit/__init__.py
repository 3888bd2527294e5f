"""``ember.jit``: graph capture by tracing (see ember.jit.trace)."""


class TraceError(RuntimeError):
    """Raised when user code does something a captured graph cannot represent."""
