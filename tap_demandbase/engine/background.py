"""The package's background threads: every one starts here, and ``stop()`` ends them.

Daemon threads, not ThreadPoolExecutor workers: a run that fails or is stopped by a signal must
exit at once, not wait at interpreter exit for a job poll or a download it no longer needs. One
owner, so that the tap's SIGTERM path can end them: long-lived loops see their wait end, pools
refuse new work and their idle workers exit, and no new thread starts. Work refused is a Future
failed with ``BackgroundStoppedError``, not an exception where it is handed over (the handover
may be in a ``finally`` block the exit runs through). Work already running in a one-off thread
is not waited for: the engine's clock ends its waits, and as a daemon it ends with the process.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
import typing as t
import weakref
from concurrent.futures import Future

if t.TYPE_CHECKING:
    from collections.abc import Callable

T = t.TypeVar("T")

#: How long ``stop()`` waits, in all, for loops and idle pool workers to end.
STOP_SECONDS = 1.0


class BackgroundStoppedError(RuntimeError):
    """Work handed to the background after ``stop()``: the process is ending."""


_threads: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_loops: weakref.WeakSet[Loop] = weakref.WeakSet()
_pools: weakref.WeakSet[DaemonPool] = weakref.WeakSet()
_stopped = threading.Event()


def run_in_background(name: str, work: Callable[[], T]) -> Future[T]:
    """Start ``work`` in a daemon thread, in a copy of the caller's context (the stream its
    calls count against); return the Future of its result (or exception).
    """
    future: Future[T] = Future()
    context = contextvars.copy_context()
    if _start(name, lambda: context.run(_settle, future, work)) is None:
        _refuse(future, name)
    return future


def start_thread(name: str, loop: Callable[[Callable[[float], bool]], None]) -> Loop:
    """Start a long-lived loop in a daemon thread. It is given ``wait(seconds)``, which returns
    True (stop looping) once the loop is stopped, by its ``Loop.stop()`` or by ``stop()``.
    """
    return Loop(name, loop)


class Loop:
    """A long-lived loop's daemon thread, and the event that ends its waits."""

    def __init__(self, name: str, loop: Callable[[Callable[[float], bool]], None]) -> None:
        self._ending = threading.Event()
        _loops.add(self)
        #: The loop's thread (None: the background was stopped, the loop never ran).
        self.thread = _start(name, lambda: loop(self._ending.wait))

    def stop(self, timeout: float | None = None) -> None:
        """End the loop's waits and wait for the loop to return (at most ``timeout`` s)."""
        self._ending.set()
        if self.thread is not None and timeout != 0:
            self.thread.join(timeout)


class DaemonPool:
    """``size`` daemon threads that run the work submitted to them, started on first use."""

    def __init__(self, size: int, *, name: str = "pool") -> None:
        self.size = size
        self.name = name
        self._tasks: queue.SimpleQueue[tuple[Future[t.Any], Callable[[], t.Any]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        #: The worker threads, once started.
        self.workers: list[threading.Thread] = []
        self._stopped = False
        _pools.add(self)

    def submit(self, work: Callable[[], T]) -> Future[T]:
        """Queue ``work``; return the Future of its result (or exception)."""
        future: Future[T] = Future()
        if self._stopped or not self._started():
            _refuse(future, self.name)
        else:
            context = contextvars.copy_context()
            self._tasks.put((future, lambda: context.run(work)))
        return future

    def _started(self) -> bool:
        """Start the workers unless they run; return whether they do."""
        with self._lock:
            if not self.workers:
                started = [_start(f"{self.name}-{n}", self._serve) for n in range(self.size)]
                self.workers = [thread for thread in started if thread is not None]
            return bool(self.workers)

    def stop(self) -> None:
        """Refuse new work, cancel what is queued, and have each worker exit once idle.

        Takes no lock (it runs in a signal handler, perhaps while ``submit`` holds one).
        """
        self._stopped = True
        while True:
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                break
            if task is not None:
                task[0].cancel()
        for _ in self.workers:
            self._tasks.put(None)

    def _serve(self) -> None:
        while (task := self._tasks.get()) is not None:
            _settle(*task)
            del task  # a finished chunk is not kept alive by an idle worker


def threads() -> list[threading.Thread]:
    """Return the threads started here that are still running."""
    return [thread for thread in list(_threads) if thread.is_alive()]


def stop(timeout: float = STOP_SECONDS) -> None:
    """End the background: loops' waits end, pools refuse new work and their idle workers exit,
    and no new thread starts. Waits up to ``timeout`` seconds for the loops and pool workers.
    """
    _stopped.set()
    loops, pools = list(_loops), list(_pools)
    for loop in loops:
        loop.stop(timeout=0)
    for pool in pools:
        pool.stop()
    deadline = time.monotonic() + timeout
    ending = [loop.thread for loop in loops] + [w for pool in pools for w in pool.workers]
    for thread in ending:
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


def _start(name: str, target: Callable[[], None]) -> threading.Thread | None:
    """Start a daemon thread known to this module; None once the background is stopped."""
    if _stopped.is_set():
        return None
    thread = threading.Thread(target=target, name=name, daemon=True)
    _threads.add(thread)
    thread.start()
    return thread


def _settle(future: Future[T], work: Callable[[], T]) -> None:
    """Run ``work`` and hand its outcome to ``future`` (nothing if it was cancelled meanwhile)."""
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(work())
    except BaseException as exc:  # handed to whoever reads the future
        future.set_exception(exc)


def _refuse(future: Future[t.Any], name: str) -> None:
    future.set_exception(BackgroundStoppedError(f"{name}: the background is stopped"))
