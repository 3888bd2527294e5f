"""Shared test fixtures: deterministic seeds and the optional PyTorch oracle."""

import numpy as np
import pytest

import ember


@pytest.fixture(autouse=True)
def _seed():
    ember.manual_seed(0)
    np.random.seed(0)
    yield


def torch_or_skip():
    """PyTorch as a test oracle; the test is skipped cleanly when it is absent."""
    return pytest.importorskip("torch")
