"""``ember.onnx.load``: an ONNX model as an ``nn.Module``.

The importer (``ember.runtime.onnx.importer``) turns the model into an ember
graph whose floating-point initializers are ``param`` inputs. ``OnnxModule``
holds those as ``nn.Parameter``s and its ``forward`` replays the graph's
primitives on tensors through ember's single dispatch point, so the module runs
eagerly with autograd (fine-tuning), is traced by ``ember.jit.trace`` /
``ember.compile`` onto any backend, and exports again with ``ember.onnx.export``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ember.ir import PRIMITIVES
from ember.ir.graph import ROLE_INPUT, Graph
from ember.runtime.onnx.importer import OnnxImportError, import_model

_SYM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


_PART = re.compile(r"^[A-Za-z0-9_]+$")


def _attr_path(name: str) -> list[str]:
    """Module path of an initializer: "fc1.weight" -> ["fc1", "weight"]; odd names are sanitized."""
    parts = name.split(".")
    if all(_PART.match(p) for p in parts) and not parts[-1][0].isdigit():
        return parts
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return [s if s and not s[0].isdigit() else f"p_{s}"]


def _resolve(value: Any, env: dict) -> Any:
    """Replace symbolic dims in attributes by this call's sizes."""
    if isinstance(value, str) and env:
        if value in env:
            return env[value]
        names = _SYM.findall(value)
        if names and all(n in env for n in names):
            if all(isinstance(env[n], int) for n in names):
                return int(eval(value, {"__builtins__": {}}, {n: env[n] for n in names}))  # noqa: S307
            out = value
            for n in sorted(names, key=len, reverse=True):
                out = re.sub(rf"\b{n}\b", str(env[n]), out)
            return out
        return value
    if isinstance(value, tuple):
        return tuple(_resolve(v, env) for v in value)
    if isinstance(value, list):
        return [_resolve(v, env) for v in value]
    return value


def _make_module_class():
    from ember.nn import Module, Parameter

    class OnnxModule(Module):
        """An imported ONNX model; ``forward(*inputs)`` takes the model's graph inputs in order."""

        def __init__(self, graph: Graph, params: dict) -> None:
            super().__init__()
            import ember
            self.graph = graph
            self._param_attr: dict[str, str] = {}  # graph input name -> dotted parameter name
            taken: set = set()
            for v in graph.inputs:
                if v.name not in params:
                    continue
                path = _attr_path(v.name)
                while ".".join(path) in taken:
                    path[-1] += "_"
                owner = self
                for part in path[:-1]:  # "fc1.weight" lives on a submodule fc1, so names survive re-export
                    child = owner._modules.get(part) if hasattr(owner, "_modules") else None
                    if child is None:
                        child = Module()
                        owner.add_module(part, child)
                    owner = child
                owner.register_parameter(path[-1], Parameter(ember.from_numpy(np.array(params[v.name]))))
                dotted = ".".join(path)
                taken.add(dotted)
                self._param_attr[v.name] = dotted
            self.input_names = [v.name for v in graph.inputs if graph.input_roles.get(v.name) == ROLE_INPUT]
            self.output_names = list(graph.meta.get("onnx_output_names", [v.name for v in graph.outputs]))

        def forward(self, *inputs):
            import ember
            if len(inputs) != len(self.input_names):
                raise TypeError(f"{self.graph.name}: forward() takes {len(self.input_names)} inputs "
                                f"({', '.join(self.input_names)}), got {len(inputs)}")
            env: dict = {}
            sizes: dict = {}
            feeds = iter(inputs)
            named = dict(self.named_parameters())
            for v in self.graph.inputs:
                if v.name in self._param_attr:
                    env[v.name] = named[self._param_attr[v.name]]
                    continue
                t = next(feeds)
                if not isinstance(t, ember.Tensor):
                    t = ember.as_tensor(t)
                if len(t.shape) != len(v.shape):
                    raise ValueError(f"input {v.name!r} expects rank {len(v.shape)} ({v.type}), got shape "
                                     f"{list(t.shape)}")
                for d, n in zip(v.shape, t.shape):
                    if isinstance(d, str):
                        sizes.setdefault(d, n)
                    elif d != n:
                        raise ValueError(f"input {v.name!r} expects {v.type}, got shape {list(t.shape)}")
                if t.dtype is not v.dtype:
                    raise TypeError(f"input {v.name!r} expects dtype {v.dtype.name}, got {t.dtype.name}")
                env[v.name] = t
            for node in self.graph.nodes:
                attrs = {k: _resolve(a, sizes) for k, a in node.attrs.items()} if sizes else node.attrs
                env[node.output.name] = PRIMITIVES[node.op](*[env[x.name] for x in node.inputs], **attrs)
            outs = [env[v.name] for v in self.graph.outputs]
            return outs[0] if len(outs) == 1 else tuple(outs)

        def extra_repr(self) -> str:
            return f"inputs={self.input_names}, outputs={self.output_names}, nodes={len(self.graph.nodes)}"

    return OnnxModule


_CLASS = None


def module_class():
    global _CLASS
    if _CLASS is None:
        _CLASS = _make_module_class()
    return _CLASS


def load(path, *, static_inputs: dict | None = None):
    """Import the ONNX model at ``path`` (or bytes / ModelProto) as an ``OnnxModule``."""
    try:
        graph, params = import_model(path, static_inputs=static_inputs)
    except RecursionError:
        raise OnnxImportError("the model is nested too deeply to import") from None
    return module_class()(graph, params)
