"""The DataLoader worker process: fetch batches for the indices it is sent, report errors with tracebacks."""

from __future__ import annotations

import os
import queue
import random
import sys
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

_worker_info: "WorkerInfo | None" = None


@dataclass(frozen=True)
class WorkerInfo:
    """What ``get_worker_info()`` returns inside a worker process."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


def get_worker_info() -> WorkerInfo | None:
    """Information about the current DataLoader worker; ``None`` in the main process."""
    return _worker_info


def _single_threaded_blas() -> None:
    """One BLAS thread per worker, as PyTorch's workers call ``torch.set_num_threads(1)``: N workers with
    multithreaded BLAS oversubscribe the cores (and slow the main process's training step)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it workers keep BLAS's default
        return
    threadpool_limits(1)


class ExceptionWrapper:
    """An exception caught in a worker, carried to the main process with its formatted traceback."""

    def __init__(self, exc_info, where: str) -> None:
        self.exc_type = exc_info[0]
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where

    def reraise(self):
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = KeyErrorMessage(msg)
        try:
            exc = self.exc_type(msg)
        except Exception:  # noqa: BLE001 - exception types with other constructors
            raise RuntimeError(msg) from None
        raise exc


class KeyErrorMessage(str):
    """KeyError repr()s its message; this keeps the traceback readable."""

    def __repr__(self) -> str:
        return self


@dataclass(frozen=True)
class IterableStop:
    """A worker's iterable dataset is exhausted."""

    worker_id: int


class Fetcher:
    def __init__(self, dataset, auto_collation: bool, collate_fn, drop_last: bool, iterable: bool) -> None:
        self.dataset, self.auto_collation, self.collate_fn = dataset, auto_collation, collate_fn
        self.drop_last, self.iterable = drop_last, iterable
        self.it = iter(dataset) if iterable else None
        self.ended = False

    def reset(self) -> None:
        if self.iterable:
            self.it = iter(self.dataset)
            self.ended = False

    def fetch(self, index):
        if not self.iterable:
            if self.auto_collation:
                getitems = getattr(self.dataset, "__getitems__", None)
                data = getitems(index) if getitems else [self.dataset[i] for i in index]
            else:
                data = self.dataset[index]
            return self.collate_fn(data)
        if self.ended:
            raise StopIteration
        if self.auto_collation:
            data = []
            for _ in index:
                try:
                    data.append(next(self.it))
                except StopIteration:
                    self.ended = True
                    break
            if not data or (self.drop_last and len(data) < len(index)):
                raise StopIteration
        else:
            data = next(self.it)
        return self.collate_fn(data)


def worker_loop(dataset, index_queue, result_queue, done_event, auto_collation, collate_fn, drop_last, base_seed,
                init_fn, worker_id, num_workers, iterable, persistent) -> None:
    """Runs in the child process: ``(epoch, send_idx, index)`` tasks in, ``(epoch, send_idx, batch)`` results out."""
    global _worker_info
    try:
        seed = base_seed + worker_id
        random.seed(seed)
        from ... import manual_seed
        manual_seed(seed)
        np.random.seed(seed % (2 ** 32))
        _single_threaded_blas()
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
        init_error = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = Fetcher(dataset, auto_collation, collate_fn, drop_last, iterable)
        except Exception:  # noqa: BLE001 - reported with the first task
            init_error = ExceptionWrapper(sys.exc_info(), f"in DataLoader worker process {worker_id}")
            fetcher = None
        while True:
            try:
                task = index_queue.get(timeout=5.0)
            except queue.Empty:
                if os.getppid() == 1:  # the main process died: exit instead of lingering
                    return
                continue
            if task is None:
                break
            if task[0] == "reset":
                if fetcher is not None:
                    fetcher.reset()
                continue
            epoch, send_idx, index = task
            if done_event.is_set():
                continue
            if init_error is not None:
                result_queue.put((epoch, send_idx, init_error))
                init_error = None
                continue
            try:
                batch = fetcher.fetch(index)
            except StopIteration:
                batch = IterableStop(worker_id)
            except Exception:  # noqa: BLE001 - forwarded to the main process
                batch = ExceptionWrapper(sys.exc_info(), f"in DataLoader worker process {worker_id}")
            result_queue.put((epoch, send_idx, batch))
            del batch
    except KeyboardInterrupt:
        pass
    if done_event.is_set():
        result_queue.cancel_join_thread()
        result_queue.close()
