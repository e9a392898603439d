"""dlt into DuckDB against the command line's SQLite pull: run by hand, not in CI.

    .venv/bin/python benchmarks/dlt_load.py [--records 100000] [--runs 2]

Against one emulator in a separate process on 127.0.0.1 (zero latency, a
month of calls, no notes), in one run:

1. ``ccrm-async calls pull --out calls.sqlite`` (the command line, its own
   process, one-day windows);
2. ``pipeline.run(ccrm_source(...))`` into DuckDB (Arrow tables a page at a
   time), in this process.

Prints each wall time (best of ``--runs``) and the ratio dlt / SQLite — goal:
at most 2x. The machine is noisy (±20 %): compare the figures of one run.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"  # reach nothing outside 127.0.0.1

import dlt
from _common import TOKEN, emulator_process

from ccrm_async.dlt import ccrm_source

FROM, TO = "2024-01-01 00:00:00", "2024-01-31 23:59:59"


def sqlite_pull(url: str, folder: Path) -> tuple[float, int]:
    out = folder / f"calls-{time.monotonic_ns()}.sqlite"
    env = {**os.environ, "CCRM_TOKEN": TOKEN}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ccrm_async", "calls", "pull", "--base-url", url,
         "--from", FROM, "--to", TO, "--out", str(out)],
        check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    with sqlite3.connect(out) as db:
        (count,) = db.execute("SELECT count(*) FROM calls").fetchone()
    return elapsed, int(count)


def dlt_load(url: str, folder: Path) -> tuple[float, int]:
    name = f"bench_{time.monotonic_ns()}"
    pipeline = dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(folder / "pipelines"),
        destination=dlt.destinations.duckdb(str(folder / f"{name}.duckdb")),
        dataset_name="crm",
    )
    source = ccrm_source(
        token=TOKEN, base_url=url, date_from=FROM, date_to=TO, notes=False, custom_fields=False
    )
    started = time.perf_counter()
    pipeline.run(source)
    elapsed = time.perf_counter() - started
    with pipeline.sql_client() as client:
        (count,) = client.execute_sql("SELECT count(*) FROM calls")[0]
    return elapsed, int(count)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with emulator_process(args.records) as url, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sqlite_times, dlt_times = [], []
        for _ in range(args.runs):
            seconds, count = sqlite_pull(url, folder)
            assert count == args.records, count
            sqlite_times.append(seconds)
            seconds, count = dlt_load(url, folder)
            assert count == args.records, count
            dlt_times.append(seconds)
    best_sqlite, best_dlt = min(sqlite_times), min(dlt_times)
    print(f"{args.records} calls, best of {args.runs}")
    print(f"  CLI calls pull into SQLite: {best_sqlite:6.2f} s  (all: {sqlite_times})")
    print(f"  dlt into DuckDB:            {best_dlt:6.2f} s  (all: {dlt_times})")
    print(f"  ratio dlt / SQLite:         {best_dlt / best_sqlite:6.2f}  (goal <= 2)")


if __name__ == "__main__":
    main()
