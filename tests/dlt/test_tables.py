"""The Arrow tables of ccrm_async.dlt: columns, zones, exact money (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from ccrm_async.converter import make_converter
from ccrm_async.dlt import CALLS_SCHEMA, DEALS_SCHEMA, NOTES_SCHEMA
from ccrm_async.dlt._tables import calls_table, deals_table, notes_table, wall_clock_to_utc
from ccrm_async.intum import Deal
from ccrm_async.models import CallRecord, Note
from ccrm_async.sinks._records import CALL_COLUMNS, NOTE_COLUMNS, call_object, sqlite_call_row

WARSAW = "Europe/Warsaw"


def _utc(values: list[str | None]) -> list[datetime | None]:
    return wall_clock_to_utc(values, WARSAW).to_pylist()  # type: ignore[no-any-return]


def test_wall_clock_is_read_in_the_accounts_zone() -> None:
    assert _utc(["2024-01-15 10:00:00", "2024-07-15 10:00:00", None]) == [
        datetime(2024, 1, 15, 9, tzinfo=UTC),
        datetime(2024, 7, 15, 8, tzinfo=UTC),
        None,
    ]


def test_clock_changes_are_read_as_zoneinfo_reads_them() -> None:
    zone = ZoneInfo(WARSAW)
    # 02:30 happens twice in October (first occurrence), never in March.
    for wall in ("2024-10-27 02:30:00", "2024-03-31 02:30:00"):
        expected = datetime.fromisoformat(wall).replace(tzinfo=zone).astimezone(UTC)
        assert _utc([wall, "2024-01-01 00:00:00"])[0] == expected


def test_the_columns_are_the_sqlite_sinks_even_when_empty() -> None:
    empty = calls_table([], account="acme", tz=WARSAW)
    assert empty.num_rows == 0 and empty.schema == CALLS_SCHEMA
    assert CALLS_SCHEMA.names == [*CALL_COLUMNS, "account"]
    assert NOTES_SCHEMA.names == [*NOTE_COLUMNS, "call_date", "account"]
    assert notes_table([], account="acme", tz=WARSAW).schema == NOTES_SCHEMA


def test_a_call_row_is_the_sqlite_row_with_a_zoned_date() -> None:
    conv = make_converter(tz=ZoneInfo(WARSAW))
    call = conv.structure(
        {
            "uuid": "c1",
            "callDate": "2024-07-01 12:00:00",
            "callDirection": "IN",
            "note": 1,
            "from": {"number": "+48 500 000 000"},
        },
        CallRecord,
    )
    note = conv.structure({"uuid": "n1", "text": "tekst", "created": "2024-07-01 12:05:00"}, Note)
    row = calls_table([call], account="acme", tz=WARSAW).to_pylist()[0]
    sqlite = dict(zip(CALL_COLUMNS, sqlite_call_row(call_object(call)), strict=True))
    assert row == {**sqlite, "call_date": datetime(2024, 7, 1, 10, tzinfo=UTC), "account": "acme"}
    assert row["has_notes"] is True and row["from_number"] == "+48 500 000 000"
    (noted,) = notes_table([(call, [note])], account="acme", tz=WARSAW).to_pylist()
    assert noted["uuid"] == "n1" and noted["call_uuid"] == "c1"
    assert noted["created"] == datetime(2024, 7, 1, 10, 5, tzinfo=UTC)
    assert noted["call_date"] == row["call_date"] and noted["plain_text"] == "tekst"


def test_money_is_exact_and_never_rounded() -> None:
    deals = [
        Deal(id=1, total_amount_net=Decimal("0.10"), total_amount_gross=Decimal("12300.12")),
        Deal(id=2, fields={"k": "v"}),
    ]
    table = deals_table(deals, account="acme")
    assert table.schema == DEALS_SCHEMA
    assert table.column("total_amount_gross").type == pa.decimal128(38, 2)
    assert table.column("total_amount_net").to_pylist() == [Decimal("0.10"), None]
    assert table.column("fields").to_pylist() == [None, '{"k":"v"}']
    with pytest.raises(ValueError, match="deal 3: total_amount_net has more than two decimal"):
        deals_table([Deal(id=3, total_amount_net=Decimal("1.005"))], account="acme")
