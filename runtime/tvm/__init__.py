"""Apache TVM for ember: Relax lowering of every primitive, builds, a persistent compile cache.

Importing this package registers the ``"tvm"`` backend with ``ember.runtime.backend``
and ember's packed functions (BLAS matmul, random draws) with TVM.

- ``lower.py``: Graph -> Relax IRModule via ``relax.BlockBuilder``; ``LOWERINGS`` (per primitive,
  in ``ops/``); fused groups -> one Primitive function each;
- ``build.py``: targets and the pipeline; ``schedule.py``: ember's CPU schedules;
- ``extern.py``: packed functions; ``dlpack.py``: zero-copy array exchange;
- ``cache.py``: the on-disk cache (``ember cache info|clear``); ``backend.py``: the backend.
"""

import sys


def _import_tvm_without_torch() -> None:
    """Import TVM without letting ``tvm_ffi`` import PyTorch (it tries, for faster DLPack with torch).

    ember never uses PyTorch, and importing it would double TVM's import time. When torch is
    already loaded (a user's script compares with it) nothing changes.
    """
    if "tvm" in sys.modules or "torch" in sys.modules:
        return
    sys.modules["torch"] = None  # makes `import torch` raise ImportError while TVM initializes
    try:
        import tvm  # noqa: F401
    finally:
        if "torch" in sys.modules and sys.modules["torch"] is None:
            del sys.modules["torch"]


_import_tvm_without_torch()

from ember.runtime.backend import register_backend  # noqa: E402

from . import extern  # noqa: F401,E402  registers ember's packed functions with TVM
from .backend import TVMCompiledGraph, compile_tvm, prepare_graph, relax_module  # noqa: F401,E402
from .build import build, resolve_target  # noqa: F401,E402
from .lower import LOWERINGS, LoweringError, graph_to_relax  # noqa: F401,E402
from . import ops  # noqa: F401,E402  registers every lowering

register_backend("tvm", compile_tvm)
