"""``ember.nn``: modules, parameters, functional API and initializers with PyTorch's API.

Layers are compositions of ember primitives (autodiff, export and fusion cover them
without extra code); convolution and pooling call the primitives of ``ember.ir.ops.nn``.
"""

from . import functional, init, utils  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import Module  # noqa: F401
from .parameter import Buffer, Parameter  # noqa: F401
from .parallel import DataParallel  # noqa: F401
