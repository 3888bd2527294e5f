"""``ember.onnx``: export models to ONNX (``export``) and import ONNX models (``load``).

``export`` follows ``torch.onnx.export``; ``load`` turns an ONNX file into an
``nn.Module`` whose initializers are parameters, so it runs eagerly (and
differentiates), traces, compiles on any backend and exports again.
"""

from ._export import ExportResult, OnnxExportError, TrainingMode, export  # noqa: F401


def load(path, **kwargs):
    """Import an ONNX model (a path, bytes or a ``ModelProto``) as an ``OnnxModule``."""
    from ._load import load as _load
    return _load(path, **kwargs)


def is_in_onnx_export() -> bool:
    return False


__all__ = ["export", "load", "TrainingMode", "ExportResult", "OnnxExportError", "is_in_onnx_export"]
