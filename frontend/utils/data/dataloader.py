"""``DataLoader``: batches from a dataset, in the main process or in worker processes.

With ``num_workers > 0`` real processes (``fork`` on Linux) fetch and collate batches;
the main process hands out index batches round-robin, keeps ``prefetch_factor`` tasks
per worker in flight, and yields results in sampler order. A worker's exception is
re-raised in the main process with the worker's traceback; a worker that dies raises
a clear ``RuntimeError`` instead of hanging the loop.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import queue
import sys
import time
import warnings
from typing import Callable

from ..._creation import Generator, randint
from . import _worker
from ._collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader", "get_worker_info"]

get_worker_info = _worker.get_worker_info
_POLL_S = 0.2


class _InfiniteConstantSampler(Sampler):
    """For iterable datasets: an endless stream of ``None`` indices."""

    def __iter__(self):
        while True:
            yield None


class DataLoader:
    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn: Callable | None = None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable | None = None, multiprocessing_context=None,
                 generator: Generator | None = None,
                 *, prefetch_factor: int | None = None, persistent_workers: bool = False, pin_memory_device: str = "",
                 in_order: bool = True) -> None:
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing.let num_workers > 0 to "
                             "enable multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle not in (False, None):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                                 f"shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, but got "
                                 f"sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, but "
                                 f"got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and "
                                 "drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
        if sampler is None:
            if self._iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = default_collate if batch_sampler is not None else default_convert
        self.collate_fn = collate_fn
        self._iterator = None
        if pin_memory:
            warnings.warn("'pin_memory' argument is set as true but no accelerator is found, then device pinned "
                          "memory won't be used.", stacklevel=2)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self) -> int:
        if self._iterable:
            length = len(self.dataset)
            if self.batch_size is not None:
                length = length // self.batch_size if self.drop_last else -(-length // self.batch_size)
            return length
        return len(self._index_sampler)

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self.persistent_workers:
            if self._iterator is None:
                self._iterator = _MultiProcessIter(self)
            else:
                self._iterator._reset()
            return self._iterator
        return _MultiProcessIter(self)

    def _base_seed(self) -> int:
        return int(randint(0, 2 ** 62, (1,), generator=self.generator).item())


class _BaseIter:
    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        self._index_sampler = loader._index_sampler
        self._sampler_iter = iter(self._index_sampler)
        self._num_yielded = 0
        # drawn even without workers (as PyTorch) so the sample order does not depend on num_workers
        self._base_seed = loader._base_seed()

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)

    def _next_index(self):
        return next(self._sampler_iter)


class _SingleProcessIter(_BaseIter):
    def __init__(self, loader: DataLoader) -> None:
        super().__init__(loader)
        self._fetcher = _worker.Fetcher(loader.dataset, loader._auto_collation, loader.collate_fn, loader.drop_last,
                                        loader._iterable)

    def __next__(self):
        index = self._next_index()
        data = self._fetcher.fetch(index)  # StopIteration ends the epoch
        self._num_yielded += 1
        return data


class _MultiProcessIter(_BaseIter):
    def __init__(self, loader: DataLoader) -> None:
        self._shutdown = True  # nothing to shut down until workers exist
        super().__init__(loader)
        self._num_workers = loader.num_workers
        self._prefetch = loader.prefetch_factor * loader.num_workers
        self._timeout = loader.timeout
        self._persistent = loader.persistent_workers
        ctx = loader.multiprocessing_context
        if ctx is None:
            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else None)
        elif isinstance(ctx, str):
            ctx = mp.get_context(ctx)
        self._result_queue = ctx.Queue()
        self._done_event = ctx.Event()
        self._index_queues = []
        self._workers = []
        self._shutdown = False
        base_seed = self._base_seed
        for wid in range(self._num_workers):
            iq = ctx.Queue()
            iq.cancel_join_thread()
            w = ctx.Process(target=_worker.worker_loop, daemon=True, args=(
                loader.dataset, iq, self._result_queue, self._done_event, loader._auto_collation, loader.collate_fn,
                loader.drop_last, base_seed, loader.worker_init_fn, wid, self._num_workers, loader._iterable,
                self._persistent))
            w.start()
            self._index_queues.append(iq)
            self._workers.append(w)
        self._epoch = 0
        try:
            self._start_epoch(reset_workers=False)
        except BaseException:
            self._shutdown_workers()
            raise

    # ------------------------------------------------------------- epochs
    def _start_epoch(self, reset_workers: bool) -> None:
        self._send_idx = 0
        self._rcvd_idx = 0
        self._task_info: dict[int, tuple] = {}  # send_idx -> (worker_id,) or (worker_id, data)
        self._tasks_outstanding = 0
        self._worker_active = [True] * self._num_workers
        self._worker_cycle = itertools.cycle(range(self._num_workers))
        if reset_workers:
            for iq in self._index_queues:
                iq.put(("reset",))
        for _ in range(self._prefetch):
            self._try_put_index()

    def _reset(self) -> None:
        self._sampler_iter = iter(self._index_sampler)
        self._num_yielded = 0
        self._epoch += 1
        self._start_epoch(reset_workers=self._loader._iterable)

    def _try_put_index(self) -> None:
        if self._tasks_outstanding >= self._prefetch:
            return
        try:
            index = self._next_index()
        except StopIteration:
            return
        for _ in range(self._num_workers):
            wid = next(self._worker_cycle)
            if self._worker_active[wid]:
                break
        else:
            return
        self._index_queues[wid].put((self._epoch, self._send_idx, index))
        self._task_info[self._send_idx] = (wid,)
        self._tasks_outstanding += 1
        self._send_idx += 1

    # ------------------------------------------------------------- results
    def _get_result(self):
        """One result from the queue, watching for dead workers and the user's timeout."""
        start = time.monotonic()
        while True:
            wait = _POLL_S if self._timeout <= 0 else min(_POLL_S, max(0.0, self._timeout - (time.monotonic() - start)))
            try:
                return self._result_queue.get(timeout=wait)
            except queue.Empty:
                pass
            dead = [w for w in self._workers if not w.is_alive()]
            if dead:
                self._shutdown_workers()
                pids = ", ".join(str(w.pid) for w in dead)
                codes = ", ".join(str(w.exitcode) for w in dead)
                raise RuntimeError(f"DataLoader worker (pid(s) {pids}) exited unexpectedly (exit code(s) {codes}). "
                                   "A worker may have been killed (e.g. out of memory) or crashed in native code.")
            if self._timeout > 0 and time.monotonic() - start >= self._timeout:
                self._shutdown_workers()
                raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")

    def __next__(self):
        while True:
            # skip slots whose worker already reported its iterable dataset exhausted
            while self._rcvd_idx < self._send_idx:
                info = self._task_info.get(self._rcvd_idx)
                if info is not None and (len(info) == 2 or self._worker_active[info[0]]):
                    break
                self._task_info.pop(self._rcvd_idx, None)
                self._rcvd_idx += 1
            else:
                if not self._persistent:
                    self._shutdown_workers()
                raise StopIteration
            info = self._task_info[self._rcvd_idx]
            if len(info) == 2:
                del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
                return self._process(info[1])
            epoch, idx, data = self._get_result()
            if epoch != self._epoch:
                continue  # a leftover from an abandoned epoch of persistent workers
            self._tasks_outstanding -= 1
            if isinstance(data, _worker.IterableStop):
                self._worker_active[data.worker_id] = False
                self._task_info.pop(idx, None)
                self._try_put_index()
                continue
            if idx != self._rcvd_idx:
                self._task_info[idx] += (data,)  # out of order: hold it
                continue
            del self._task_info[idx]
            self._rcvd_idx += 1
            return self._process(data)

    def _process(self, data):
        self._try_put_index()
        if isinstance(data, _worker.ExceptionWrapper):
            self._shutdown_workers()
            data.reraise()
        self._num_yielded += 1
        return data

    # ------------------------------------------------------------- shutdown
    def _shutdown_workers(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        try:
            self._done_event.set()
            for iq in self._index_queues:
                try:
                    iq.put(None)
                except Exception:  # noqa: BLE001
                    pass
            for w in self._workers:
                w.join(timeout=1.0)
                if w.is_alive():
                    w.terminate()
                    w.join(timeout=1.0)
            for iq in self._index_queues:
                iq.cancel_join_thread()
                iq.close()
            self._result_queue.cancel_join_thread()
            self._result_queue.close()
        except Exception:  # noqa: BLE001 - best effort during interpreter shutdown
            pass

    def __del__(self) -> None:
        self._shutdown_workers()

