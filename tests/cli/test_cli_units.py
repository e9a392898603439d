"""The pure parts of the command line and the sinks, and usage errors (in-process)."""

from __future__ import annotations

import argparse
import io
import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from _cli_helpers import TOKEN

from ccrm_async import (
    CallRecord,
    CustomField,
    FieldType,
    NumberField,
    RejectedRecord,
    TextField,
)
from ccrm_async.cli import main
from ccrm_async.cli._calls import _sync_query
from ccrm_async.cli._common import BarProgress, one_line, summary_line
from ccrm_async.cli._fields import field_parameters, fields_table
from ccrm_async.converter import LENIENT
from ccrm_async.sinks import (
    CheckpointError,
    CsvSink,
    FileCheckpoint,
    JsonlSink,
    PullQuery,
    PullReport,
    SinkError,
    SqliteSink,
    Window,
    csv_columns,
    csv_row,
    format_duration,
    parse_duration,
    plan_windows,
    rejects_path,
    sink_format,
)
from ccrm_async.sinks._records import call_object, sqlite_call_row
from ccrm_async.testing import CallDataset

S = timedelta(seconds=1)


# -- durations and windows ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1d", 86400), ("6h", 21600), ("90m", 5400), ("1h30m", 5400), ("1 day", 86400),
     ("2 weeks", 1209600), ("45s", 45), ("1D", 86400), (" 1w 1d ", 691200)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5", "1y", "d", "1d2", "-1d", "1.5h", "one day"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(timedelta(days=1)) == "1d"
    assert format_duration(timedelta(hours=1, minutes=30)) == "1h30m"
    assert format_duration(timedelta(weeks=1, seconds=1)) == "1w1s"
    assert format_duration(timedelta(0)) == "0s"


def test_windows_are_aligned_cut_to_the_range_and_cover_it_once() -> None:
    start, end = datetime(2024, 1, 1, 13, 30), datetime(2024, 1, 4, 6, 0, 0)
    windows = plan_windows(start, end, timedelta(days=1))
    assert [str(w) for w in windows] == [
        "2024-01-01 13:30:00 .. 2024-01-01 23:59:59",
        "2024-01-02 00:00:00 .. 2024-01-02 23:59:59",
        "2024-01-03 00:00:00 .. 2024-01-03 23:59:59",
        "2024-01-04 00:00:00 .. 2024-01-04 06:00:00",
    ]
    for size in (timedelta(minutes=7), timedelta(hours=5), timedelta(days=3), timedelta(weeks=1)):
        windows = plan_windows(start, end, size)
        assert windows[0].start == start and windows[-1].end == end
        for before, after in itertools.pairwise(windows):
            assert after.start == before.end + S  # no gap, no overlap
            assert before.start <= before.end
    # A week runs from Monday; the same moment always falls in the same window.
    week = plan_windows(datetime(2024, 1, 3), datetime(2024, 1, 20), timedelta(weeks=1))
    assert week[1].start == datetime(2024, 1, 8) and week[1].start.weekday() == 0
    assert plan_windows(datetime(2024, 1, 2), datetime(2024, 1, 1), timedelta(days=1)) == []
    assert plan_windows(start, start, timedelta(days=1)) == [Window(start, start)]
    with pytest.raises(ValueError):
        plan_windows(start, end, timedelta(milliseconds=1500))


def test_sink_format_by_extension() -> None:
    assert sink_format(Path("a.jsonl")) == "jsonl"
    assert sink_format(Path("a.CSV")) == "csv"
    assert sink_format(Path("x/a.sqlite")) == "sqlite"
    assert sink_format(Path("a.json")) is None and sink_format(Path("a")) is None


# -- the checkpoint value ---------------------------------------------------------------------


def test_checkpoint_advances_and_round_trips() -> None:
    query = PullQuery(datetime(2024, 1, 1), datetime(2024, 1, 3, 23, 59, 59), notes=True)
    windows = query.windows()
    state = FileCheckpoint.start("jsonl", query)
    assert not state.is_done(windows[0]) and state.offset == 0
    state = state.advance(windows[0], offset=1234, records=10, notes=4)
    assert state.is_done(windows[0]) and not state.is_done(windows[1])
    assert (state.offset, state.windows, state.records, state.notes_written) == (1234, 1, 10, 4)
    assert state.done_until == "2024-01-01 23:59:59"
    assert FileCheckpoint.from_json(state.to_json()) == state
    assert state.same_pull(FileCheckpoint.start("jsonl", query))
    assert not state.same_pull(FileCheckpoint.start("csv", query))
    other = PullQuery(query.date_from, query.date_to, timedelta(hours=6), notes=True)
    assert not state.same_pull(FileCheckpoint.start("jsonl", other))
    assert "--window 1d --notes" in state.describe()


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"[]", b'{"version": 2}', b'{"version": 1, "format": "jsonl"}',
     b'{"version": 1, "format": "jsonl", "date_from": "", "date_to": "", "window": "1d",'
     b' "notes": false, "offset": -1}'],
)  # fmt: skip
def test_a_bad_checkpoint_is_refused(data: bytes) -> None:
    with pytest.raises(CheckpointError):
        FileCheckpoint.from_json(data)


