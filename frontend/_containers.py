"""Named result tuples returned by PyTorch functions (``values``/``indices``)."""

from collections import namedtuple

MinMaxResult = namedtuple("MinMaxResult", ["values", "indices"])
SortResult = namedtuple("SortResult", ["values", "indices"])
TopKResult = namedtuple("TopKResult", ["values", "indices"])
