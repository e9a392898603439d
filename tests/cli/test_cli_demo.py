"""``ccrm-async demo``, what ``make demo`` runs: no account, one command."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from _cli_helpers import assert_clean, cli_env, run_cli


async def test_demo_pulls_a_month_into_demo_sqlite(tmp_path: Path) -> None:
    env = cli_env()
    del env["CCRM_TOKEN"]  # no account, no key
    (tmp_path / "demo.sqlite").write_bytes(b"an earlier run's file")
    result = await run_cli("demo", env=env, cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert_clean(result)
    out = result.stdout
    assert "done: 20000 calls, " in out and "0 suspected misses" in out
    assert "31 of 31 windows into demo.sqlite" in out
    assert "demo.sqlite holds 20000 calls and " in out
    assert "-> 200: " in out and "-> 404: " in out  # the Thulium lookup step
    db = sqlite3.connect(tmp_path / "demo.sqlite")
    try:
        (calls,) = db.execute("SELECT COUNT(*) FROM calls").fetchone()
        (windows,) = db.execute("SELECT COUNT(*) FROM pull_windows").fetchone()
    finally:
        db.close()
    assert (calls, windows) == (20000, 31)
    assert sorted(os.listdir(tmp_path)) == ["demo.sqlite"]  # nothing else left behind