# -- rows ------------------------------------------------------------------------------------


def test_csv_and_sqlite_rows_of_a_call() -> None:
    raw = next(c for c in CallDataset(count=50, seed=1).calls if c["to"]["type"] == "person")
    call = LENIENT.structure(raw, CallRecord)
    obj = call_object(call)
    columns = csv_columns(notes=False)
    row = dict(zip(columns, csv_row(obj, notes=False), strict=True))
    assert row["uuid"] == raw["uuid"] and row["callDate"] == raw["callDate"]
    assert row["callDirection"] == raw["callDirection"].lower()
    assert row["to.firstName"] == raw["to"]["firstName"]
    assert row["note"] in ("true", "false")
    assert (
        json.loads(row["userTalk.receivers"])[0]["uuid"] == raw["userTalk"]["receivers"][0]["uuid"]
    )
    assert csv_columns(notes=True)[-2:] == ["notes", "notesPlainText"]
    sql = sqlite_call_row(call_object(call, []))
    assert sql[0] == raw["uuid"] and json.loads(sql[-1]) == obj  # raw JSON without notes
    assert sql[8] == raw["to"]["number"]


# -- output ---------------------------------------------------------------------------------


def test_summary_line() -> None:
    report = PullReport(windows=31, skipped=1, finished=30, records=20000, notes=12039,
                        pages=30, requests=6004, retries=2, rate_limit_pauses=1,
                        duplicates_dropped=3, suspected_misses=0, elapsed=3.456)  # fmt: skip
    line = summary_line(report, Path("demo.sqlite"))
    assert line == (
        "done: 20000 calls, 12039 notes, 30 pages, 6004 requests, 2 retries, "
        "1 rate-limit pauses, 3 duplicates dropped, 0 suspected misses, 0 rejected, "
        "0 bent values, 0 repair passes, 3.5s; "
        "30 of 31 windows (1 already done) into demo.sqlite"
    )
    stopped = summary_line(report, Path("x.jsonl"), state="interrupted")
    assert stopped.startswith("interrupted: ") and stopped.endswith("to continue")
    assert "\n" not in stopped


def test_one_line_escapes_and_redacts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCRM_TOKEN", TOKEN)
    assert one_line(f"a\r\nb {TOKEN}") == "a\\r\\nb ***"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal() -> None:
    for stream, drawn in ((_Terminal(), True), (io.StringIO(), False)):
        bar = BarProgress(Path("x.jsonl"), stream=stream)
        bar.start(3, 1)
        for day in (1, 2, 3):
            bar.window(Window(datetime(2024, 1, day), datetime(2024, 1, day, 23, 59, 59)))
            bar.records(5, 2)
            bar.window_done()
        bar.close()
        text = stream.getvalue()
        resumed = "resuming: 1 of 4 windows already in x.jsonl\n"
        if drawn:
            assert text.startswith(resumed) and "0/3 [" in text and "window/s" in text
            assert text.endswith("\r")  # the bar is cleared for the summary line
        else:
            assert text == resumed


def test_fields_table() -> None:
    fields = [
        CustomField(uuid="u1", type=FieldType.TEXT, name="Uwagi", required=True,
                    contact_types=("person",), can_delete=True,
                    spec=TextField("Uwagi", ["person"], max_length=15, multiline=True)),
        CustomField(uuid="u2", type=FieldType.NUMBER, name="Liczba",
                    contact_types=("person", "organisation"),
                    spec=NumberField("Liczba", ["person"], min_value=5, max_value=20)),
    ]  # fmt: skip
    lines = fields_table(fields)
    assert lines[0].startswith("UUID  TYPE    NAME    REQUIRED  CONTACT TYPES")
    assert lines[1].split() == [
        "u1",
        "text",
        "Uwagi",
        "yes",
        "person",
        "0-15",
        "chars,",
        "multiline",
    ]
    assert field_parameters(fields[0]) == "0-15 chars, multiline"
    assert field_parameters(fields[1]) == "5 to 20, cannot be deleted"
    assert lines[1].index("text") == lines[2].index("number")  # aligned


