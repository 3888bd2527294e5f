"""ember.utils.data: datasets, samplers, collation, and the (multi-process) DataLoader."""

import collections
import os
import time

import numpy as np
import pytest

import ember
from ember.utils.data import (
    BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler, SequentialSampler, Subset,
    SubsetRandomSampler, TensorDataset, WeightedRandomSampler, default_collate, get_worker_info, random_split,
)


class Squares(Dataset):
    def __init__(self, n=20):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": np.full(3, i, np.float32), "y": i * i, "name": f"s{i}"}


class WhoAmI(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return ember.tensor([i, -1 if info is None else info.id, -1 if info is None else info.num_workers])


class Failing(Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        if i == 5:
            raise ValueError(f"bad sample {i}")
        return i


class Dying(Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        if i == 3:
            os._exit(3)
        return i


class Slow(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        time.sleep(5)
        return i


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        ids = range(self.n)
        if info is not None:
            ids = range(info.id, self.n, info.num_workers)
        return iter(ids)


def _flatten(loader):
    return [int(v) for b in loader for v in (b if isinstance(b, ember.Tensor) else b[0]).reshape(-1).tolist()]


# ------------------------------------------------------------------ datasets
def test_tensor_subset_concat_datasets():
    x, y = ember.arange(10.0).reshape(5, 2), ember.arange(5)
    ds = TensorDataset(x, y)
    assert len(ds) == 5 and ds[2][0].tolist() == [4.0, 5.0] and int(ds[2][1]) == 2
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(x, ember.arange(4))
    sub = Subset(ds, [4, 0])
    assert len(sub) == 2 and int(sub[0][1]) == 4
    cat = ConcatDataset([ds, sub])
    assert len(cat) == 7 and int(cat[5][1]) == 4 and int(cat[-1][1]) == 0
    assert len(ds + sub) == 7


def test_random_split_lengths_and_fractions():
    ds = TensorDataset(ember.arange(10))
    a, b = random_split(ds, [7, 3], generator=ember.Generator().manual_seed(1))
    idx = sorted(a.indices + b.indices)
    assert idx == list(range(10)) and len(a) == 7 and len(b) == 3
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=ember.Generator().manual_seed(1))
    assert [len(p) for p in parts] == [5, 3, 2]
    parts = random_split(TensorDataset(ember.arange(11)), [0.5, 0.5])
    assert [len(p) for p in parts] == [6, 5]
    again = random_split(ds, [7, 3], generator=ember.Generator().manual_seed(1))
    assert again[0].indices == a.indices
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(ds, [3, 3])


# ------------------------------------------------------------------ samplers
def test_samplers():
    data = list(range(10))
    assert list(SequentialSampler(data)) == data
    g = ember.Generator().manual_seed(3)
    perm = list(RandomSampler(data, generator=g))
    assert sorted(perm) == data and perm != data
    assert list(RandomSampler(data, generator=ember.Generator().manual_seed(3))) == perm
    with_rep = list(RandomSampler(data, replacement=True, num_samples=50))
    assert len(with_rep) == 50 and all(0 <= i < 10 for i in with_rep)
    assert len(list(RandomSampler(data, num_samples=25))) == 25
    assert sorted(SubsetRandomSampler([3, 7, 9])) == [3, 7, 9]
    w = list(WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 400))
    counts = collections.Counter(w)
    assert set(counts) == {1, 3} and 0.15 < counts[1] / 400 < 0.35
    assert sorted(WeightedRandomSampler([1, 1, 1], 3, replacement=False)) == [0, 1, 2]
    bs = BatchSampler(SequentialSampler(data), 4, drop_last=False)
    assert list(bs) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] and len(bs) == 3
    assert len(BatchSampler(data, 4, drop_last=True)) == 2


# ------------------------------------------------------------------ collation
def test_default_collate_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate
    Point = collections.namedtuple("Point", ["x", "y"])
    batch = [{"t": np.arange(3, dtype=np.float32) + i, "f": 0.5 * i, "i": i, "s": f"n{i}", "np": np.int32(i),
              "tup": (i, 2.0 * i), "pt": Point(i, [i, i + 1])} for i in range(4)]
    ours = default_collate(batch)
    ref = torch_collate(batch)

    def check(a, b):
        if isinstance(b, torch.Tensor):
            assert isinstance(a, ember.Tensor) and a.dtype.name == str(b.dtype).split(".")[-1]
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        elif isinstance(b, dict):
            assert set(a) == set(b)
            for k in b:
                check(a[k], b[k])
        elif isinstance(b, (list, tuple)):
            assert type(a).__name__ == type(b).__name__ and len(a) == len(b)
            for x, y in zip(a, b):
                check(x, y)
        else:
            assert a == b

    check(ours, ref)
    tensors = default_collate([ember.ones(2, 3), ember.zeros(2, 3)])
    assert tensors.shape == (2, 2, 3)
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [1]])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([object(), object()])


