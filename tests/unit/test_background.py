"""Every thread the package starts goes through ``engine/background.py``, and ``stop()`` (the
SIGTERM path) ends them: loops' waits end, pools refuse new work, idle workers exit.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import pytest

from tap_demandbase.engine.background import (
    BackgroundStoppedError,
    DaemonPool,
    run_in_background,
    start_thread,
)


def test_run_in_background_hands_over_the_result_or_the_exception():
    assert run_in_background("probe-ok", lambda: 42).result(timeout=5) == 42

    def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_in_background("probe-fails", fails).result(timeout=5)


def test_a_pool_starts_its_named_workers_on_first_use_and_stop_refuses_new_work():
    pool = DaemonPool(2, name="probe-pool")
    assert not pool.workers
    running, release = threading.Semaphore(0), threading.Event()

    def work() -> bool:
        running.release()
        return release.wait(5)

    busy = [pool.submit(work) for _ in range(2)]
    queued = pool.submit(lambda: "never run")
    assert running.acquire(timeout=5) and running.acquire(timeout=5)
    assert sorted(w.name for w in pool.workers) == ["probe-pool-0", "probe-pool-1"]
    pool.stop()
    with pytest.raises(CancelledError):
        queued.result(timeout=1)
    with pytest.raises(BackgroundStoppedError):
        pool.submit(lambda: None).result(timeout=1)
    release.set()
    assert all(future.result(timeout=5) for future in busy)  # running work still finishes
    for worker in pool.workers:
        worker.join(timeout=5)
        assert not worker.is_alive()


def test_a_loop_runs_until_stopped_and_its_wait_says_so():
    rounds: list[bool] = []

    def loop(wait):
        while not wait(0.001):
            rounds.append(True)

    handle = start_thread("probe-loop", loop)
    deadline = time.monotonic() + 5
    while not rounds and time.monotonic() < deadline:
        time.sleep(0.001)
    handle.stop(timeout=5)
    assert rounds
    assert handle.thread is not None and not handle.thread.is_alive()
