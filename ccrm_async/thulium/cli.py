"""``ccrm-async thulium serve|build``: the command-line side of the lookup.

The main command line adds these with :func:`add_thulium_commands` and runs
them with :func:`run_thulium`; ``python -m ccrm_async.thulium.cli`` runs the
same two commands on their own. :func:`demo_lookup` is the lookup part of
``ccrm-async demo``.

``thulium serve --contacts FILE [--contacts FILE ...] --listen HOST:PORT [--path PATH]``
    Serves the lookup from CCRM export files (people or organisations, told
    apart by their columns; ``--people``/``--organisations`` name them), or
    from a directory file (``--directory``, built by ``thulium build`` or
    by a previous serve). Needs no CCRM account, unless ``--refresh-every``
    asks it to export from CCRM periodically (then it also takes the export
    callbacks, on the same address, under ``/ccrm-export``). Secrets come from
    the environment: ``THULIUM_BASIC_PASSWORD`` (with ``--basic-auth-user``)
    and ``THULIUM_PATH_TOKEN`` (with ``--path-token``). Prints one line with
    the endpoint's URL, then serves until SIGINT or SIGTERM.

``thulium build --out directory.sqlite --listen HOST:PORT [--public-url URL]``
    Exports people and organisations from CCRM through a callback receiver
    on ``--listen`` (reachable by CCRM at ``--public-url``), builds the
    directory and saves it to ``--out`` (replacing the file atomically; a
    running ``serve --directory`` of that file picks it up). The key comes
    from ``CCRM_TOKEN``.

Exit status 0 on success, 2 on a usage error (one ``error:`` line); API and
runtime errors are raised for the main command line to report (status 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from .._serving import signal_handlers
from ..client import CCRMClient
from ..errors import CCRMError
from ..exports import ExportReceiver
from .app import LOOKUP_SERVICE, LookupServer, create_lookup_app
from .directory import ContactDirectory, DirectoryStats
from .fields import DEFAULT_FIELDS, THULIUM_FIELDS
from .openapi import DEFAULT_PATH
from .phones import mask_phone, normalize_phone

__all__ = [
    "BASIC_PASSWORD_ENV",
    "PATH_TOKEN_ENV",
    "add_thulium_commands",
    "build_parser",
    "demo_lookup",
    "load_custom_field_names",
    "main",
    "run_build",
    "run_serve",
    "run_thulium",
]

#: The environment variable holding the Basic-auth password for ``serve``.
BASIC_PASSWORD_ENV = "THULIUM_BASIC_PASSWORD"  # noqa: S105 - a variable's name
#: The environment variable holding the path token for ``serve``.
PATH_TOKEN_ENV = "THULIUM_PATH_TOKEN"  # noqa: S105 - a variable's name


class _Usage(Exception):
    """A bad combination of options: exit status 2."""


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _fields(value: str) -> frozenset[str]:
    names = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = sorted(names - THULIUM_FIELDS)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(THULIUM_FIELDS))}"
        )
    return names


def _positive(value: str) -> float:
    # Like ccrm_async.cli's positive_seconds; this module does not import the
    # main command line, which imports it.
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return number


def _connection_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("CCRM account (the key comes from CCRM_TOKEN)")
    group.add_argument("--account", help="CCRM account name (https://NAME.ccrm.pl)")
    group.add_argument("--base-url", help="API base URL instead of the account's (emulator)")
    group.add_argument("--egress-ip", help="local address to send CCRM requests from")


def _export_options(parser: Any) -> None:  # a parser or an argument group
    parser.add_argument(
        "--include-sensitive",
        action="store_true",
        help="also export PESEL and identity-document columns (off: not stored at all)",
    )
    parser.add_argument(
        "--timeout", type=_positive, default=1800.0, help="seconds to wait for each export (1800)"
    )


def add_thulium_commands(
    subparsers: Any,
    *,
    connection_options: Callable[[argparse.ArgumentParser], None] | None = None,
    make_client: Callable[[argparse.Namespace], CCRMClient] | None = None,
) -> argparse.ArgumentParser:
    """Add ``thulium serve`` and ``thulium build`` to the main parser's *subparsers*
    (the object ``add_subparsers()`` returned); returns the ``thulium`` parser.

    *connection_options* adds the options every subcommand takes (``--account``,
    ``--base-url``, ``--egress-ip`` ...) to a parser; by default both commands
    get a plain set of those three. *make_client* builds the
    :class:`~ccrm_async.CCRMClient` from the parsed arguments (``build``, and
    ``serve --refresh-every``); by default ``CCRMClient(account=, base_url=,
    local_addr=)`` with the key from ``CCRM_TOKEN``.
    """
    thulium = subparsers.add_parser(
        "thulium",
        help="Thulium external-CRM lookup: serve it, or build its contact directory",
        description="Thulium asks GET <path>?phone_number=...; answer from CCRM contacts.",
    )
    sub = thulium.add_subparsers(dest="thulium_command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="serve the lookup endpoint from export files or a directory file",
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
        metavar="FILE.sqlite",
        help="directory file: built from the files when given, else opened as it is",
    )
    source.add_argument(
        "--custom-field-names",
        metavar="FILE.json",
        help="custom-field names: {uuid: name}, or the output of 'fields list --json'",
    )
    serve.add_argument("--listen", type=_listen, required=True, metavar="HOST:PORT")
    serve.add_argument("--path", default=DEFAULT_PATH, help=f"endpoint path ({DEFAULT_PATH})")
    access = serve.add_argument_group("access control (all off by default)")
    access.add_argument(
        "--allow-ip",
        action="append",
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
        type=int,
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
        "--refresh-every", type=_positive, metavar="SECONDS", help="export and rebuild this often"
    )
    refresh.add_argument(
        "--public-url", help="how CCRM reaches this server, for the export callbacks"
    )
    _export_options(refresh)
    serve.add_argument(
        "--access-log", action="store_true", help="log each lookup (number masked) on stderr"
    )

    build = sub.add_parser(
        "build",
        help="export contacts from CCRM and save the lookup directory",
    )
    build.add_argument("--out", required=True, metavar="FILE.sqlite")
    build.add_argument(
        "--listen",
        type=_listen,
        required=True,
        metavar="HOST:PORT",
        help="where the export callback receiver listens",
    )
    build.add_argument("--public-url", help="how CCRM reaches the receiver (default: --listen)")
    _export_options(build)
    for command in (serve, build):
        (connection_options or _connection_options)(command)
        if make_client is not None:
            command.set_defaults(thulium_make_client=make_client)
    return thulium  # type: ignore[no-any-return]


def build_parser() -> argparse.ArgumentParser:
    """A parser with just the ``thulium`` commands (for ``python -m``)."""
    parser = argparse.ArgumentParser(prog="ccrm-async")
    add_thulium_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


# -- running ---------------------------------------------------------------------


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def load_custom_field_names(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{uuid: name}`` from a JSON file holding that object, or a list of
    objects with ``uuid`` and ``name`` (``ccrm-async fields list --json``)."""
    data = orjson.loads(Path(path).read_bytes())
    if isinstance(data, dict):
        return {str(k): str(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return {
            str(item["uuid"]): str(item["name"])
            for item in data
            if isinstance(item, dict) and item.get("uuid") and item.get("name")
        }
    raise ValueError(f"{path}: expected a JSON object or a list of fields")


def _client(args: argparse.Namespace) -> CCRMClient:
    make_client = getattr(args, "thulium_make_client", None)
    if make_client is not None:
        return make_client(args)  # type: ignore[no-any-return]
    return CCRMClient(
        account=getattr(args, "account", None),
        base_url=getattr(args, "base_url", None),
        local_addr=getattr(args, "egress_ip", None),
    )


def _summary(stats: DirectoryStats) -> str:
    return (
        f"{stats.people} people, {stats.organisations} organisations, "
        f"{stats.numbers} numbers ({stats.shared_numbers} shared, "
        f"{stats.skipped_phones} not phone numbers)"
    )


async def _open_directory(args: argparse.Namespace, names: Mapping[str, str]) -> ContactDirectory:
    files = [*args.contacts, *args.people, *args.organisations]
    if files:
        sources = ContactDirectory.file_sources(
            args.contacts, people=args.people, organisations=args.organisations
        )
        return await asyncio.to_thread(
            ContactDirectory.build_from, sources, path=args.directory, custom_field_names=names
        )
    return ContactDirectory.open(args.directory)


async def run_serve(args: argparse.Namespace, *, ready: asyncio.Event | None = None) -> int:
    """``thulium serve``: returns the exit status once stopped (SIGINT/SIGTERM,
    or the task cancelled). *ready* is set once the server listens."""
    if not (args.contacts or args.people or args.organisations or args.directory):
        return _usage("give --contacts FILE (or --people/--organisations), or --directory FILE")
    password = os.environ.get(BASIC_PASSWORD_ENV) if args.basic_auth_user else None
    if args.basic_auth_user and not password:
        return _usage(f"--basic-auth-user needs the password in {BASIC_PASSWORD_ENV}")
    token = os.environ.get(PATH_TOKEN_ENV) if args.path_token else None
    if args.path_token and not token:
        return _usage(f"--path-token needs the token in {PATH_TOKEN_ENV}")
    if args.refresh_every is not None and not args.public_url:
        return _usage("--refresh-every needs --public-url (where CCRM sends export callbacks)")
    if args.max_numbers_per_minute < 0:
        return _usage("--max-numbers-per-minute must be >= 0")
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
        )
        async with contextlib.AsyncExitStack() as stack:
            if args.refresh_every is not None:
                await _start_refresh(args, app, directory, names, stack)
            host, port = args.listen
            server = await stack.enter_async_context(LookupServer(app, host, port))
            stop = asyncio.Event()
            stack.enter_context(signal_handlers(stop.set, signal.SIGINT, signal.SIGTERM))
            shown_path = "/<token>" + args.path if token else args.path
            print(f"serving {_summary(directory.stats)} at {server.url}{shown_path}", flush=True)
            if ready is not None:
                ready.set()
            await stop.wait()
            counts = app[LOOKUP_SERVICE].counts
            answered = ", ".join(f"{n}x{status}" for status, n in sorted(counts.items()))
            print(f"stopped; answered {sum(counts.values())} lookups ({answered or 'none'})")
    finally:
        directory.close()
    return 0


async def _start_refresh(
    args: argparse.Namespace,
    app: Any,
    directory: ContactDirectory,
    names: Mapping[str, str],
    stack: contextlib.AsyncExitStack,
) -> None:
    crm = await stack.enter_async_context(_client(args))
    receiver = ExportReceiver(listen=None, public_url=args.public_url)
    receiver.mount(app)
    await stack.enter_async_context(receiver)
    task = asyncio.create_task(
        directory.refresh_every(
            args.refresh_every,
            crm,
            receiver,
            include_sensitive=args.include_sensitive,
            custom_field_names=names or None,
            timeout=args.timeout,
        ),
        name="thulium-refresh",
    )

    async def stop_refresh() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop_refresh)


async def run_build(args: argparse.Namespace) -> int:
    """``thulium build``: export both contact types, build, save to ``--out``."""
    out = Path(args.out)
    if not out.parent.is_dir():
        return _usage(f"no such directory: {out.parent}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ccrm-thulium-") as scratch:
        async with (
            _client(args) as crm,
            ExportReceiver(
                listen=args.listen, public_url=args.public_url, directory=scratch
            ) as receiver,
        ):
            directory = await ContactDirectory.from_ccrm(
                crm,
                receiver,
                path=out,
                include_sensitive=args.include_sensitive,
                timeout=args.timeout,
            )
            stats = directory.stats
            directory.close()
    print(f"built {out}: {_summary(stats)} in {time.monotonic() - started:.1f} s")
    return 0


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


async def run_thulium(args: argparse.Namespace) -> int:
    """Run the ``thulium`` subcommand *args* names (what the main CLI calls)."""
    if args.thulium_command == "serve":
        return await run_serve(args)
    return await run_build(args)


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("ccrm_async.thulium")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ccrm_async.thulium.cli thulium serve|build ...``."""
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(run_thulium(args))
    except KeyboardInterrupt:
        return 130
    except (CCRMError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
