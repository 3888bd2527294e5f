"""ember.runtime."""
from . import fused  # noqa: F401,E402  registers KERNELS["fused"] and hands the kernels to ember.passes