# -- sync's range ---------------------------------------------------------------------------


def test_sync_range() -> None:
    def args(**kw: object) -> argparse.Namespace:
        base = {"out": Path("s.sqlite"), "overlap": timedelta(hours=1), "date_from": None,
                "date_to": None, "window": timedelta(days=1), "notes": False}  # fmt: skip
        return argparse.Namespace(**{**base, **kw})

    now = datetime(2024, 3, 1, 12, 0, 0)
    last = datetime(2024, 2, 28, 10, 0, 0)
    query = _sync_query(args(), last, now=now)
    assert query is not None
    assert (query.date_from, query.date_to) == (datetime(2024, 2, 28, 9), now)
    floor = datetime(2024, 2, 28, 9, 30)
    assert _sync_query(args(date_from=floor), last, now=now).date_from == floor  # type: ignore[union-attr]
    assert _sync_query(args(date_from=floor), None, now=now).date_from == floor  # type: ignore[union-attr]
    assert _sync_query(args(), datetime(2024, 3, 2), now=now) is None
    with pytest.raises(Exception, match="--from"):
        _sync_query(args(), None, now=now)


# -- usage errors, in-process ---------------------------------------------------------------

PULL = ["calls", "pull", "--from", "2024-01-01", "--to", "2024-01-02"]
URL = ["--base-url", "http://127.0.0.1:9"]  # nothing listens: sending anything would exit 1


