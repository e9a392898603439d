"""``ccrm-async thulium serve|build``: the Thulium lookup's commands.

``thulium serve --contacts FILE [--contacts FILE ...] --listen HOST:PORT [--path PATH]``
    Serves the lookup from CCRM export files (people or organisations, told
    apart by their columns; ``--people``/``--organisations`` name them), or
    from a directory file (``--directory``, built by ``thulium build`` or by a
    previous serve). Needs no CCRM account, unless ``--refresh-every`` asks it
    to export from CCRM periodically (then it also takes the export callbacks,
    on the same address, under ``/ccrm-export``). Secrets come from the
    environment: ``THULIUM_BASIC_PASSWORD`` (with ``--basic-auth-user``) and
    ``THULIUM_PATH_TOKEN`` (with ``--path-token``). Refuses to serve nothing:
    a file that yields no contacts, or that it cannot read, is an error (exit
    1, the file named). Prints the endpoint's real listening address on
    stderr, and a warning when it listens beyond loopback with no access
    control; serves until SIGINT (exit 130) or SIGTERM (exit 143), then prints
    what it answered.

``thulium build --out directory.sqlite --listen HOST:PORT [--public-url URL]``
    Exports people and organisations from CCRM through a callback receiver on
    ``--listen`` (reachable by CCRM at ``--public-url``), builds the directory
    and saves it to ``--out``. An existing ``--out`` is replaced only when it
    is a directory file (recognised by its SQLite ``application_id``) and
    ``--overwrite`` is given; anything else there is refused (exit 2) and left
    byte for byte as it was. A running ``serve --directory`` of that file
    picks the new one up.

Exit statuses and errors are the main command line's (:mod:`ccrm_async.cli`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from ..client import CCRMClient
from ..exports import ExportReceiver
from ..thulium import (
    DEFAULT_FIELDS,
    DEFAULT_PATH,
    LOOKUP_SERVICE,
    THULIUM_FIELDS,
    ContactDirectory,
    DirectoryStats,
    LookupServer,
    RefreshOptions,
    create_lookup_app,
    mask_phone,
    normalize_phone,
)
from ..thulium.access import parse_networks
from ..thulium.files import file_sources
from ..thulium.store import DirectoryError, check_replaceable
from ._common import (
    CommandError,
    UsageError,
    _base_url,
    add_connection_options,
    add_debug_option,
    listen_address,
    make_client,
    positive_int,
    positive_seconds,
    sqlite_path,
)

__all__ = [
    "BASIC_PASSWORD_ENV",
    "PATH_TOKEN_ENV",
    "demo_lookup",
    "load_custom_field_names",
    "register",
    "run_build",
    "run_serve",
]

#: The environment variable holding the Basic-auth password for ``serve``.
BASIC_PASSWORD_ENV = "THULIUM_BASIC_PASSWORD"  # noqa: S105 - a variable's name
#: The environment variable holding the path token for ``serve``.
PATH_TOKEN_ENV = "THULIUM_PATH_TOKEN"  # noqa: S105 - a variable's name

log = logging.getLogger("ccrm_async.thulium")


# -- option types ------------------------------------------------------------------------


def _fields(value: str) -> frozenset[str]:
    names = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = sorted(names - THULIUM_FIELDS)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(THULIUM_FIELDS))}"
        )
    return names


def _network(value: str) -> str:
    try:
        parse_networks([value])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value.strip()


def _count_or_zero(value: str) -> int:
    """A whole number of at least 1, or 0 (``--max-numbers-per-minute``: 0 is no limit)."""
    if value.strip() == "0":
        return 0
    try:
        return positive_int(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected 0 (no limit) or a whole number above 0, got {value!r}"
        ) from None


def _export_options(parser: Any) -> None:  # a parser or an argument group
    parser.add_argument(
        "--include-sensitive",
        action="store_true",
        help="also export PESEL and identity-document columns (off: not stored at all)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=1800.0,
        metavar="SECONDS",
        help="seconds to wait for each export (1800)",
    )


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    thulium = commands.add_parser(
        "thulium",
        help="Thulium external-CRM lookup: serve it, or build its contact directory",
        description="Thulium asks GET <path>?phone_number=...; answer from CCRM contacts.",
    )
    add_debug_option(thulium)
    sub = thulium.add_subparsers(dest="thulium_command", required=True, metavar="COMMAND")
    _add_serve(sub)
    _add_build(sub)


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve",
        help="serve the lookup endpoint from export files or a directory file",
        description=(
            "Serve the lookup from CCRM export files or a directory file, until "
            "SIGINT or SIGTERM. Slow clients are cut off: a connection that has not "
            "sent a whole request head within 10 s, or sits idle for 15 s between "
            "requests, is closed."
        ),
    )
    source = serve.add_argument_group("contacts")
    source.add_argument(
        "--contacts",
        action="append",
        default=[],
        metavar="FILE",
        help="a CCRM export file of people or organisations (told apart by its columns)",
    )
    source.add_argument("--people", action="append", default=[], metavar="FILE")
    source.add_argument("--organisations", action="append", default=[], metavar="FILE")
    source.add_argument(
        "--directory",
        type=Path,
        metavar="FILE.sqlite",
        help="directory file: built from the files when given, else opened as it is",
    )
    source.add_argument(
        "--custom-field-names",
        type=Path,
        metavar="FILE.json",
        help="custom-field names: {uuid: name}, or the output of 'fields list --json'",
    )
    serve.add_argument("--listen", type=listen_address, required=True, metavar="HOST:PORT")
    serve.add_argument("--path", default=DEFAULT_PATH, help=f"endpoint path ({DEFAULT_PATH})")
    access = serve.add_argument_group("access control (all off by default)")
    access.add_argument(
        "--allow-ip",
        action="append",
        type=_network,
        default=None,
        metavar="CIDR",
        help="allowed peer address or network (repeatable)",
    )
    access.add_argument(
        "--basic-auth-user",
        metavar="USER",
        help=f"require Basic auth; the password from {BASIC_PASSWORD_ENV}",
    )
    access.add_argument(
        "--path-token",
        action="store_true",
        help=f"serve at /<token><path>, the token from {PATH_TOKEN_ENV}",
    )
    access.add_argument(
        "--max-numbers-per-minute",
        type=_count_or_zero,
        default=600,
        metavar="N",
        help="distinct numbers one address may ask for per minute (600; 0: no limit)",
    )
    answer = serve.add_argument_group("answer fields")
    answer.add_argument(
        "--fields",
        type=_fields,
        default=DEFAULT_FIELDS,
        metavar="A,B,C",
        help="allow-list of answer fields (default: all documented but pesel, birthdate)",
    )
    answer.add_argument("--expose-pesel", action="store_true")
    answer.add_argument("--expose-birthdate", action="store_true")
    answer.add_argument("--expose-id-document", action="store_true")
    refresh = serve.add_argument_group("periodic refresh from CCRM (needs an account)")
    refresh.add_argument(
        "--refresh-every",
        type=positive_seconds,
        metavar="SECONDS",
        help="export and rebuild this often",
    )
    refresh.add_argument(
        "--public-url",
        type=_base_url,
        metavar="URL",
        help="how CCRM reaches this server, for the export callbacks (http or https)",
    )
    _export_options(refresh)
    operations = serve.add_argument_group("operations")
    operations.add_argument(
        "--access-log", action="store_true", help="log each lookup (number masked) on stderr"
    )
    operations.add_argument(
        "--metrics",
        action="store_true",
        help="serve Prometheus metrics at /metrics, behind the same access control "
        "(needs the extra: pip install 'ccrm-async[metrics]')",
    )
    add_connection_options(serve)
    add_debug_option(serve)
    serve.set_defaults(run=run_serve)


def _add_build(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    build = sub.add_parser(
        "build",
        help="export contacts from CCRM and save the lookup directory",
        description=(
            "Export people and organisations from CCRM and save the lookup directory. "
            "An existing --out is replaced only with --overwrite, and only when it is "
            "a directory file this command wrote; anything else is refused."
        ),
    )
    build.add_argument("--out", required=True, type=sqlite_path, metavar="FILE.sqlite")
    build.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out when it holds a directory built earlier (never another file)",
    )
    build.add_argument(
        "--listen",
        type=listen_address,
        required=True,
        metavar="HOST:PORT",
        help="where the export callback receiver listens",
    )
    build.add_argument(
        "--public-url",
        type=_base_url,
        metavar="URL",
        help="how CCRM reaches the receiver (default: --listen)",
    )
    _export_options(build)
    add_connection_options(build)
    add_debug_option(build)
    build.set_defaults(run=run_build)


# -- helpers -----------------------------------------------------------------------------


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def load_custom_field_names(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{uuid: name}`` from a JSON file holding that object, or a list of
    objects with ``uuid`` and ``name`` (``ccrm-async fields list --json``).

    Raises :class:`CommandError` naming the file when it cannot be read or is
    not one of those shapes.
    """
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError:
        raise CommandError(f"{path}: not JSON") from None
    if isinstance(data, dict):
        return {str(k): str(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return {
            str(item["uuid"]): str(item["name"])
            for item in data
            if isinstance(item, dict) and item.get("uuid") and item.get("name")
        }
    raise CommandError(f"{path}: expected a JSON object or a list of fields")


def _summary(stats: DirectoryStats) -> str:
    return (
        f"{stats.people} people, {stats.organisations} organisations, "
        f"{stats.numbers} numbers ({stats.shared_numbers} shared, "
        f"{stats.skipped_phones} not phone numbers)"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def _served_data(args: argparse.Namespace) -> str:
    fields = set(args.fields)
    if args.expose_pesel:
        fields.add("pesel")
    if args.expose_birthdate:
        fields.add("birthdate")
    if args.expose_id_document:
        fields.add("identity document")
    return ", ".join(sorted(fields))


# -- serve -------------------------------------------------------------------------------


def _check_serve(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """Usage checks before anything is read; the Basic password and path token."""
    if not (args.contacts or args.people or args.organisations or args.directory):
        raise UsageError("give --contacts FILE (or --people/--organisations), or --directory FILE")
    password = os.environ.get(BASIC_PASSWORD_ENV) if args.basic_auth_user else None
    if args.basic_auth_user and not password:
        raise UsageError(f"--basic-auth-user needs the password in {BASIC_PASSWORD_ENV}")
    token = os.environ.get(PATH_TOKEN_ENV) if args.path_token else None
    if args.path_token and not token:
        raise UsageError(f"--path-token needs the token in {PATH_TOKEN_ENV}")
    if args.refresh_every is not None and not args.public_url:
        raise UsageError("--refresh-every needs --public-url (where CCRM sends export callbacks)")
    files = bool(args.contacts or args.people or args.organisations)
    if files and args.directory is not None:
        try:
            check_replaceable(args.directory)
        except DirectoryError as exc:
            raise UsageError(exc.message) from None
    return password, token


async def _open_directory(args: argparse.Namespace, names: Mapping[str, str]) -> ContactDirectory:
    files = [*args.contacts, *args.people, *args.organisations]
    if files:
        sources = file_sources(
            args.contacts,
            people=args.people,
            organisations=args.organisations,
            require_contacts=True,
        )
        directory = await asyncio.to_thread(
            ContactDirectory.build_from, sources, path=args.directory, custom_field_names=names
        )
        where = ", ".join(str(f) for f in files)
    else:
        directory = ContactDirectory.open(args.directory)
        where = str(args.directory)
    if directory.stats.numbers == 0:
        directory.close()
        raise CommandError(f"no phone numbers in {where}: nothing to serve")
    return directory


async def run_serve(args: argparse.Namespace, *, ready: asyncio.Event | None = None) -> int:
    """``thulium serve``: serves until cancelled (SIGINT, SIGTERM); prints what it
    answered either way. *ready* is set once the server listens."""
    password, token = _check_serve(args)
    # The account and key are checked before anything is read (a client opens
    # no connection until it is used).
    crm = make_client(args) if args.refresh_every is not None else None
    if args.access_log:
        _log_to_stderr()
    names = load_custom_field_names(args.custom_field_names) if args.custom_field_names else {}
    directory = await _open_directory(args, names)
    try:
        app = create_lookup_app(
            directory,
            path=args.path,
            fields=args.fields,
            expose_pesel=args.expose_pesel,
            expose_birthdate=args.expose_birthdate,
            expose_id_document=args.expose_id_document,
            allow_ips=args.allow_ip,
            basic_auth=(args.basic_auth_user, password) if password else None,
            path_token=token,
            max_numbers_per_minute=args.max_numbers_per_minute or None,
            metrics=args.metrics,
        )
    except (ImportError, ValueError) as exc:
        directory.close()
        raise UsageError(str(exc)) from None
    try:
        async with contextlib.AsyncExitStack() as stack:
            if crm is not None:
                await _start_refresh(args, crm, app, directory, names, stack)
            host, port = args.listen
            server = await stack.enter_async_context(LookupServer(app, host, port))
            _banner(args, directory, server, token)
            if ready is not None:
                ready.set()
            try:
                await asyncio.Event().wait()  # until cancelled
            finally:
                counts = app[LOOKUP_SERVICE].counts
                answered = ", ".join(f"{n}x{status}" for status, n in sorted(counts.items()))
                _say(f"stopped; answered {sum(counts.values())} lookups ({answered or 'none'})")
    finally:
        directory.close()
    return 0  # not reached: serving ends with a signal


def _banner(
    args: argparse.Namespace,
    directory: ContactDirectory,
    server: LookupServer,
    token: str | None,
) -> None:
    shown_path = "/<token>" + args.path if token else args.path
    listening = ", ".join(server.listening)
    _say(f"serving {_summary(directory.stats)} at {listening}{shown_path}")
    host = args.listen[0]
    if not _is_loopback(host) and not (args.allow_ip or args.basic_auth_user or token):
        _say(
            f"warning: listening on {host} with no access control: anyone who can reach "
            f"this address can read the {_served_data(args)} of "
            f"{directory.stats.contacts} contacts (personal data); restrict it with "
            "--allow-ip, --basic-auth-user or --path-token"
        )


async def _start_refresh(
    args: argparse.Namespace,
    client: CCRMClient,
    app: Any,
    directory: ContactDirectory,
    names: Mapping[str, str],
    stack: contextlib.AsyncExitStack,
) -> None:
    crm = await stack.enter_async_context(client)
    receiver = ExportReceiver(listen=None, public_url=args.public_url)
    receiver.mount(app)
    await stack.enter_async_context(receiver)
    options = RefreshOptions(
        include_sensitive=args.include_sensitive,
        custom_field_names=names or None,
        timeout=args.timeout,
    )
    task = asyncio.create_task(
        directory.refresh_every(args.refresh_every, crm, receiver, options),
        name="thulium-refresh",
    )

    async def stop_refresh() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop_refresh)


# -- build -------------------------------------------------------------------------------


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``--out`` this command may not replace (exit 2), before any request."""
    if not out.parent.is_dir():
        raise UsageError(f"no such directory: {out.parent} (for --out {out})")
    try:
        check_replaceable(out)  # missing, or a directory file
    except DirectoryError as exc:
        raise UsageError(exc.message) from None
    if out.exists() and not overwrite:
        raise UsageError(f"{out} exists (a contact directory): pass --overwrite to replace it")


async def run_build(args: argparse.Namespace) -> int:
    """``thulium build``: export both contact types, build, save to ``--out``."""
    out: Path = args.out
    _check_out(out, args.overwrite)
    started = time.monotonic()
    options = RefreshOptions(include_sensitive=args.include_sensitive, timeout=args.timeout)
    with tempfile.TemporaryDirectory(prefix="ccrm-thulium-") as scratch:
        async with (
            make_client(args) as crm,
            ExportReceiver(
                listen=args.listen, public_url=args.public_url, directory=scratch
            ) as receiver,
        ):
            directory = await ContactDirectory.from_ccrm(crm, receiver, options, path=out)
            stats = directory.stats
            directory.close()
    _say(f"built {out}: {_summary(stats)} in {time.monotonic() - started:.1f} s")
    return 0


# -- the demo's lookup step --------------------------------------------------------------


async def demo_lookup(crm: CCRMClient, *, out: Callable[[str], None] = print) -> None:
    """The lookup part of ``ccrm-async demo``: export both contact types from
    *crm* (the emulator) through a receiver on 127.0.0.1, build a directory in
    memory, serve the endpoint on 127.0.0.1 and ask it for a known and an
    unknown number. Prints (through *out*) three lines, numbers masked."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ccrm-thulium-demo-") as scratch:
        async with ExportReceiver(directory=scratch) as receiver:
            directory = await ContactDirectory.from_ccrm(crm, receiver)
    try:
        out(f"thulium lookup: {_summary(directory.stats)} indexed in "
            f"{time.monotonic() - started:.1f} s")  # fmt: skip
        known = next((c for c in directory.contacts() if c.phones), None)
        if known is None:
            return
        key = normalize_phone(known.phones[0].number)
        async with (
            LookupServer(create_lookup_app(directory)) as server,
            aiohttp.ClientSession() as http,
        ):
            for shown, number in ((mask_phone(key), key), ("<unknown>", "+48100000000")):
                url = f"{server.url}{DEFAULT_PATH}"
                async with http.get(url, params={"phone_number": number}) as resp:
                    body = orjson.loads(await resp.read())
                    fields = ", ".join(sorted(body)) if resp.status == 200 else body["error"]
                    out(f"  GET {DEFAULT_PATH}?phone_number={shown} -> {resp.status}: {fields}")
    finally:
        directory.close()


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
