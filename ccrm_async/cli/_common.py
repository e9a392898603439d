"""What the subcommands share: the parser class, connection options, the client,
the progress bar and the summary line."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import IO, Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yarl import URL

from ..client import CCRMClient
from ..config import RetryPolicy
from ..events import EventCallback
from ..sinks import PullReport, Window, parse_duration, rejects_path, sink_format

__all__ = [
    "ACCOUNT_ZONE",
    "TOKEN_ENV",
    "BarProgress",
    "CommandError",
    "CommandParser",
    "UsageError",
    "account_now",
    "add_connection_options",
    "add_debug_option",
    "duration",
    "listen_address",
    "make_client",
    "one_line",
    "output_path",
    "positive_int",
    "proxy_for",
    "sqlite_path",
    "summary_line",
    "when",
    "when_end",
    "when_start",
    "window_size",
]

#: CCRM reports call dates in Polish time, without a zone.
ACCOUNT_ZONE = "Europe/Warsaw"
#: Where the API key comes from; never from an argument.
TOKEN_ENV = "CCRM_TOKEN"  # noqa: S105 - the variable's name, not a key


class UsageError(Exception):
    """A bad command line or missing configuration: exit status 2."""


class CommandError(Exception):
    """The command cannot do what was asked (not an API error): exit status 1."""


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one ``error:`` line (after the usage)
    and exit status 2, with abbreviated options switched off."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            # Name unknown options but never echo values: one could be a key.
            options = sorted({extra.split("=", 1)[0] for extra in extras if extra.startswith("-")})
            shown = " ".join(options) if options else f"{len(extras)} extra value(s)"
            hint = ""
            if any("token" in option or "key" in option for option in options):
                hint = f" (the API key is read from {TOKEN_ENV} only)"
            self.error(f"unrecognized arguments: {shown}{hint}")
        return parsed

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {one_line(message)}\n")


def one_line(text: str) -> str:
    """*text* on one line (CR and LF escaped), with the API key blanked out if
    it somehow appears."""
    token = os.environ.get(TOKEN_ENV, "")
    if len(token) >= 4:
        text = text.replace(token, "***")
    return text.replace("\r", "\\r").replace("\n", "\\n")


# -- option types (argparse turns their ArgumentTypeError into a usage error) ----------


def when(text: str, *, end: bool = False) -> datetime:
    """``YYYY-MM-DD HH:MM:SS`` (or ``T`` between, seconds optional), or
    ``YYYY-MM-DD``: the day's first second, or its last one with *end*."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, time_of_day(23, 59, 59) if end else time_of_day(0))
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DD', got {text!r}"
        ) from None
    if moment.tzinfo is not None:
        raise argparse.ArgumentTypeError(
            f"give the time without a zone, in the account's time ({ACCOUNT_ZONE}): {text!r}"
        )
    return moment.replace(microsecond=0)


def when_start(text: str) -> datetime:
    """A range's start: a bare day means its 00:00:00."""
    return when(text)


def when_end(text: str) -> datetime:
    """A range's end: a bare day means its 23:59:59."""
    return when(text, end=True)


