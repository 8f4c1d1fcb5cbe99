"""Every thread the package starts goes through ``engine/background.py``, and ``stop()`` (the
SIGTERM path) ends them: loops' waits end, pools refuse new work, idle workers exit.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.tap import discover, select, tap_config

#: Runs two syncs (RECORD, then BATCH parquet) in one process, noting the first package module
#: on the stack of every thread started; then ``stop()``.
SYNC_SCRIPT = """
import contextlib, io, json, sys, threading, time
config, batch_config, catalog, out = sys.argv[1:]
started = []
original_start = threading.Thread.start

def start(self):
    frame, origin = sys._getframe(1), None
    while frame is not None and origin is None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("tap_demandbase") and not module.startswith("tap_demandbase.sandbox"):
            origin = module
        frame = frame.f_back
    started.append((self, origin))
    original_start(self)

threading.Thread.start = start
from tap_demandbase.engine import background
from tap_demandbase.tap import TapDemandbase

for settings in (config, batch_config):
    stdout = io.TextIOWrapper(io.BytesIO(), write_through=True)
    with contextlib.redirect_stdout(stdout):
        try:
            TapDemandbase.get_singer_command().main(
                args=["--config", settings, "--catalog", catalog], standalone_mode=False
            )
        except SystemExit as exc:
            assert not exc.code, exc.code

ours = [(thread, origin) for thread, origin in started if origin]
def forever(wait):
    while not wait(3600):
        pass

background.start_thread("probe-loop", forever)
alive = {thread.name for thread in background.threads()}
background.stop()
refused = [
    background.run_in_background("after-stop", lambda: None).exception(timeout=1),
    background.DaemonPool(1, name="after").submit(lambda: None).exception(timeout=1),
]
result = {
    "origins": sorted({origin for _, origin in ours}),
    "names": sorted({thread.name for thread, _ in ours}),
    "alive_before_stop": sorted(alive),
    "alive_after_stop": sorted(thread.name for thread in background.threads()),
    "refused": [type(error).__name__ for error in refused],
    "loop_after_stop": background.start_thread("after", lambda wait: None).thread is None,
}
with open(out, "w") as file:
    json.dump(result, file)
"""


def test_a_sync_starts_every_thread_through_the_owner_and_stop_ends_them(sandbox, tmp_path):
    config = tap_config(sandbox, max_concurrent_jobs=2)
    catalog = select(discover(tmp_path, config), {"accounts": None, "people": None})
    paths = {name: tmp_path / f"{name}.json" for name in ("config", "batch", "catalog")}
    paths["config"].write_text(json.dumps(config))
    paths["batch"].write_text(
        json.dumps(
            config
            | {
                "batch_config": {
                    "encoding": {"format": "parquet"},
                    "storage": {"root": f"file://{tmp_path}", "prefix": "batch-"},
                }
            }
        )
    )
    paths["catalog"].write_text(json.dumps(catalog))
    out = tmp_path / "threads.json"
    args = [str(paths["config"]), str(paths["batch"]), str(paths["catalog"]), str(out)]
    done = subprocess.run(
        [sys.executable, "-c", SYNC_SCRIPT, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(out.read_text())

    assert seen["origins"] == ["tap_demandbase.engine.background"]
    for prefix in ("import-polars", "columnar-", "progress-", "download-", "export-job-"):
        assert any(name.startswith(prefix) for name in seen["names"]), (prefix, seen["names"])
    assert "probe-loop" in seen["alive_before_stop"]
    assert any(name.startswith("columnar-") for name in seen["alive_before_stop"])
    assert seen["alive_after_stop"] == []
    assert seen["refused"] == ["BackgroundStoppedError", "BackgroundStoppedError"]
    assert seen["loop_after_stop"] is True
