"""examples/dagster: one account x month partition materialized against the emulator."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType

import duckdb
import pytest
from dagster import DagsterInstance, MultiPartitionKey, QueuedRunCoordinator, materialize

from ccrm_async.testing import CCRMEmulator

EXAMPLE = Path(__file__).parents[2] / "examples" / "dagster"

# Dagster's own code still uses a pydantic 1 spelling; that is not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The `__fields__` attribute is deprecated:DeprecationWarning"
)


def _load_definitions() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "ccrm_dagster_example", EXAMPLE / "definitions.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


async def test_one_partition_materializes_one_account_month(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(EXAMPLE / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("DESTINATION__POSTGRES__CREDENTIALS", raising=False)
    async with CCRMEmulator(calls=1500, start=datetime(2024, 1, 1), days=45) as emu:
        monkeypatch.setenv("CCRM_ACCOUNTS", "acme,beta")
        monkeypatch.setenv("CCRM_TOKEN__ACME", emu.token)
        monkeypatch.setenv("CCRM_BASE_URL__ACME", emu.url)
        monkeypatch.setenv("CCRM_START", "2024-01-01")
        monkeypatch.setenv("CCRM_DUCKDB_DIR", str(tmp_path))
        monkeypatch.setenv("CCRM_DLT_PIPELINES_DIR", str(tmp_path / "pipelines"))
        definitions = _load_definitions()

        with DagsterInstance.get() as instance:
            # The example's dagster.yaml: one run at a time per account.
            coordinator = instance.run_coordinator
            assert isinstance(coordinator, QueuedRunCoordinator)
            limits = coordinator.get_run_queue_config().tag_concurrency_limits
            assert {
                "key": "dagster/partition/account",
                "value": {"applyLimitPerUniqueValue": True},
                "limit": 1,
            } in limits

            key = MultiPartitionKey({"account": "acme", "month": "2024-01-01"})
            result = await asyncio.to_thread(
                materialize,
                [definitions.ccrm_assets],
                partition_key=key,
                resources=definitions.defs.resources,
                instance=instance,
            )
        assert result.success
        assert result.dagster_run.tags["dagster/partition/account"] == "acme"

    january = emu.dataset.select("2024-01-01 00:00:00", "2024-01-31 23:59:59")
    assert 0 < len(january) < len(emu.dataset)  # the month, not the whole data
    with duckdb.connect(str(tmp_path / "ccrm_acme.duckdb"), read_only=True) as db:
        uuids = {uuid for (uuid,) in db.execute("SELECT uuid FROM crm.calls").fetchall()}
        notes = db.execute("SELECT count(*) FROM crm.notes").fetchone()
        accounts = db.execute("SELECT DISTINCT account FROM crm.calls").fetchall()
    assert uuids == {call["uuid"] for call in january}
    assert notes is not None and notes[0] == sum(len(emu.dataset.notes_for(c)) for c in january)
    assert accounts == [("acme",)]
