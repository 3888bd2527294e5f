"""ember.passes: graph -> graph transformations and the pass manager.

Every pass is registered by name (``PASSES``) and run by ``run_pipeline``::

    from ember.passes import run_pipeline
    result = run_pipeline(graph, "autodiff,simplify,dce,fuse", print_after=["fuse"], dump_dir="dumps")
    result.graph, print(result.report())

Passes: autodiff, simplify, fold, cse, dce, fuse, unfuse, partition, remat, autocast.
"""

from .manager import (
    PASSES, Pass, PipelineResult, cli_run_passes, count_nodes, describe_passes, get_pass, load_dump,
    register_pass, rerun_pass, run_pipeline,
)
from .autodiff import AutodiffError, autodiff, grad_graph
from .cleanup import cse, dce
from .fold import fold
from .simplify import simplify
from .fusion import fuse, unfuse
from .partition import Partition, partition
from .autocast import autocast
from .remat import peak_bytes, remat
from .conv_bn import fold_conv_bn

# the pipeline ember.compile applies to a captured graph (autodiff, if any, runs before it)
DEFAULT_PIPELINE = ("simplify", "fold", "cse", "dce", "fuse")


def optimize(graph, pipeline=DEFAULT_PIPELINE, **kw):
    """Run the default optimization pipeline; returns the optimized graph."""
    return run_pipeline(graph, pipeline, **kw).graph


__all__ = [
    "PASSES", "Pass", "PipelineResult", "cli_run_passes", "count_nodes", "describe_passes", "get_pass",
    "load_dump", "register_pass", "rerun_pass", "run_pipeline", "AutodiffError", "autodiff", "grad_graph",
    "cse", "dce", "fold", "simplify", "fuse", "unfuse", "Partition", "partition", "autocast",
    "DEFAULT_PIPELINE", "optimize", "peak_bytes", "remat", "fold_conv_bn",
]
