"""Save and load a graph with its weights in one file.

The file is a zip archive (``.eir`` by convention) holding:

- ``graph.eir`` — the IR text form (what ``str(graph)`` prints), so ``unzip -p f.eir graph.eir`` shows it;
- ``constants/<sha1>.npy`` — the data of every constant the text summarizes by digest;
- ``weights/<i>.npy`` plus ``weights.json`` (input name -> entry) — values for graph inputs
  (parameters, buffers, state), optional.

``load`` also accepts a plain text file with just the IR (constants then come back as
``MissingConstant`` placeholders and there are no weights).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Optional, Union

import numpy as np

from .graph import Graph
from .parser import parse
from .printer import print_graph

FORMAT_VERSION = 1
PathLike = Union[str, "os.PathLike[str]"]


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _npy_load(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def save(graph: Graph, path: PathLike, weights: Optional[dict] = None) -> None:
    """Write ``graph`` (and ``weights``: input name -> array) to ``path``."""
    from .testing import collect_constants
    weights = dict(weights or {})
    known = {v.name for v in graph.inputs}
    unknown = sorted(set(weights) - known)
    if unknown:
        raise KeyError(f"weights for names that are not inputs of graph {graph.name}: {unknown}")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("graph.eir", print_graph(graph) + "\n")
        for digest, arr in collect_constants(graph).items():
            zf.writestr(f"constants/{digest}.npy", _npy_bytes(arr))
        index = {}
        for i, (name, arr) in enumerate(weights.items()):
            index[name] = f"weights/{i}.npy"
            zf.writestr(index[name], _npy_bytes(np.asarray(arr)))
        zf.writestr("weights.json", json.dumps({"format": FORMAT_VERSION, "weights": index}))


def load(path: PathLike) -> tuple[Graph, dict]:
    """Read a file written by ``save`` (or a plain IR text file): ``(graph, weights)``."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if not zipfile.is_zipfile(path):
        with open(path, encoding="utf-8") as f:
            return parse(f.read()), {}
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        if "graph.eir" not in names:
            raise ValueError(f"{path} is a zip file but not a saved ember graph (no graph.eir inside)")
        constants = {}
        for n in names:
            if n.startswith("constants/") and n.endswith(".npy"):
                constants[n[len("constants/"):-4]] = _npy_load(zf.read(n))
        graph = parse(zf.read("graph.eir").decode("utf-8"), constants=constants)
        weights = {}
        if "weights.json" in names:
            index = json.loads(zf.read("weights.json"))["weights"]
            for name, entry in index.items():
                weights[name] = _npy_load(zf.read(entry))
    return graph, weights


def graph_to_json(graph: Graph) -> dict:
    """A JSON-able description of ``graph`` (for tools; the text form is the exact one)."""
    from .printer import fmt_attr, fmt_provenance, fmt_type, printed_meta

    def node(n) -> dict:
        d = {"name": n.output.name, "op": n.op, "inputs": [v.name for v in n.inputs],
             "type": fmt_type(n.output.type), "attrs": {k: fmt_attr(v) for k, v in n.attrs.items()}}
        if n.provenance.module or n.provenance.file:
            d["provenance"] = {"module": n.provenance.module, "file": n.provenance.file, "line": n.provenance.line,
                               "text": fmt_provenance(n.provenance)}
        if n.subgraph is not None:
            d["body"] = graph_to_json(n.subgraph)
        return d

    return {
        "name": graph.name,
        "inputs": [{"name": v.name, "type": fmt_type(v.type), "dtype": v.type.dtype.name,
                    "shape": list(v.type.shape), "role": graph.input_roles.get(v.name, "input")}
                   for v in graph.inputs],
        "nodes": [node(n) for n in graph.nodes],
        "outputs": [{"name": v.name, "type": fmt_type(v.type)} for v in graph.outputs],
        "meta": _jsonable(printed_meta(graph)),
    }


def _jsonable(v):
    """Meta values as JSON: tuples become lists, dtypes and other objects their text form."""
    from .printer import fmt_attr
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return fmt_attr(v)
