"""Repair passes: a pull whose data changed under it is read again until complete
(RELIABILITY 40), in the engine, so library pulls are complete too."""

from __future__ import annotations

import pytest

from ccrm_async import _seen
from ccrm_async._core.accounting import (
    MAX_REPAIR_PASSES,
    PassTally,
    needs_repair,
    suspected_misses,
)
from ccrm_async.testing import CCRMEmulator

from conftest import emulator_client as client

RANGE = ("2024-01-01", "2024-01-31")


def test_pass_tally_and_the_repair_decision() -> None:
    steady = PassTally(read=3000)
    for total in (3000, 3000, 3000):
        steady.observe_total(total)
    assert suspected_misses(steady) == 0 and not steady.drift
    deleted = PassTally(read=2997)
    for total in (3000, 2997, 2997):
        deleted.observe_total(total)
    assert deleted.deleted == 3 and suspected_misses(deleted) == 3
    skipped = PassTally(read=2995)  # 5 inserted, 5 skipped between concurrent pages
    for total in (3000, 3005):
        skipped.observe_total(total)
    assert suspected_misses(skipped) == 5
    assert suspected_misses(PassTally(read=10, duplicates=2)) == 2  # no totals at all
    assert needs_repair(5, 0) and needs_repair(5, MAX_REPAIR_PASSES - 1)
    assert not needs_repair(5, MAX_REPAIR_PASSES) and not needs_repair(0, 0)


@pytest.mark.parametrize("memory_keys", [None, 700], ids=["in-memory", "on-disk"])
async def test_insertions_between_concurrent_pages_are_repaired(
    memory_keys: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Page 2 is answered after page 3, and 5 calls are inserted in between: the
    first pass skips 5 records; a repair pass finds them (and the new calls).
    With 700 keys in memory, the uuids yielded move to disk page after page."""
    if memory_keys is not None:
        monkeypatch.setattr(_seen, "MEMORY_KEYS", memory_keys)
    async with CCRMEmulator(calls=5000, notes_ratio=0.0) as emu:
        original = {c["uuid"] for c in emu.dataset}
        emu.faults.serve_after(2, 3)
        emu.faults.insert_after_page(3, 5)
        async with client(emu, concurrency=4) as crm:
            pull = crm.call_history(*RANGE)
            uuids = [c.uuid async for c in pull]
        final = {c["uuid"] for c in emu.dataset}
    assert len(uuids) == len(set(uuids))
    assert original <= set(uuids) and set(uuids) == final
    s = pull.stats
    assert s.inserted == 5 and s.repair_passes == 1 and s.repaired == 10
    assert s.suspected_misses == 0 and s.complete


async def test_deletions_are_repaired_with_notes_too() -> None:
    async with CCRMEmulator(calls=3000, notes_ratio=0.3) as emu:
        emu.faults.delete_after_page(1, 4)
        async with client(emu, concurrency=4) as crm:
            pull = crm.call_history_with_notes(*RANGE)
            pairs = [pair async for pair in pull]
        remaining = {c["uuid"]: c for c in emu.dataset}
    uuids = [call.uuid for call, _ in pairs]
    assert len(uuids) == len(set(uuids)) and set(remaining) <= set(uuids)
    assert pull.stats.complete and pull.stats.repair_passes >= 1
    for call, notes in pairs:
        if call.uuid in remaining:
            assert len(notes) == len(emu.dataset.notes_for(remaining[call.uuid]))


async def test_data_that_never_holds_still_is_reported_incomplete(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Calls deleted after every page: 3 repair passes, then the misses are reported."""
    async with CCRMEmulator(calls=3000, notes_ratio=0.0) as emu:
        emu.faults.churn = 2
        async with client(emu, concurrency=2) as crm:
            pull = crm.call_history(*RANGE)
            uuids = [c.uuid async for c in pull]
    assert len(uuids) == len(set(uuids))
    s = pull.stats
    assert s.repair_passes == MAX_REPAIR_PASSES and s.suspected_misses > 0
    assert not s.complete
    assert any("suspected misses remain" in r.getMessage() for r in caplog.records)
