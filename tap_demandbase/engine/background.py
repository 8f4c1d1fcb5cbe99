"""Work in a daemon thread, its outcome in a Future.

Daemon, not a ThreadPoolExecutor worker: a run that fails or is stopped by a signal must exit at
once, not wait at interpreter exit for a job poll or a download it no longer needs.
"""

from __future__ import annotations

import threading
import typing as t
from concurrent.futures import Future

T = t.TypeVar("T")


def run_in_background(name: str, work: t.Callable[[], T]) -> Future[T]:
    """Start ``work`` in a daemon thread; return the Future of its result (or exception)."""
    future: Future[T] = Future()

    def target() -> None:
        future.set_running_or_notify_cancel()
        try:
            future.set_result(work())
        except BaseException as exc:  # handed to whoever reads the future
            future.set_exception(exc)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future
