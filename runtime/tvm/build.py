"""Targets, ember's Relax pipeline, and ``tvm.compile``.

Targets: ``"llvm"`` (the default) becomes a dict target carrying the host CPU
(``{"kind": "llvm", "mcpu": "znver3"}``: TVM 0.27 no longer parses ``-mcpu`` strings),
so LLVM may use AVX2/FMA; ``"cuda"`` uses TVM's default GPU pipeline with DLight
schedules and needs a GPU.

The CPU pipeline is TVM's (legalize, fuse, FuseTIR, lower) plus ember's schedules
(``schedule.py``) on every TIR kernel: TVM ships unscheduled loop nests, which run
one scalar element at a time.
"""

from __future__ import annotations

import warnings
from typing import Any, Union

import tvm
from tvm import relax
from tvm import tirx as tir

TargetSpec = Union[str, dict, "tvm.target.Target"]


def resolve_target(spec: TargetSpec = "llvm") -> tvm.target.Target:
    """``"llvm"`` -> the host CPU with its features; ``"cuda"`` -> the local GPU (error when none)."""
    if isinstance(spec, tvm.target.Target):
        return spec
    if isinstance(spec, dict):
        return tvm.target.Target(spec)
    if spec in ("llvm", "cpu"):
        return tvm.target.Target({"kind": "llvm", "mcpu": tvm.target.codegen.llvm_get_system_cpu()})
    if spec in ("cuda", "gpu"):
        if not tvm.cuda(0).exist:
            raise RuntimeError("TVM target 'cuda' requested but no CUDA GPU is available "
                               "(ember.cuda.is_available() is False); use target='llvm'")
        return tvm.target.Target.from_device(tvm.cuda(0)) if hasattr(tvm.target.Target, "from_device") \
            else tvm.target.Target("cuda")
    return tvm.target.Target(spec)


def device_for(target: tvm.target.Target):
    return tvm.cuda(0) if target.kind.name == "cuda" else tvm.cpu(0)


def is_gpu(target: tvm.target.Target) -> bool:
    return target.kind.name in ("cuda", "rocm", "metal", "vulkan", "opencl")


def cpu_pipeline(target: tvm.target.Target, options: dict):
    """TVM's CPU pipeline with ember's schedules applied to every fused TIR kernel."""
    from tvm.relax.backend.cpu_generic import pipeline as cpu
    from .schedule import parallel_threshold, schedule_module

    @tvm.transform.module_pass(opt_level=0, name="ember_cpu_pipeline")
    def _pipeline(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        with target:
            mod = tvm.transform.Sequential(cpu.library_dispatch_passes(target) + legalize_passes())(mod)
            if options.get("schedule", True):
                mod = schedule_module(mod, target, parallel=parallel_threshold(options.get("parallel", False)))
            if options.get("inplace_writes"):
                from .inplace import make_inplace
                mod = make_inplace(mod, [tuple(p) for p in options["inplace_writes"]])
            mod = tvm.transform.Sequential(cpu.dataflow_lower_passes(target)
                                           + cpu.finalize_passes(target))(mod)
        return mod
    return _pipeline


def gpu_pipeline(target: tvm.target.Target):
    """TVM's CUDA pipeline with ember's legalization (no FoldConstant, see ``legalize_passes``) and DLight
    schedules applied kernel by kernel: a rule that fails on one kernel (DLight's reduction rules reject
    some of ember's TE reductions) falls back to DLight's generic GPU schedule for that kernel only."""
    from tvm.relax.backend.cuda import pipeline as gpu
    from tvm.s_tir import dlight as dl

    def schedule_each(mod: tvm.IRModule) -> tvm.IRModule:
        rules = [(dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.Reduction(), dl.gpu.GeneralReduction(), dl.gpu.Fallback()),
                 (dl.gpu.Fallback(),)]
        out = mod
        for gv, func in mod.functions.items():
            if not isinstance(func, tir.PrimFunc):
                continue
            for rule in rules:
                try:
                    single = dl.ApplyDefaultSchedule(*rule)(tvm.IRModule({gv: func}))
                    out.update_func(gv, single[gv])
                    break
                except Exception:  # noqa: BLE001 - try the next, more generic rule
                    continue
        return out

    @tvm.transform.module_pass(opt_level=0, name="ember_gpu_pipeline")
    def _pipeline(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        with target:
            mod = tvm.transform.Sequential(gpu.library_dispatch_passes(target) + legalize_passes())(mod)
            mod = schedule_each(mod)
            return tvm.transform.Sequential(gpu.dataflow_lower_passes(target) + gpu.finalize_passes(target))(mod)
    return _pipeline


def legalize_passes() -> list:
    """TVM's CPU legalization without FoldConstant: ember folds constants itself (``ember.passes.fold``),
    and TVM's folding turns fills inside ember's Primitive functions into tensor constants, which
    FuseTIR rejects."""
    T = relax.transform
    return [T.LegalizeOps(), T.AnnotateTIROpPattern(), T.FuseOps(), T.FuseTIR(), T.DeadCodeElimination()]


def scheduled_module(mod: tvm.IRModule, target: tvm.target.Target, options: dict | None = None) -> tvm.IRModule:
    """The module after legalization, fusion and ember's schedules (what ``--show tir`` prints)."""
    options = options or {}
    with target:
        mod = tvm.transform.Sequential(legalize_passes())(mod)
        if options.get("schedule", True) and not is_gpu(target):
            from .schedule import parallel_threshold, schedule_module
            mod = schedule_module(mod, target, parallel=parallel_threshold(options.get("parallel", False)))
    return mod


def build(mod: tvm.IRModule, target: tvm.target.Target, options: dict | None = None) -> Any:
    """Compile a Relax module into a VM executable."""
    options = options or {}
    if is_gpu(target):
        return tvm.compile(mod, target=target, relax_pipeline=gpu_pipeline(target))
    try:
        return tvm.compile(mod, target=target, relax_pipeline=cpu_pipeline(target, options))
    except Exception:  # noqa: BLE001 - a scheduled kernel code generation rejected: build unscheduled
        if not options.get("schedule", True):
            raise
        warnings.warn("ember TVM backend: a scheduled kernel failed to build; rebuilding without schedules",
                      RuntimeWarning, stacklevel=2)
        return tvm.compile(mod, target=target, relax_pipeline=cpu_pipeline(target, dict(options, schedule=False)))
