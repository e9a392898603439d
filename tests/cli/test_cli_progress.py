"""Progress lines, the JSON summary, proxies from the environment and messages
in options' words, in-process and on a fake clock."""

from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path

import attrs
import pytest

from ccrm_async.cli._common import proxy_for
from ccrm_async.cli._fields import in_option_terms
from ccrm_async.cli._progress import LogProgress, QuietProgress, make_progress, report_object
from ccrm_async.events import RateLimitEvent, RequestEvent, RetryEvent
from ccrm_async.sinks import PullReport

from clocks import FakeClock

CALLS = "/publicApi/callHistory"


def test_a_log_line_every_interval_on_the_clock() -> None:
    clock = FakeClock()
    stream = io.StringIO()
    progress = LogProgress(Path("out.jsonl"), every=10.0, stream=stream, clock=clock)
    progress.start(3, 0)
    progress.on_event(RequestEvent("GET", CALLS, 200, 1, 0.1))
    progress.records(1500, 20)
    assert stream.getvalue() == ""  # nothing is due yet
    clock.t = 9.9
    progress.on_event(RetryEvent("GET", CALLS, 1, 0.5, "HTTP 503 (ServerError)"))
    assert stream.getvalue() == ""
    clock.t = 10.0
    progress.on_event(RateLimitEvent("GET", CALLS, 2.0, 4))
    progress.window_done()
    clock.t = 25.0
    progress.records(500, 0)
    assert stream.getvalue().splitlines() == [
        "progress: 0 of 3 windows, 1500 calls, 20 notes, 1 requests, 1 retries, "
        "1 rate-limit pauses, 150 calls/s",
        "progress: 1 of 3 windows, 2000 calls, 20 notes, 1 requests, 1 retries, "
        "1 rate-limit pauses, 80 calls/s",
    ]


async def test_a_line_is_written_while_the_pull_waits() -> None:
    """The ticker writes lines when nothing else happens (a long pause)."""
    clock = FakeClock()
    stream = io.StringIO()
    progress = LogProgress(every=10.0, stream=stream, clock=clock)
    ticker = asyncio.create_task(progress.run())
    for _ in range(3):
        await asyncio.sleep(0)
    ticker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ticker
    assert clock.sleeps[:2] == [10.0, 10.0]
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 2 and all(line.startswith("progress: 0 of 0 windows") for line in lines)


def test_resuming_is_announced() -> None:
    stream = io.StringIO()
    LogProgress(Path("x.csv"), stream=stream, clock=FakeClock()).start(2, 5)
    assert stream.getvalue() == "resuming: 5 of 7 windows already in x.csv\n"


class _Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_auto_is_log_without_a_terminal_and_none_is_quiet() -> None:
    args = argparse.Namespace(progress="auto", progress_every=10.0)
    assert isinstance(make_progress(args, Path("x"), stream=_Pipe()), LogProgress)
    args.progress = "none"
    assert isinstance(make_progress(args, Path("x"), stream=_Pipe()), QuietProgress)


def test_the_json_summary_holds_every_count_of_the_report() -> None:
    report = PullReport(windows=3, finished=2, records=10, notes=4, requests=7, elapsed=1.23456)
    counts = report_object(report, state="done", output="x.csv")
    assert counts == {
        "state": "done",
        "output": "x.csv",
        "windows": 3,
        "skipped": 0,
        "finished": 2,
        "open": 0,
        "incomplete": 0,
        "calls": 10,
        "notes": 4,
        "pages": 0,
        "requests": 7,
        "retries": 0,
        "rate_limit_pauses": 0,
        "duplicates_dropped": 0,
        "suspected_misses": 0,
        "repair_passes": 0,
        "rejected": 0,
        "bent": 0,
        "elapsed": 1.235,
    }

    @attrs.define
    class Extended(PullReport):  # a count another change adds appears by itself
        late_windows: list[str] = attrs.Factory(list)

    extended = report_object(Extended(rejected=2, late_windows=["a", "b"]))
    assert extended["rejected"] == 2 and extended["late_windows"] == 2


@pytest.mark.parametrize(
    ("url", "env", "proxy"),
    [
        ("https://acme.ccrm.pl", {"HTTPS_PROXY": "http://p:3128"}, "http://p:3128"),
        ("https://acme.ccrm.pl", {"https_proxy": "p:3128"}, "http://p:3128"),
        ("https://acme.ccrm.pl", {"HTTP_PROXY": "http://p:3128"}, None),
        ("http://127.0.0.1:8080", {"HTTP_PROXY": "http://p:3128"}, "http://p:3128"),
        ("https://acme.ccrm.pl", {"HTTPS_PROXY": "http://p", "NO_PROXY": ".ccrm.pl"}, None),
        ("https://acme.ccrm.pl", {"HTTPS_PROXY": "http://p", "no_proxy": "ccrm.pl:443"}, None),
        ("https://acme.ccrm.pl", {"HTTPS_PROXY": "http://p", "NO_PROXY": "*"}, None),
        ("https://acme.ccrm.pl", {"HTTPS_PROXY": "http://p", "NO_PROXY": "ccrm.p"}, "http://p"),
        ("http://10.1.2.3", {"HTTP_PROXY": "http://p", "NO_PROXY": "10.0.0.0/8"}, None),
        ("http://[::1]:80", {"HTTP_PROXY": "http://p", "NO_PROXY": "[::1]"}, None),
        ("https://acme.ccrm.pl", {}, None),
    ],
)
def test_the_environments_proxy(url: str, env: dict[str, str], proxy: str | None) -> None:
    assert proxy_for(url, env) == proxy


def test_messages_speak_in_options() -> None:
    names = {"min_length": "--min-length", "max_length": "--max-length", "name": "NAME"}
    names |= {"options": "--option", "contact_types": "--contact-type"}
    assert in_option_terms("min_length (10) is greater than max_length (5)", names) == (
        "--min-length (10) is greater than --max-length (5)"
    )
    assert in_option_terms("options[1] must be a non-blank string", names) == (
        "--option #2 must be a non-blank string"
    )
    assert in_option_terms("contact_types must name at least one of: person", names) == (
        "--contact-type must name at least one of: person"
    )
    assert in_option_terms("name must be a non-blank string", names) == (
        "NAME must be a non-blank string"
    )
