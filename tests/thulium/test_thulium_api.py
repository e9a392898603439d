"""The public surface of ``ccrm_async.thulium``: explicit, sorted ``__all__`` lists
(ruff's RUF022 order: constants, then classes, then functions, each alphabetical)."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import pytest
from _thulium_fixtures import captured_logs, log_scan  # noqa: F401

import ccrm_async.thulium
from ccrm_async.thulium import ScrubbedServerLog

MODULES = [
    "",
    ".access",
    ".app",
    ".directory",
    ".fields",
    ".files",
    ".metrics",
    ".openapi",
    ".phones",
    ".query",
    ".refresh",
    ".store",
]
PACKAGE = Path(ccrm_async.thulium.__file__).parent


@pytest.mark.parametrize("suffix", MODULES)
def test_all_is_sorted_and_complete(suffix: str) -> None:
    module = importlib.import_module("ccrm_async.thulium" + suffix)
    names = module.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n[0].islower(), n))
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(module, name), name


def test_the_package_reexports_what_users_need() -> None:
    for name in (
        "ContactDirectory",
        "create_lookup_app",
        "normalize_phone",
        "PhoneNumberError",
        "openapi_document",
        "LookupServer",
        "CONTENT_TYPE",
    ):
        assert name in ccrm_async.thulium.__all__


def test_scrubbed_server_log_keeps_only_safe_text() -> None:
    log = ScrubbedServerLog()
    try:
        raise ValueError("GET /customers.json?phone_number=500600700 HTTP/1.1")
    except ValueError:
        log.exception("Error handling request from %s", "127.0.0.1")
    log.debug("odd %d format", "not a number\r\nX: y")
    log.info("no args %s")
    records = [r for r in captured_logs() if r.name == "ccrm_async.thulium.http"]
    messages = [r.getMessage() for r in records]
    assert messages[0] == "Error handling request from 127.0.0.1 (ValueError)"
    assert all(r.exc_info is None for r in records)
    assert "\r" not in messages[1] and "\n" not in messages[1]
    assert records[0].levelno == logging.ERROR


def test_every_module_is_checked_and_none_parses_a_command_line() -> None:
    """The command line lives in ``ccrm_async.cli``; the library has no argparse."""
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == {m.lstrip(".") for m in MODULES if m}
    for path in PACKAGE.glob("*.py"):
        assert "argparse" not in path.read_text(encoding="utf-8"), path.name