def duration(text: str) -> timedelta:
    """A duration option: ``30m``, ``6h``, ``1d``, ``1h30m``..."""
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def window_size(text: str) -> timedelta:
    """``--window``: a duration of at least one minute."""
    value = duration(text)
    if value.total_seconds() < 60:
        raise argparse.ArgumentTypeError(f"a window must be at least 1m, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """A number of seconds above 0 (``--timeout``, ``--refresh-every``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def output_path(text: str) -> Path:
    path = Path(text)
    if sink_format(path) is None:
        raise argparse.ArgumentTypeError(
            f"cannot tell the format of {text!r}: end it with .jsonl, .csv or .sqlite"
        )
    return path


def sqlite_path(text: str) -> Path:
    path = Path(text)
    if sink_format(path) != "sqlite":
        raise argparse.ArgumentTypeError(f"expected a .sqlite file, got {text!r}")
    return path


def _base_url(text: str) -> str:
    url = URL(text)
    if url.scheme not in ("http", "https") or not url.host:
        raise argparse.ArgumentTypeError(f"expected an http(s) URL, got {text!r}")
    return text


def _proxy_url(text: str) -> str:
    url = URL(text)
    if url.scheme not in ("http", "https") or not url.host:
        raise argparse.ArgumentTypeError(f"expected an http(s) proxy URL, got {text!r}")
    return text


def _egress_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address: {text!r}") from None


def listen_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a pair."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


# -- shared options --------------------------------------------------------------------


def add_debug_option(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand's default must not undo `ccrm-async --debug ...`.
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and log each request (method, path, status) on stderr",
    )


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """``--account``/``--base-url``, ``--egress-ip`` and ``--retries``."""
    group = parser.add_argument_group("connection (the API key comes from CCRM_TOKEN only)")
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--account",
        metavar="NAME",
        help="the account: https://NAME.ccrm.pl (default: env CCRM_ACCOUNT)",
    )
    where.add_argument(
        "--base-url",
        metavar="URL",
        type=_base_url,
        help="the API's address instead, e.g. the emulator's (default: env CCRM_BASE_URL)",
    )
    group.add_argument(
        "--egress-ip",
        metavar="IP",
        type=_egress_ip,
        help="the local address every connection leaves from (the account's IP allow-list)",
    )
    group.add_argument(
        "--proxy",
        metavar="URL",
        type=_proxy_url,
        help="an HTTP proxy for every request and download, e.g. http://proxy:3128 "
        "(default: HTTPS_PROXY, or HTTP_PROXY for an http:// API, unless NO_PROXY names the host)",
    )
    group.add_argument(
        "--retries",
        metavar="N",
        type=positive_int,
        default=5,
        help="attempts per request, the first included (5)",
    )


def proxy_for(url: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The proxy the environment names for *url*: ``HTTPS_PROXY`` for an
    ``https://`` URL, ``HTTP_PROXY`` for ``http://`` (the lower-case name
    first, as curl and urllib read them), none when ``NO_PROXY`` lists the host,
    one of its parent domains or ``*``. *environ* defaults to the process's
    environment."""
    env = os.environ if environ is None else environ

    def variable(name: str) -> str:
        return (env.get(name) or env.get(name.upper()) or "").strip()

    target = URL(url)
    if not target.host or target.scheme not in ("http", "https"):
        return None
    if _bypassed(target.host, variable("no_proxy")):
        return None
    proxy = variable(f"{target.scheme}_proxy")
    if proxy and "://" not in proxy:
        proxy = "http://" + proxy  # "proxy:3128", as curl reads it
    return proxy or None


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` (comma-separated: ``*``, host names matching
    themselves and their subdomains, with or without a leading dot, IP
    addresses and CIDR networks; ports ignored) lists *host*."""
    host = host.lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in no_proxy.lower().split(","):
        entry = entry.strip()
        if entry == "*":
            return True
        if entry.startswith("[") and "]" in entry:  # [::1]:8080
            entry = entry[1 : entry.index("]")]
        elif entry.count(":") == 1:  # host:port
            entry = entry.split(":", 1)[0]
        entry = entry.lstrip(".").rstrip(".")
        if not entry:
            continue
        if address is not None and "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        if host == entry or host.endswith("." + entry):
            return True
    return False


def _api_url(args: argparse.Namespace) -> str:
    """The API's address the options and the environment point at."""
    base_url = args.base_url or os.environ.get("CCRM_BASE_URL", "").strip()
    if base_url:
        return str(base_url)
    account = (args.account or os.environ.get("CCRM_ACCOUNT", "")).strip().lower()
    return f"https://{account}.ccrm.pl"


def make_client(
    args: argparse.Namespace,
    *,
    concurrency: int = 8,
    strict: bool = False,
    on_event: EventCallback | None = None,
) -> CCRMClient:
    """A client from the connection options and the environment; ``--proxy``,
    else the environment's proxy for the API's address (see :func:`proxy_for`).

    Raises :class:`UsageError` when the account or the key is missing, and
    :class:`~ccrm_async.ConfigurationError` when a setting is malformed.
    """
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise UsageError(f"no API key: set {TOKEN_ENV} (it is never read from the command line)")
    account = args.account
    base_url = args.base_url
    if (
        not account
        and not base_url
        and not (os.environ.get("CCRM_ACCOUNT") or os.environ.get("CCRM_BASE_URL"))
    ):
        raise UsageError(
            "no CCRM account: pass --account NAME or --base-url URL, "
            "or set CCRM_ACCOUNT or CCRM_BASE_URL"
        )
    proxy = getattr(args, "proxy", None) or proxy_for(_api_url(args))
    return CCRMClient(
        account=account,
        token=token,
        base_url=base_url,
        concurrency=concurrency,
        local_addr=args.egress_ip,
        proxy=proxy,
        retry=RetryPolicy(max_attempts=args.retries),
        strict=strict,
        on_event=on_event,
    )


def account_now() -> datetime:
    """Now in the account's time (Europe/Warsaw), naive and to the second; the
    machine's local time when the zone database is missing."""
    try:
        zone = ZoneInfo(ACCOUNT_ZONE)
    except ZoneInfoNotFoundError:
        return datetime.now().replace(microsecond=0)
    return datetime.now(zone).replace(tzinfo=None, microsecond=0)


# -- progress and summary ------------------------------------------------------------------


class BarProgress:
    """A :class:`~ccrm_async.sinks.PullProgress` drawn with tqdm on stderr, only
    when stderr is a terminal; a resume is announced either way."""

    def __init__(
        self, output: Path, *, stream: IO[str] | None = None, enabled: bool | None = None
    ) -> None:
        self._output = output
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty() if enabled is None else enabled
        self._bar: Any = None
        self._calls = 0
        self._notes = 0
        self._shown = 0.0

    def start(self, windows: int, skipped: int) -> None:
        if skipped:
            print(
                f"resuming: {skipped} of {windows + skipped} windows already in {self._output}",
                file=self._stream,
                flush=True,
            )
        if self._enabled and windows:
            from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm ships no types

            self._bar = tqdm(
                total=windows,
                unit="window",
                file=self._stream,
                dynamic_ncols=True,
                leave=False,
            )

    def window(self, window: Window) -> None:
        if self._bar is not None:
            self._bar.set_description_str(f"{window.start:%Y-%m-%d %H:%M}", refresh=False)

    def records(self, calls: int, notes: int) -> None:
        self._calls += calls
        self._notes += notes
        if self._bar is not None and time.monotonic() - self._shown > 0.2:
            self._shown = time.monotonic()
            self._bar.set_postfix(calls=self._calls, notes=self._notes)

    def window_done(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix(calls=self._calls, notes=self._notes, refresh=False)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.close()


def summary_line(report: PullReport, output: Path, *, state: str = "done") -> str:
    """One line about a pull. *state* is ``"done"``, ``"interrupted"`` or ``"failed"``."""
    r = report
    counts = (
        f"{r.records} calls, {r.notes} notes, {r.pages} pages, {r.requests} requests, "
        f"{r.retries} retries, {r.rate_limit_pauses} rate-limit pauses, "
        f"{r.duplicates_dropped} duplicates dropped, {r.suspected_misses} suspected misses"
        f"{_data_notes(r, output)}, {r.elapsed:.1f}s"
    )
    windows = f"{r.finished} of {r.windows} windows"
    if r.skipped:
        windows += f" ({r.skipped} already done)"
    if state == "done":
        return f"done: {counts}; {windows} into {output}{_open_notes(r)}"
    return f"{state}: {counts}; {windows} kept in {output}; run the same command again to continue"


def _data_notes(r: PullReport, output: Path) -> str:
    """The summary's words on bad data: rejected records and where, bent values."""
    where = "table rejects" if sink_format(output) == "sqlite" else str(rejects_path(output))
    text = f", {r.rejected} rejected" + (f" (in {where})" if r.rejected else "")
    return text + f", {r.bent} bent values, {r.repair_passes} repair passes"


def _open_notes(r: PullReport) -> str:
    """The summary's words on windows that the next run fetches again."""
    text = ""
    if r.open:
        text += f"; {r.open} windows still open (the next run fetches them again)"
    if r.incomplete:
        text += (
            f"; {r.incomplete} windows with {r.suspected_misses} suspected misses left "
            "after repair passes (left unfinished)"
        )
    return text
