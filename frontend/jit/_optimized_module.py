"""``ember.compile(module)``: a module, as ``torch.compile``'s ``OptimizedModule``.

PyTorch programs treat a compiled model as the model: ``model = torch.compile(model)`` and then
``SGD(model.parameters())``, ``model.train()``/``model.eval()``, ``model.state_dict()``, the model's own
methods. The wrapper is a ``Module`` whose only child is the original, ``_orig_mod`` (so parameter and
state-dict names read ``_orig_mod.fc1.weight``, as PyTorch's do), whose calls run the compiled function,
and whose other attributes come from the original module. ``stats``, ``graph`` and ``graphs`` are the
compiled function's.
"""

from __future__ import annotations

from typing import Any

from ..nn.modules.module import Module

# attributes of the compiled function a program may read through the module (the original's own
# attributes of the same name win)
_COMPILED_ATTRS = frozenset({"stats", "graph", "graphs", "backend", "dynamic", "options"})


class OptimizedModule(Module):
    """The module ``ember.compile(module)`` returns: calls are compiled, everything else is the module's."""

    def __init__(self, mod: Module, compiled: Any) -> None:
        super().__init__()
        self._orig_mod = mod
        self.__dict__["_compiled"] = compiled  # not a submodule: no parameters of its own

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.__dict__["_compiled"](*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)  # _orig_mod itself
        except AttributeError:
            pass
        d = self.__dict__
        orig, compiled = d["_modules"].get("_orig_mod"), d.get("_compiled")
        if orig is not None and (name in orig.__dict__ or name in orig._parameters or name in orig._buffers
                                 or name in orig._modules):
            return getattr(orig, name)
        if compiled is not None and (name in _COMPILED_ATTRS or (name.startswith("_") and hasattr(compiled, name))):
            return getattr(compiled, name)
        if orig is None:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        return getattr(orig, name)

    def __repr__(self) -> str:
        return f"OptimizedModule(\n  (_orig_mod): {repr(self._orig_mod).replace(chr(10), chr(10) + '  ')}\n)"
