"""Apache TVM for ember: Relax lowering of every primitive, builds, a persistent compile cache.

Importing this package registers the ``"tvm"`` backend with ``ember.runtime.backend``
and ember's packed functions (BLAS matmul, random draws) with TVM.

- ``lower.py``: Graph -> Relax IRModule via ``relax.BlockBuilder``; ``LOWERINGS`` (per primitive,
  in ``ops/``); fused groups -> one Primitive function each;
- ``build.py``: targets and the pipeline; ``schedule.py``: ember's CPU schedules;
- ``extern.py``: packed functions; ``dlpack.py``: zero-copy array exchange;
- ``cache.py``: the on-disk cache (``ember cache info|clear``); ``backend.py``: the backend.
"""

from ember.runtime.backend import register_backend

from . import extern  # noqa: F401  registers ember's packed functions with TVM
from .backend import TVMCompiledGraph, compile_tvm, prepare_graph, relax_module  # noqa: F401
from .build import build, resolve_target  # noqa: F401
from .lower import LOWERINGS, LoweringError, graph_to_relax  # noqa: F401
from . import ops  # noqa: F401  registers every lowering

register_backend("tvm", compile_tvm)
