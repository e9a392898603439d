"""The ``ccrm-async`` command line (also ``python -m ccrm_async``).

Subcommands: ``calls pull``, ``calls sync``, ``export people|organisations``,
``fields list|create|delete``,
``thulium serve|build``, ``emulator`` and ``demo``; each group lives in its own
module here and registers its
parser in :func:`build_parser`.

Exit status: 0 on success, 1 on an API or runtime error, 2 on a usage error
(a bad option, missing configuration), 130 after Ctrl-C and 143 after SIGTERM.
Every failure prints one line starting with ``error:`` on stderr, with a
traceback only under ``--debug``. The API key comes from ``CCRM_TOKEN`` only:
no option takes it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sqlite3
import sys
import traceback
from collections.abc import Sequence

from .. import __version__
from .._serving import signal_handlers
from ..errors import CCRMError, ConfigurationError
from ..sinks import SinkError
from . import _calls, _demo, _emulator, _export, _fields, _thulium
from ._common import CommandError, CommandParser, UsageError, add_debug_option, one_line

__all__ = ["build_parser", "main"]

#: Modules that add subcommands, in the order ``--help`` lists them.
COMMANDS = (_calls, _export, _fields, _thulium, _emulator, _demo)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; each leaf parser sets ``run`` to its coroutine."""
    parser = CommandParser(
        prog="ccrm-async",
        description="Bulk pulls and tools for the Telecube CRM (CCRM) public API. "
        "The API key is read from CCRM_TOKEN.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_debug_option(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(commands)
    return parser


async def _run(args: argparse.Namespace) -> int:
    # SIGTERM cancels the command like Ctrl-C does, so that it cleans up.
    task = asyncio.current_task()
    if task is None:  # not run as a task: nothing to cancel
        code: int = await args.run(args)
        return code
    with signal_handlers(task.cancel, signal.SIGTERM):
        code = await args.run(args)
    return code


def _fail(message: str, code: int, *, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
    return code


def _file_error(exc: sqlite3.Error | OSError, args: argparse.Namespace) -> str:
    """A file error that names its path: the one in the error; for SQLite, whose
    errors name none, the command's ``--out``."""
    if isinstance(exc, OSError):
        if exc.filename is not None:
            reason = exc.strerror or type(exc).__name__
            return f"{reason}: {exc.filename}"
        return str(exc)  # not a file's error (an address in use, say)
    path = getattr(args, "out", None)
    return f"SQLite: {exc}: {path}" if path is not None else f"SQLite: {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a usage error already printed
        return stop.code if isinstance(stop.code, int) else 2
    debug = bool(getattr(args, "debug", False))
    if debug:
        logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
        logging.getLogger("ccrm_async").setLevel(logging.DEBUG)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return _fail("interrupted", 130, debug=False)
    except asyncio.CancelledError:
        return _fail("terminated", 143, debug=False)
    except (UsageError, ConfigurationError) as exc:
        return _fail(str(exc), 2, debug=debug)
    except CCRMError as exc:
        hint = ""
        if exc.status == 401:
            hint = " (check CCRM_TOKEN, and that this machine's IP is allowed for the API)"
        return _fail(f"{exc}{hint}", 1, debug=debug)
    except (CommandError, SinkError) as exc:
        return _fail(str(exc), 1, debug=debug)
    except (sqlite3.Error, OSError) as exc:
        return _fail(_file_error(exc, args), 1, debug=debug)
    except Exception as exc:
        return _fail(
            f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            1,
            debug=debug,
        )
