"""Shared test fixtures: deterministic seeds and the optional PyTorch oracle."""

import os

import numpy as np
import pytest

# every captured graph, and every graph verify() sees (the pass manager verifies after each pass), must
# round-trip through the IR text form: print(parse(print(g))) == print(g)
os.environ.setdefault("EMBER_CHECK_IR", "1")
# pytest -n 2 runs two workers on the cores; ONNX Runtime workers spinning for the CPU the other
# test process holds would slow both (results do not depend on it)
os.environ.setdefault("EMBER_ORT_SPIN", "0")

import ember  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    ember.manual_seed(0)
    np.random.seed(0)
    yield


def torch_or_skip():
    """PyTorch as a test oracle; the test is skipped cleanly when it is absent."""
    return pytest.importorskip("torch")
