"""ember's random number generators (NumPy PCG64 underneath).

One default generator serves eager ops and the graph interpreter alike, so a graph
run draws exactly what eager execution would have drawn.
"""

from __future__ import annotations

import numpy as np


class Generator:
    """``torch.Generator``: a seedable random stream."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._seed = 67280421310721  # PyTorch's default seed
        self._np = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> "Generator":
        seed = int(seed)
        if seed < 0:
            seed &= 0xFFFF_FFFF_FFFF_FFFF
        self._seed = seed
        self._np = np.random.Generator(np.random.PCG64(seed))
        return self

    def seed(self) -> int:
        s = int(np.random.SeedSequence().entropy) & 0xFFFF_FFFF_FFFF_FFFF
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        """The generator state as a uint8 tensor-compatible array."""
        import json
        text = json.dumps([self._seed, self._np.bit_generator.state])
        return np.frombuffer(text.encode(), dtype=np.uint8).copy()

    def set_state(self, state) -> "Generator":
        import json
        arr = state.numpy() if hasattr(state, "numpy") else np.asarray(state)
        self._seed, st = json.loads(arr.astype(np.uint8).tobytes().decode())
        self._np.bit_generator.state = st
        return self

    @property
    def numpy(self) -> np.random.Generator:
        return self._np


default_generator = Generator()


def generator_or_default(gen: Generator | None) -> np.random.Generator:
    return (gen if gen is not None else default_generator)._np
