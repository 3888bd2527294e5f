"""RNN, LSTM and GRU with PyTorch's parameters (``weight_ih_l0``, ``bias_hh_l1_reverse``, gate order),
initialization, shapes and options (``num_layers``, ``batch_first``, ``bidirectional``, ``dropout``
between layers). The recurrence runs step by step on ember's ops, so autograd, tracing (unrolled over the
sequence) and export cover it."""

from __future__ import annotations

import math

from ... import _creation as C
from ... import _ops as O
from ..._tensor import Tensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class RNNBase(Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, dtype=None) -> None:
        super().__init__()
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"hidden_size must be a positive integer, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             "element being zeroed")
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        gates = _GATES[mode] * hidden_size
        directions = 2 if bidirectional else 1
        self._names = []
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * directions
            for d in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                names = [f"weight_ih{suffix}", f"weight_hh{suffix}"]
                setattr(self, names[0], Parameter(C.empty((gates, layer_in), dtype=dtype)))
                setattr(self, names[1], Parameter(C.empty((gates, hidden_size), dtype=dtype)))
                if bias:
                    names += [f"bias_ih{suffix}", f"bias_hh{suffix}"]
                    setattr(self, names[2], Parameter(C.empty(gates, dtype=dtype)))
                    setattr(self, names[3], Parameter(C.empty(gates, dtype=dtype)))
                self._names.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _cell(self, x: Tensor, state, w_ih, w_hh, b_ih, b_hh):
        raise NotImplementedError

    def _initial(self, batch: int, x: Tensor, hx):
        directions = 2 if self.bidirectional else 1
        shape = (self.num_layers * directions, batch, self.hidden_size)
        if hx is None:
            zeros = C.zeros(shape, dtype=x.dtype)
            return (zeros, C.zeros(shape, dtype=x.dtype)) if self.mode == "LSTM" else zeros
        return hx

    def forward(self, input: Tensor, hx=None):
        unbatched = input.ndim == 2
        if input.ndim not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.ndim}D instead")
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)
        if unbatched and hx is not None:
            hx = tuple(h.unsqueeze(1) for h in hx) if self.mode == "LSTM" else hx.unsqueeze(1)
        seq, batch = x.shape[0], x.shape[1]
        if x.shape[2] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {x.shape[2]}")
        state0 = self._initial(batch, x, hx)
        directions = 2 if self.bidirectional else 1
        finals_h, finals_c = [], []
        layer_input = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(directions):
                k = layer * directions + d
                params = [getattr(self, n) for n in self._names[k]] + ([None, None] if not self.bias else [])
                state = (state0[0][k], state0[1][k]) if self.mode == "LSTM" else state0[k]
                steps = range(seq - 1, -1, -1) if d else range(seq)
                hs = [None] * seq
                for t in steps:
                    state = self._cell(layer_input[t], state, *params)
                    hs[t] = state[0] if self.mode == "LSTM" else state
                outs.append(O.stack(hs, 0))
                if self.mode == "LSTM":
                    finals_h.append(state[0])
                    finals_c.append(state[1])
                else:
                    finals_h.append(state)
            layer_input = outs[0] if directions == 1 else O.cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        out = layer_input
        h_n = O.stack(finals_h, 0)
        hidden = (h_n, O.stack(finals_c, 0)) if self.mode == "LSTM" else h_n
        if unbatched:
            out = out.squeeze(1)
            hidden = tuple(h.squeeze(1) for h in hidden) if self.mode == "LSTM" else hidden.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, hidden

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


def _affine(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    return F.linear(x, w, b)


class RNN(RNNBase):
    """``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (``nonlinearity="relu"``: relu)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, dtype)

    def _cell(self, x, h, w_ih, w_hh, b_ih, b_hh):
        pre = O.add(_affine(x, w_ih, b_ih), _affine(h, w_hh, b_hh))
        return O.tanh(pre) if self.mode == "RNN_TANH" else F.relu(pre)


class LSTM(RNNBase):
    """Gates i, f, g, o (PyTorch's order); returns ``output, (h_n, c_n)``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None) -> None:
        if proj_size:
            raise NotImplementedError("LSTM: proj_size is not supported")
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype)

    def _cell(self, x, state, w_ih, w_hh, b_ih, b_hh):
        h, c = state
        gates = O.add(_affine(x, w_ih, b_ih), _affine(h, w_hh, b_hh))
        i, f, g, o = gates.chunk(4, dim=-1)
        c = O.add(O.mul(O.sigmoid(f), c), O.mul(O.sigmoid(i), O.tanh(g)))
        return O.mul(O.sigmoid(o), O.tanh(c)), c


class GRU(RNNBase):
    """Gates r, z, n (PyTorch's order): ``n = tanh(x W_in + b_in + r * (h W_hn + b_hn))``,
    ``h' = (1 - z) * n + z * h``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype)

    def _cell(self, x, h, w_ih, w_hh, b_ih, b_hh):
        xr, xz, xn = _affine(x, w_ih, b_ih).chunk(3, dim=-1)
        hr, hz, hn = _affine(h, w_hh, b_hh).chunk(3, dim=-1)
        r = O.sigmoid(O.add(xr, hr))
        z = O.sigmoid(O.add(xz, hz))
        n = O.tanh(O.add(xn, O.mul(r, hn)))
        return O.add(O.mul(O.sub(1.0, z), n), O.mul(z, h))
