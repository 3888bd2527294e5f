"""``nn.DataParallel``: split the batch, run replicas, gather the outputs.

With no accelerator (or one) it simply runs the wrapped module, as PyTorch does.
With several devices it scatters inputs along ``dim``, replicates the module,
applies each replica to its chunk and concatenates the outputs on
``output_device``. ember's arrays all live in host memory, so a "replica" shares
the original's parameters (gradients from every chunk accumulate into them, which
is what PyTorch's differentiable broadcast achieves) and replicas run in turn.
"""

from __future__ import annotations

from typing import Any, Sequence

from ... import _ops as O
from ..._tensor import Tensor
from ..modules.module import Module


def _device_index(d: Any) -> int:
    if isinstance(d, int):
        return d
    index = getattr(d, "index", None)
    if index is None and isinstance(d, str):
        index = int(d.split(":")[1]) if ":" in d else 0
    return 0 if index is None else int(index)


def scatter(inputs: Any, target_gpus: Sequence[int], dim: int = 0) -> list:
    """Split tensors along ``dim`` into ``len(target_gpus)`` chunks; other objects are repeated."""
    n = len(target_gpus)

    def scatter_map(obj):
        if isinstance(obj, Tensor):
            return list(O.chunk(obj, n, dim))
        if isinstance(obj, tuple) and len(obj) > 0:
            return [type(obj)(x) if not hasattr(obj, "_fields") else type(obj)(*x)
                    for x in zip(*map(scatter_map, obj))]
        if isinstance(obj, list) and len(obj) > 0:
            return [list(x) for x in zip(*map(scatter_map, obj))]
        if isinstance(obj, dict) and len(obj) > 0:
            return [type(obj)(x) for x in zip(*map(scatter_map, obj.items()))]
        return [obj for _ in range(n)]

    return scatter_map(inputs)


def scatter_kwargs(inputs: tuple, kwargs: dict | None, target_gpus: Sequence[int], dim: int = 0):
    scattered_inputs = scatter(inputs, target_gpus, dim) if inputs else []
    scattered_kwargs = scatter(kwargs, target_gpus, dim) if kwargs else []
    if len(scattered_inputs) < len(scattered_kwargs):
        scattered_inputs.extend(() for _ in range(len(scattered_kwargs) - len(scattered_inputs)))
    elif len(scattered_kwargs) < len(scattered_inputs):
        scattered_kwargs.extend({} for _ in range(len(scattered_inputs) - len(scattered_kwargs)))
    return tuple(scattered_inputs), tuple(scattered_kwargs)


def replicate(network: Module, devices: Sequence[int], detach: bool = False) -> list[Module]:
    """One replica per device; in host memory every replica is the module itself (shared parameters)."""
    return [network for _ in devices]


def parallel_apply(modules: Sequence[Module], inputs: Sequence[Any], kwargs_tup: Sequence[dict] | None = None,
                   devices: Sequence[int] | None = None) -> list:
    if len(modules) != len(inputs):
        raise AssertionError(f"The number of modules {len(modules)} is not equal to the number of inputs "
                             f"{len(inputs)}")
    kwargs_tup = kwargs_tup if kwargs_tup is not None else ({},) * len(modules)
    outputs = []
    for module, inp, kw in zip(modules, inputs, kwargs_tup):
        if not isinstance(inp, (list, tuple)):
            inp = (inp,)
        outputs.append(module(*inp, **kw))
    return outputs


def gather(outputs: Sequence[Any], target_device: Any, dim: int = 0) -> Any:
    """Concatenate per-replica outputs along ``dim`` (recursing into tuples, lists and dicts)."""
    first = outputs[0]
    if isinstance(first, Tensor):
        if first.ndim == 0:
            return O.stack(list(outputs), 0)
        return O.cat(list(outputs), dim)
    if first is None:
        return None
    if isinstance(first, dict):
        return type(first)((k, gather([d[k] for d in outputs], target_device, dim)) for k in first)
    if isinstance(first, (list, tuple)):
        items = [gather(list(x), target_device, dim) for x in zip(*outputs)]
        return type(first)(*items) if hasattr(first, "_fields") else type(first)(items)
    return list(outputs)


class DataParallel(Module):
    def __init__(self, module: Module, device_ids: Sequence[Any] | None = None, output_device: Any = None,
                 dim: int = 0) -> None:
        super().__init__()
        from ... import cuda
        self.module = module
        self.dim = dim
        if not cuda.is_available():
            self.device_ids: list[int] = []
            self.output_device = None
            return
        if device_ids is None:
            device_ids = list(range(cuda.device_count()))
        self.device_ids = [_device_index(d) for d in device_ids]
        self.output_device = _device_index(output_device if output_device is not None else self.device_ids[0])

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if len(self.device_ids) <= 1:
            return self.module(*inputs, **kwargs)
        inputs, module_kwargs = scatter_kwargs(inputs, kwargs, self.device_ids, self.dim)
        if not inputs and not module_kwargs:
            inputs, module_kwargs = ((),), ({},)
        replicas = self.replicate(self.module, self.device_ids[:len(inputs)])
        outputs = self.parallel_apply(replicas, inputs, module_kwargs)
        return self.gather(outputs, self.output_device)

    def replicate(self, module: Module, device_ids: Sequence[int]) -> list[Module]:
        return replicate(module, device_ids, not self.training)

    def scatter(self, inputs, kwargs, device_ids):
        return scatter_kwargs(inputs, kwargs, device_ids, dim=self.dim)

    def parallel_apply(self, replicas, inputs, kwargs):
        return parallel_apply(replicas, inputs, kwargs, self.device_ids[:len(replicas)])

    def gather(self, outputs, output_device):
        return gather(outputs, output_device, dim=self.dim)


def data_parallel(module: Module, inputs: Any, device_ids=None, output_device=None, dim: int = 0,
                  module_kwargs: dict | None = None) -> Any:
    if not isinstance(inputs, tuple):
        inputs = (inputs,) if inputs is not None else ()
    dp = DataParallel(module, device_ids, output_device, dim)
    return dp(*inputs, **(module_kwargs or {}))