# ------------------------------------------------------------------ DataLoader, main process
def test_loader_batches_len_and_drop_last():
    ds = TensorDataset(ember.arange(10.0), ember.arange(10))
    loader = DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(b[1]) for b in batches] == [4, 4, 2]
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    single = list(DataLoader(ds, batch_size=None))
    assert len(single) == 10 and single[3][0].shape == ()
    by_sampler = list(DataLoader(ds, batch_sampler=[[1, 2], [9]]))
    assert [b[1].tolist() for b in by_sampler] == [[1, 2], [9]]
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="persistent_workers"):
        DataLoader(ds, persistent_workers=True)


def test_seeded_shuffle_is_reproducible_and_independent_of_workers():
    ds = TensorDataset(ember.arange(30))
    orders = []
    for workers in (0, 0, 2):
        loader = DataLoader(ds, batch_size=7, shuffle=True, num_workers=workers,
                            generator=ember.Generator().manual_seed(42))
        orders.append(_flatten(loader))
    assert sorted(orders[0]) == list(range(30)) and orders[0] != list(range(30))
    assert orders[0] == orders[1] == orders[2]


# ------------------------------------------------------------------ DataLoader, workers
def test_workers_preserve_order_and_collate_dicts():
    loader = DataLoader(Squares(20), batch_size=3, num_workers=2)
    batches = list(loader)
    assert len(batches) == 7
    assert [int(v) for b in batches for v in b["y"].tolist()] == [i * i for i in range(20)]
    assert batches[0]["x"].shape == (3, 3) and batches[0]["name"] == ["s0", "s1", "s2"]


def test_get_worker_info_and_worker_init_fn(tmp_path):
    assert get_worker_info() is None
    seen = []
    loader = DataLoader(WhoAmI(), batch_size=2, num_workers=2,
                        worker_init_fn=lambda wid: open(tmp_path / f"w{wid}", "w").close())
    for b in loader:
        seen.extend(tuple(r) for r in b.tolist())
    assert [r[0] for r in seen] == list(range(8))
    assert {r[1] for r in seen} == {0, 1} and {r[2] for r in seen} == {2}
    assert sorted(os.listdir(tmp_path)) == ["w0", "w1"]


def test_worker_exception_carries_traceback():
    loader = DataLoader(Failing(), batch_size=2, num_workers=2)
    with pytest.raises(ValueError) as info:
        list(loader)
    msg = str(info.value)
    assert "Caught ValueError in DataLoader worker process" in msg
    assert "bad sample 5" in msg and "Traceback" in msg and "__getitem__" in msg


def test_dead_worker_raises_instead_of_hanging():
    loader = DataLoader(Dying(), batch_size=1, num_workers=2)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="exited unexpectedly"):
        list(loader)
    assert time.monotonic() - start < 30


def test_timeout():
    loader = DataLoader(Slow(), batch_size=1, num_workers=1, timeout=0.5)
    with pytest.raises(RuntimeError, match="timed out after 0.5 seconds"):
        next(iter(loader))


def test_iterable_dataset_with_workers():
    out = sorted(_flatten(DataLoader(Stream(11), batch_size=3, num_workers=2)))
    assert out == list(range(11))
    assert _flatten(DataLoader(Stream(5), batch_size=2)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="IterableDataset"):
        DataLoader(Stream(5), shuffle=True)


def test_persistent_workers_across_epochs():
    loader = DataLoader(Squares(9), batch_size=4, num_workers=2, persistent_workers=True)
    first = [int(v) for b in loader for v in b["y"].tolist()]
    it = iter(loader)
    pids = [w.pid for w in it._workers]
    second = [int(v) for b in it for v in b["y"].tolist()]
    assert first == second == [i * i for i in range(9)]
    assert [w.pid for w in iter(loader)._workers] == pids
    iter(loader)._shutdown_workers()
