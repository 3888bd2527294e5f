"""Process-wide front-end state: grad mode, the active tracer, autocast settings.

Kept in one tiny module so the hot path reads plain module attributes.
"""

grad_enabled: bool = True
tracer = None  # the active ember.jit tracer, or None
autocast_dtype = None  # the dtype ember.amp.autocast casts to on the CPU, or None outside autocast
autocast_hook = None  # ember.amp.autocast_mode.cast_inputs(category, *tensors), installed by ember.amp
