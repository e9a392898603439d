"""RELIABILITY 26: SIGTERM with 3 downloads in flight, in a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from _export_fixtures import export_dir, export_root, files_in

# The fixtures imported above, used by name: listed so they count as used.
__all__ = ["export_dir", "export_root"]

HERE = Path(__file__).parent


@pytest.mark.parametrize(("mode", "shutdown_timeout"), [("cancel", 0.5), ("finish", 5.0)])
def test_sigterm_with_downloads_in_flight(
    export_dir: Path, mode: str, shutdown_timeout: float
) -> None:
    child = subprocess.Popen(
        [sys.executable, str(HERE / "_sigterm_child.py"), str(export_dir), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error::ResourceWarning"},
    )
    # A child that never gets ready must not hang the suite: kill it after 30 s.
    watchdog = threading.Timer(30.0, child.kill)
    watchdog.start()
    try:
        assert child.stdout is not None
        ready = json.loads(child.stdout.readline() or "{}")
        watchdog.cancel()
        assert ready.get("ready"), child.stderr.read() if child.stderr else ""
        child.send_signal(signal.SIGTERM)
        # A hang guard, not a measurement (timings: benchmarks/export.py).
        stdout, stderr = child.communicate(timeout=shutdown_timeout + 60)
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, stderr[-2000:]
    report = json.loads(stdout.strip().splitlines()[-1])
    assert "Task was destroyed but it is pending" not in stderr
    assert "Unclosed" not in stderr
    assert stderr == "", stderr[-2000:]
    left = files_in(export_dir)
    assert [name for name in left if name.endswith(".part")] == []
    if mode == "cancel":
        # New connections were refused first, while every download still ran.
        assert report["done_when_refused"] == 0
        assert report["outcomes"] == ["ExportCancelled"] * 3
        assert left == []
    else:
        assert report["outcomes"] == ["ExportResult"] * 3
        assert report["sizes"][0] >= 2 << 20 and len(left) == 3
