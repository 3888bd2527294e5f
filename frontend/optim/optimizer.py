"""``Optimizer``: parameter groups, per-parameter state, and their (de)serialization.

Updates are written with ember tensor ops under ``no_grad`` (never numpy on
``p._data``) so that ``ember.compile`` can trace a whole training step, optimizer
included. Hyperparameters are read from ``param_groups`` at every step, so an LR
scheduler's change takes effect and a compiled step may feed ``lr`` as a 0-d tensor.
"""

from __future__ import annotations

import copy
from collections import OrderedDict, defaultdict
from itertools import chain
from typing import Any, Callable, Iterable

from .. import _state
from .._tensor import Tensor

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Singleton marking a hyperparameter without a default (``lr`` of SGD in old PyTorch)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _get_value(x):
    """A step count or hyperparameter as a Python number in eager mode, the tensor itself when traced."""
    if isinstance(x, Tensor):
        # traced: float64, so bias corrections round like the Python floats of eager mode
        return x.double() if x._value is not None else x.item()
    return x


def _step_tensor(value: float = 0.0) -> Tensor:
    """PyTorch keeps ``state['step']`` as a 0-d float32 tensor; so do we (traceable state)."""
    from .._creation import tensor
    from ember.ir.types import float32
    return tensor(value, dtype=float32)


class _StateDict(defaultdict):
    """``optimizer.state``: keyed by parameter identity (tensors hash by id)."""


class Optimizer:
    """Base class of all optimizers (``torch.optim.Optimizer``)."""

    def __init__(self, params: Iterable, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: defaultdict = _StateDict(dict)
        self.param_groups: list[dict] = []
        self._optimizer_step_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict = OrderedDict()
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {params.type()}")
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ------------------------------------------------------------- groups
    def add_param_group(self, param_group: dict) -> None:
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs. Please use a list instead.")
        else:
            param_group["params"] = list(params)
        for p in param_group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        ids = [id(p) for p in param_group["params"]]
        if len(ids) != len(set(ids)):
            import warnings
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error; see github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if seen & set(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    g = p.grad
                    if g._node is not None:
                        g = g.detach()
                        p.grad = g
                    g.requires_grad = False
                    g.zero_()

    # ------------------------------------------------------------- step
    def step(self, closure: Callable | None = None):
        raise NotImplementedError

    def _run_closure(self, closure):
        if closure is None:
            return None
        from ..autograd import enable_grad
        with enable_grad():
            return closure()

    def _step_with_hooks(self, closure, update) -> Any:
        """Run pre-hooks, the closure, ``update(group)`` per group under no_grad, then post-hooks."""
        for hook in list(self._optimizer_step_pre_hooks.values()):
            res = hook(self, (), {})
            if res is not None:
                raise RuntimeError("optimizer step pre-hooks that modify arguments are not supported")
        loss = self._run_closure(closure)
        prev = _state.grad_enabled
        _state.grad_enabled = False
        try:
            for group in self.param_groups:
                update(group)
        finally:
            _state.grad_enabled = prev
        for hook in list(self._optimizer_step_post_hooks.values()):
            hook(self, (), {})
        return loss

    def register_step_pre_hook(self, hook):
        return _register(self._optimizer_step_pre_hooks, hook)

    def register_step_post_hook(self, hook):
        return _register(self._optimizer_step_post_hooks, hook)

    # ------------------------------------------------------------- state dict
    def state_dict(self) -> dict:
        """``{'state': {index: {...}}, 'param_groups': [{..., 'params': [index, ...]}]}`` as PyTorch."""
        mapping: dict[int, int] = {}
        start = 0

        def pack_group(group):
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                mapping.setdefault(id(p), i)
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {mapping[id(k)]: v for k, v in self.state.items() if id(k) in mapping}
        return {"state": packed_state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = {"state": state_dict["state"], "param_groups": state_dict["param_groups"]}
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        param_lens = [len(g["params"]) for g in groups]
        saved_lens = [len(g["params"]) for g in saved_groups]
        if any(p != s for p, s in zip(param_lens, saved_lens)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                             "optimizer's group")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        state: defaultdict = _StateDict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = _cast_state(param, v)
            else:
                state[k] = v
        new_groups = []
        for group, saved in zip(groups, saved_groups):
            saved["params"] = group["params"]
            for key, value in group.items():  # keys an older (or torch-written) state dict lacks
                saved.setdefault(key, value)
            new_groups.append(saved)
        self.state = state
        self.param_groups = new_groups

    # ------------------------------------------------------------- misc
    def __getstate__(self) -> dict:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_optimizer_step_pre_hooks", OrderedDict())
        self.__dict__.setdefault("_optimizer_step_post_hooks", OrderedDict())

    def __repr__(self) -> str:
        lines = [self.__class__.__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _cast_state(param: Tensor, value, key=None):
    """Copy loaded state onto ``param``'s dtype (except ``step``), as PyTorch does on load."""
    if isinstance(value, Tensor):
        if key == "step":
            return value.clone()
        if value.dtype.is_floating_point and param.dtype.is_floating_point:
            return value.to(param.dtype).clone()
        return value.clone()
    if isinstance(value, dict):
        return {k: _cast_state(param, v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_state(param, v, key) for v in value)
    return copy.deepcopy(value)


class _Handle:
    _next_id = 0

    def __init__(self, table: OrderedDict) -> None:
        self.table = table
        self.id = _Handle._next_id
        _Handle._next_id += 1

    def remove(self) -> None:
        self.table.pop(self.id, None)


def _register(table: OrderedDict, hook) -> _Handle:
    handle = _Handle(table)
    table[handle.id] = hook
    return handle

