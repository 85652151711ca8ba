"""Where sweep tasks run: a local process pool or a Dask distributed cluster.

A backend takes `SweepTask`s (or any small picklable task with a ``key``, with the
function that runs it: the sites of a replication, `twin.experiments.sites`) and yields
each with its outcome (a `TaskOutcome`, or the exception the task raised) as soon as it
finishes, in whatever order they finish; the driver puts results in order afterwards.
At most a few tasks per worker are queued at a time, so a sweep of any size needs
little memory in the driver or the scheduler.

A backend is a context manager: leaving the ``with`` block releases its workers, and
leaving it on an exception (Ctrl-C) abandons the tasks still queued or running.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, Self

from twin.experiments.sweep import SweepAborted, TaskOutcome, run_task

Result = TaskOutcome | BaseException


class Backend(Protocol):
    """Runs tasks somewhere and yields each with its outcome as soon as it finishes."""

    name: str
    workers: int

    def run(
        self, tasks: Iterable[Any], work: Callable[[Any], Any] = run_task
    ) -> Iterator[tuple[Any, Any]]:
        """Run ``work(task)`` for each task (default: a sweep's `run_task`)."""
        ...

    def close(self, abandon: bool = False) -> None:
        """Release the workers; ``abandon`` drops queued tasks and those in flight."""

    def __enter__(self) -> Self: ...

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None: ...


class _Closing:
    """``with backend:`` closes it, abandoning its tasks when the block raised."""

    def close(self, abandon: bool = False) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self.close(abandon=kind is not None)


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def _init_pool_worker(parent: int) -> None:
    """A pool worker leaves Ctrl-C to the driver and exits if the driver dies (even by SIGKILL)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


class PoolBackend(_Closing):
    """A local ``ProcessPoolExecutor`` (spawned processes) with a bounded queue of tasks."""

    name = "pool"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_pool_worker,
            initargs=(os.getpid(),),
        )

    def run(
        self, tasks: Iterable[Any], work: Callable[[Any], Any] = run_task
    ) -> Iterator[tuple[Any, Any]]:
        todo = iter(tasks)
        window = 2 * self.workers
        pending: dict[Future[Any], Any] = {}

        def top_up() -> None:
            while len(pending) < window:
                task = next(todo, None)
                if task is None:
                    return
                pending[self._executor.submit(work, task)] = task

        try:
            top_up()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    task = pending.pop(future)
                    error = future.exception()
                    if isinstance(error, BrokenProcessPool):
                        raise error
                    yield task, (error if error is not None else future.result())
                top_up()
        except BrokenProcessPool:
            raise SweepAborted(
                "a worker process died abruptly (out of memory? killed?); the pool cannot go on"
            ) from None

    def close(self, abandon: bool = False) -> None:
        if not abandon:
            self._executor.shutdown(wait=True)
            return
        processes = list((getattr(self._executor, "_processes", None) or {}).values())
        self._executor.shutdown(wait=False, cancel_futures=True)
        # Before Python 3.14 the executor has no public way to stop busy workers.
        for process in processes:
            process.terminate()


class DaskBackend(_Closing):
    """A Dask distributed cluster: ``local`` starts a `LocalCluster` on 127.0.0.1.

    Dask does the scheduling, and re-runs the tasks of a worker that was lost.
    """

    name = "dask"

    def __init__(self, address: str, workers: int | None = None) -> None:
        from distributed import Client, LocalCluster  # imported here: only Dask users need it

        self._cluster = None
        if address == "local":
            self._cluster = LocalCluster(
                n_workers=max(1, workers or os.cpu_count() or 1),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self._client = Client(self._cluster)
        else:
            self._client = Client(address, timeout="20s")
        self.address = address
        self.workers = max(1, sum(self._client.nthreads().values()))
        self._pending: dict[str, Any] = {}

    def run(
        self, tasks: Iterable[Any], work: Callable[[Any], Any] = run_task
    ) -> Iterator[tuple[Any, Any]]:
        from distributed import as_completed

        todo = iter(tasks)
        window = max(8, 4 * self.workers)
        owner: dict[str, Any] = {}

        def submit() -> Any:
            task = next(todo, None)
            if task is None:
                return None
            key = f"{work.__name__}-{task.key}-{uuid.uuid4().hex}"  # unique: never shared
            future = self._client.submit(work, task, key=key)
            owner[future.key] = task
            self._pending[future.key] = future
            return future

        queue = as_completed([f for f in (submit() for _ in range(window)) if f is not None])
        for future in queue:
            task = owner.pop(future.key)
            del self._pending[future.key]
            try:
                result: Result = future.result()
            except Exception as error:  # the task raised, or Dask gave up on it (KilledWorker)
                result = error
            future.release()
            yield task, result
            following = submit()
            if following is not None:
                queue.add(following)

    def close(self, abandon: bool = False) -> None:
        if abandon and self._pending:
            self._client.cancel(list(self._pending.values()))
        self._pending.clear()
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_backend(dask: str | None = None, workers: int | None = None) -> Backend:
    """A Dask backend for ``dask`` (``local`` or ``tcp://host:port``), else a local pool."""
    if dask:
        return DaskBackend(dask, workers)
    return PoolBackend(workers)
