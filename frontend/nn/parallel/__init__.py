"""Data parallelism (``nn.DataParallel``) and its scatter/replicate/gather helpers."""

from .data_parallel import DataParallel, data_parallel, gather, parallel_apply, replicate, scatter  # noqa: F401
