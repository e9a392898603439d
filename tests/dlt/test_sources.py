"""ccrm_source and intum_source against the emulators (faults on), into DuckDB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dlt
import pytest

from ccrm_async import CCRMError, ValidationError
from ccrm_async.dlt import ccrm_source, intum_source
from ccrm_async.intum import Deal, IntumClient
from ccrm_async.sinks._records import CALL_COLUMNS, NOTE_COLUMNS
from ccrm_async.testing import CCRMEmulator, Faults, IntumEmulator, PhpHabits

from conftest import FAST_RETRY

CALLS = "/publicApi/callHistory"
WARSAW = ZoneInfo("Europe/Warsaw")

#: Faults on every path the source uses: 5xx, cut bodies and rate limits.
FAULTS = dict(
    error_rate=0.05,
    reset_rate=0.03,
    rate_limit_rate=0.03,
    paths=("/publicApi/callHistory", "/publicApi/notes"),
)


@pytest.fixture
async def year_emulator() -> AsyncIterator[CCRMEmulator]:
    """2,000 calls from January to mid-July 2024 (winter and summer time), faults
    on: random ones on notes, and the first call-history requests fail for sure."""
    faults = Faults(**FAULTS)
    faults.script(CALLS, ["503", "reset", "rate_limit", "truncated"])
    async with CCRMEmulator(calls=2000, start=datetime(2024, 1, 1), days=200, faults=faults) as emu:
        yield emu


@pytest.fixture
def make_pipeline(tmp_path: Path) -> Callable[..., Any]:
    """A DuckDB pipeline in *tmp_path*; the same name gives the same state."""

    def make(name: str = "ccrm_test") -> Any:
        return dlt.pipeline(
            pipeline_name=name,
            pipelines_dir=str(tmp_path / "pipelines"),
            destination=dlt.destinations.duckdb(str(tmp_path / f"{name}.duckdb")),
            dataset_name="crm",
        )

    return make


def _source(emu: CCRMEmulator, **kw: Any) -> Any:
    kw.setdefault("date_from", "2024-01-01")
    kw.setdefault("date_to", "2024-07-31")
    return ccrm_source(account="acme", token=emu.token, base_url=emu.url, retry=FAST_RETRY, **kw)


async def _run(pipeline: Any, source: Any) -> Any:
    # dlt runs the source's async resources on its own event loop; the
    # emulator keeps serving on this one meanwhile.
    return await asyncio.to_thread(pipeline.run, source)


def _query(pipeline: Any, sql: str) -> list[tuple[Any, ...]]:
    with pipeline.sql_client() as client:
        return list(client.execute_sql(sql))


async def test_every_call_once_with_its_notes_and_dates_in_utc(
    year_emulator: CCRMEmulator, make_pipeline: Callable[..., Any]
) -> None:
    emu = year_emulator
    pipeline = make_pipeline()
    await _run(pipeline, _source(emu))

    # Faults really happened, and were retried.
    assert any(r.fault for r in emu.requests(CALLS))
    assert any(r.fault for r in emu.requests("/publicApi/notes"))

    rows = _query(pipeline, "SELECT uuid, call_date, account FROM calls")
    expected = {call["uuid"]: call for call in emu.dataset}
    assert len(rows) == len(expected) == 2000
    assert {uuid for uuid, _, _ in rows} == set(expected)
    assert {account for _, _, account in rows} == {"acme"}

    # Dates: the API's Warsaw wall clock, stored as the right instant.
    loaded = {uuid: when for uuid, when, _ in rows}
    winter = next(c for c in emu.dataset if c["callDate"].startswith("2024-01-1"))
    summer = next(c for c in emu.dataset if c["callDate"].startswith("2024-07-0"))
    for call, hours in ((winter, 1), (summer, 2)):  # CET, CEST
        wall = datetime.fromisoformat(call["callDate"])
        stored = loaded[call["uuid"]].astimezone(UTC)
        assert stored.replace(tzinfo=None) == wall - timedelta(hours=hours)

    # Notes: every note of every call, once, with its call and an aware date.
    notes = _query(pipeline, "SELECT uuid, call_uuid, created, plain_text, text FROM notes")
    want = {
        note["uuid"]: (call["uuid"], note)
        for call in emu.dataset
        for note in emu.dataset.notes_for(call)
    }
    assert len(want) > 300
    assert len(notes) == len(want)
    for uuid, call_uuid, created, plain_text, text in notes:
        owner, note = want[uuid]
        assert call_uuid == owner
        assert text == note["text"]
        assert plain_text and "blocks" not in plain_text
        wall = datetime.fromisoformat(note["created"]).replace(tzinfo=WARSAW)
        assert created == wall


async def test_columns_are_the_sqlite_sinks_and_always_there(
    year_emulator: CCRMEmulator, make_pipeline: Callable[..., Any]
) -> None:
    pipeline = make_pipeline()
    # A range without a single call: the tables still get every column.
    await _run(pipeline, _source(year_emulator, date_from="2023-01-01", date_to="2023-01-02"))
    pipeline = make_pipeline("second")
    await _run(pipeline, _source(year_emulator, date_from="2024-01-01", date_to="2024-01-20"))
    columns = {
        table: [name for name, *_ in _query(pipeline, f"DESCRIBE {table}")]
        for table in ("calls", "notes", "custom_fields")
    }
    assert [c for c in columns["calls"] if not c.startswith("_dlt")] == [*CALL_COLUMNS, "account"]
    assert [c for c in columns["notes"] if not c.startswith("_dlt")] == [
        *NOTE_COLUMNS,
        "call_date",
        "account",
    ]
    assert "from_" not in columns["calls"] and "fromx" not in columns["calls"]
    types = dict((name, kind) for name, kind, *_ in _query(pipeline, "DESCRIBE calls"))
    assert types["call_date"] == "TIMESTAMP WITH TIME ZONE"
    assert types["has_notes"] == "BOOLEAN"
    fields = _query(pipeline, "SELECT count(*) FROM custom_fields")
    assert fields[0][0] == len({f["uuid"] for f in year_emulator.custom_fields.fields()})


async def test_a_second_run_adds_nothing_and_new_calls_are_merged(
    year_emulator: CCRMEmulator, make_pipeline: Callable[..., Any]
) -> None:
    emu = year_emulator
    pipeline = make_pipeline()
    await _run(pipeline, _source(emu))
    counts_sql = (
        "SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM notes),"
        " (SELECT count(*) FROM custom_fields)"
    )
    counts = _query(pipeline, counts_sql)

    # The same source again: only the last hour before the newest call is
    # asked for (the open-window overlap), and nothing new is stored.
    emu.log.clear()
    await _run(pipeline, _source(emu))
    asked = {r.query["dateFrom"] for r in emu.requests(CALLS)}
    newest = datetime.fromisoformat(emu.dataset.calls[0]["callDate"])
    assert asked == {str(newest - timedelta(hours=1))}
    again = _query(pipeline, counts_sql)
    assert again == counts

    # New calls arrive: merged in, nothing twice.
    new = emu.dataset.insert_head(7)
    await _run(pipeline, _source(emu))
    rows = _query(pipeline, "SELECT uuid FROM calls")
    assert len(rows) == len({uuid for (uuid,) in rows}) == 2007
    assert set(new) <= {uuid for (uuid,) in rows}
    duplicated = _query(pipeline, "SELECT uuid FROM notes GROUP BY uuid HAVING count(*) > 1")
    assert duplicated == []


async def test_without_notes_and_custom_fields_only_calls(
    year_emulator: CCRMEmulator, make_pipeline: Callable[..., Any]
) -> None:
    pipeline = make_pipeline()
    source = _source(year_emulator, notes=False, custom_fields=False, date_to="2024-01-31")
    assert set(source.resources) == {"calls"}
    await _run(pipeline, source)
    assert not year_emulator.requests("/publicApi/notes")
    (count,) = _query(pipeline, "SELECT count(*) FROM calls")[0]
    assert count == len(year_emulator.dataset.select("2024-01-01 00:00:00", "2024-01-31 23:59:59"))


async def test_a_call_without_a_readable_date_is_loaded_not_dropped(
    make_pipeline: Callable[..., Any],
) -> None:
    # The API sends one call's date as a MySQL zero date: the call is read with
    # no date (issue 10) and must reach the warehouse, with a NULL call_date.
    async with CCRMEmulator(calls=300, start=datetime(2024, 1, 1), days=20) as emu:
        zero = emu.dataset.calls[10]["uuid"]
        emu.php = PhpHabits(zero_date_uuids=frozenset({zero}))
        pipeline = make_pipeline()
        await _run(pipeline, _source(emu, notes=False, custom_fields=False, date_to="2024-01-31"))
        rows = dict(_query(pipeline, "SELECT uuid, call_date FROM calls"))
        assert len(rows) == 300
        assert rows[zero] is None
        assert all(value is not None for uuid, value in rows.items() if uuid != zero)

        # A second run keeps it once (merge by uuid), the cursor ignores it.
        await _run(pipeline, _source(emu, notes=False, custom_fields=False, date_to="2024-01-31"))
        assert _query(pipeline, "SELECT count(*), count(DISTINCT uuid) FROM calls") == [(300, 300)]


def test_bad_settings_fail_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CCRM_ACCOUNT", "CCRM_TOKEN", "CCRM_BASE_URL", "SOURCES__CCRM__TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # As the client's constructor raises it (a ConfigurationError-like error).
    with pytest.raises((ValueError, CCRMError), match="no API token"):
        ccrm_source(account="acme", date_from="2024-01-01")
    with pytest.raises(ValidationError, match="unknown filter"):
        intum_source(account="acme", token="t", filters={"colour": "red"})
    with pytest.raises(ValidationError, match="time zone"):
        ccrm_source(account="acme", token="t", date_from="2024-01-01", tz="Mars/Olympus")
    with pytest.raises(ValidationError, match="date_from"):
        ccrm_source(account="acme", token="t", date_from="2024-02-01", date_to="2024-01-01")
    with pytest.raises(ValidationError, match="date_from"):
        ccrm_source(account="acme", token="t", date_from="January")


def test_the_token_may_come_from_dlt_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCRM_TOKEN", raising=False)
    monkeypatch.setenv("SOURCES__CCRM__TOKEN", "from-dlt-secrets")
    source = ccrm_source(account="acme", date_from="2024-01-01")
    assert set(source.resources) == {"calls", "custom_fields"}
    assert "from-dlt-secrets" not in repr(source)


async def test_intum_deals_merge_by_id_with_exact_money(
    make_pipeline: Callable[..., Any],
) -> None:
    async with IntumEmulator(deals=250) as emu:
        async with IntumClient(base_url=emu.url, token=emu.token, retry=FAST_RETRY) as intum:
            created = await intum.deals.create(
                Deal(
                    name="Umowa serwisowa",
                    total_amount_net=Decimal("10000.10"),
                    total_amount_gross=Decimal("12300.12"),
                    tax="23",
                    date=datetime(2024, 3, 15).date(),
                )
            )
            total = len([d async for d in intum.deals.list()])
        pipeline = make_pipeline("intum")
        source = intum_source(account="acme", token=emu.token, base_url=emu.url, retry=FAST_RETRY)
        await _run(pipeline, source)
        await _run(pipeline, source)  # merged: not twice
        rows = _query(pipeline, "SELECT id FROM deals")
        assert len(rows) == len({r[0] for r in rows}) == total
        (net, gross, day, account) = _query(
            pipeline,
            f"SELECT total_amount_net, total_amount_gross, date, account FROM deals "
            f"WHERE id = {created.id}",
        )[0]
        assert (net, gross) == (Decimal("10000.10"), Decimal("12300.12"))
        assert str(day) == "2024-03-15" and account == "acme"
        types = dict((name, kind) for name, kind, *_ in _query(pipeline, "DESCRIBE deals"))
        assert types["total_amount_net"].startswith("DECIMAL")
