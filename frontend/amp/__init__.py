"""``ember.amp``: automatic mixed precision (``torch.amp``): ``autocast`` and ``GradScaler``."""

from .autocast_mode import (  # noqa: F401
    autocast, cast_inputs, custom_bwd, custom_fwd, get_autocast_dtype, is_autocast_available, is_autocast_enabled,
)
from .grad_scaler import GradScaler  # noqa: F401

__all__ = ["autocast", "GradScaler", "custom_fwd", "custom_bwd", "is_autocast_available"]
