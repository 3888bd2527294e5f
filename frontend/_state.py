"""Process-wide front-end state: grad mode, the active tracer, autocast settings.

Kept in one tiny module so the hot path reads plain module attributes.
"""

grad_enabled: bool = True
tracer = None  # the active ember.jit tracer, or None