@pytest.mark.parametrize(
    "argv",
    [
        ["calls"],
        ["nonsense"],
        PULL,
        [*PULL, "--out", "x.txt", *URL],
        [*PULL, "--out", "x.csv", "--window", "5", *URL],
        [*PULL, "--out", "x.csv", "--window", "30s", *URL],
        [*PULL, "--out", "x.csv", "--concurrency", "0", *URL],
        [*PULL, "--out", "x.csv", "--retries", "0", *URL],
        [*PULL, "--out", "x.csv", "--account", "acme", *URL],
        [*PULL, "--out", "x.csv", "--egress-ip", "10.0.0.300", *URL],
        [*PULL, "--out", "x.csv", "--base-url", "ftp://example.com"],
        [*PULL, "--out", "x.csv", "--account", "Not An Account"],
        [*PULL, "--out", "x.csv"],  # no account at all
        ["calls", "pull", "--from", "2024-01-02", "--to", "2024-01-01", "--out", "x.csv", *URL],
        ["calls", "pull", "--from", "yesterday", "--to", "2024-01-01", "--out", "x.csv", *URL],
        ["calls", "pull", "--from", "2024-01-01T10:00:00+01:00", "--to", "2024-01-02", *URL],
        ["calls", "sync", "--out", "x.jsonl", *URL],
        [*PULL, "--out", "x.csv", *URL, f"--token={TOKEN}"],
        [*PULL, "--out", "x.csv", *URL, "--con", "4"],  # no abbreviations
        ["fields", "list", "--contact-type", "company", *URL],
        ["fields", "create", "select", "X", *URL],
        ["fields", "create", "select", "X", "--option", "a", "--option", "a", *URL],
        ["fields", "create", "number", "X", "--min-value", "5", "--max-value", "1", *URL],
        ["fields", "create", "number", "X", "--min-value", "nan", *URL],
        ["fields", "create", "text", " ", *URL],
        ["fields", "create", "date", "X", "--contact-type", "company", *URL],
        ["fields", "delete", *URL],
        ["emulator", "--listen", "nowhere"],
        ["thulium", "serve"],
    ],
)
def test_usage_errors(
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("CCRM_ACCOUNT", "CCRM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CCRM_TOKEN", TOKEN)
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert TOKEN not in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert "ccrm-async" in capsys.readouterr().out
    assert main(["calls", "pull", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--out PATH" in out and "CCRM_TOKEN" in out and "--token" not in out


# -- file sinks, without the network ----------------------------------------------------------


def _calls(count: int) -> list[CallRecord]:
    return [LENIENT.structure(raw, CallRecord) for raw in CallDataset(count=count, seed=2).calls]


def test_file_sink_commits_rolls_back_and_locks(tmp_path: Path) -> None:
    query = PullQuery(datetime(2024, 1, 1), datetime(2024, 1, 2, 23, 59, 59))
    first, second = query.windows()
    out = tmp_path / "calls.csv"
    sink = CsvSink(out, query)
    with pytest.raises(SinkError, match="another pull is writing"):
        CsvSink(out, query)
    calls = _calls(30)
    sink.begin(first)
    for call in calls[:10]:
        sink.add(call, None)
    sink.commit(first, closed=True)
    committed = out.read_bytes()
    assert committed.startswith(b"uuid,callDate,") and committed.count(b"\r\n") == 11
    sink.begin(second)
    for call in calls[10:]:
        sink.add(call, None)
    sink.rollback()  # an error or Ctrl-C mid-window: back to the last checkpoint
    assert out.read_bytes() == committed
    sink.begin(second)
    sink.add(calls[10], None)
    sink.close()  # closing with a window open rolls it back too
    assert out.read_bytes() == committed
    resumed = CsvSink(out, query)
    assert resumed.is_done(first) and not resumed.is_done(second)
    resumed.close()


def test_a_pull_that_finished_nothing_leaves_no_files(tmp_path: Path) -> None:
    query = PullQuery(datetime(2024, 1, 1), datetime(2024, 1, 1, 23, 59, 59), notes=True)
    out = tmp_path / "calls.jsonl"
    sink = JsonlSink(out, query)
    sink.begin(query.windows()[0])
    sink.add(_calls(1)[0], [])
    sink.close()
    assert list(tmp_path.iterdir()) == []


def _reject(uuid: str | None, page: int = 1) -> RejectedRecord:
    raw = {"uuid": uuid, "callDate": "yesterday"}
    return RejectedRecord("CallRecord", page, uuid, "callDate", "callDate: bad", raw)


def test_open_windows_are_written_then_cut_back_with_their_rejects(tmp_path: Path) -> None:
    """A window left open is written but not checkpointed, nor is any window after
    it; the next run cuts the output and the rejects file back to the checkpoint."""
    query = PullQuery(datetime(2024, 1, 1), datetime(2024, 1, 3, 23, 59, 59))
    first, second, third = query.windows()
    out = tmp_path / "calls.jsonl"
    calls = _calls(30)
    sink = JsonlSink(out, query)
    for window, chunk, closed, reject in (
        (first, calls[:10], True, "r1"),
        (second, calls[10:20], False, "r2"),
        (third, calls[20:], True, None),
    ):
        sink.begin(window)
        for call in chunk:
            sink.add(call, None)
        sink.add_reject(_reject(reject))
        marked = sink.commit(window, closed=closed)
        assert marked is (window is first)  # the third waits for the second
    sink.close()
    assert len(out.read_bytes().splitlines()) == 30
    lines = rejects_path(out).read_text().splitlines()
    assert [json.loads(line)["uuid"] for line in lines] == ["r1", "r2", None]
    resumed = JsonlSink(out, query)
    try:
        assert resumed.is_done(first) and not resumed.is_done(second)
        assert len(out.read_bytes().splitlines()) == 10
        assert [
            json.loads(line)["uuid"] for line in rejects_path(out).read_text().splitlines()
        ] == ["r1"]
    finally:
        resumed.close()


def test_a_new_pull_refuses_a_rejects_file_it_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    rejects_path(out).write_text("mine\n")
    with pytest.raises(SinkError, match=r"rejects\.jsonl exists"):
        JsonlSink(out, PullQuery(datetime(2024, 1, 1), datetime(2024, 1, 1, 23, 59, 59)))
    assert rejects_path(out).read_text() == "mine\n" and not out.exists()


def test_sqlite_rejects_go_with_their_window(tmp_path: Path) -> None:
    query = PullQuery(datetime(2024, 1, 1), datetime(2024, 1, 2, 23, 59, 59))
    first, second = query.windows()
    sink = SqliteSink(tmp_path / "calls.sqlite")
    try:
        sink.begin(first)
        sink.add_reject(_reject("u1"))
        sink.add_reject(_reject(None))
        assert sink.commit(first, closed=True)
        sink.begin(second)
        sink.add_reject(_reject("u2"))
        sink.rollback()  # the window's rejects go with it
        sink.begin(first)  # the same window again: rows replaced, not repeated
        sink.add_reject(_reject("u1", page=2))
        sink.add_reject(_reject(None))
        sink.commit(first, closed=True)
        assert sink.count("rejects") == 2
    finally:
        sink.close()
