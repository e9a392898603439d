"""Helpers and fixtures for the Thulium tests (imported by each test module; not a
conftest.py, so that ``from conftest import ...`` keeps meaning the root one).

- synthetic contacts (made-up names, numbers in ranges chosen by the tests,
  PESELs generated here with a valid checksum only where a test proves they
  are *not* shown);
- :func:`raw_request`: one HTTP request written byte for byte on a real
  socket, so the tests control the exact query string and headers;
- ``log_scan`` (autouse where imported): every log record of the test, at
  DEBUG from every logger, is checked for phone numbers of 9+ digits, e-mail
  addresses, checksum-valid PESELs and raw CR/LF (RELIABILITY 29, 35);
- :func:`validate`: the part of JSON Schema the OpenAPI document uses (type,
  properties, required, additionalProperties, items, minItems, maxLength,
  format date, $ref), enough to check every answer against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import date
from typing import Any

import pytest

from ccrm_async.models.contacts import Address, Email, Organisation, Person, Phone

PESEL_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)


def valid_pesel(born: date, serial: int = 1234) -> str:
    """A checksum-valid PESEL for *born* (generated, belongs to nobody we know of)."""
    month = born.month + {1800: 80, 1900: 0, 2000: 20, 2100: 40, 2200: 60}[born.year // 100 * 100]
    digits = f"{born.year % 100:02d}{month:02d}{born.day:02d}{serial:04d}"
    weighted = sum(int(d) * w for d, w in zip(digits, PESEL_WEIGHTS, strict=True))
    return digits + str((10 - weighted % 10) % 10)


def is_valid_pesel(text: str) -> bool:
    if len(text) != 11 or not text.isdigit():
        return False
    weighted = sum(int(d) * w for d, w in zip(text, PESEL_WEIGHTS, strict=False))
    return (10 - weighted % 10) % 10 == int(text[10])


def person(
    first: str = "Adam",
    last: str = "Testowy",
    *phones: str,
    emails: tuple[str, ...] = (),
    **kw: Any,
) -> Person:
    return Person(
        first_name=first,
        last_name=last,
        phones=tuple(Phone(p) for p in phones),
        emails=tuple(Email(e) for e in emails),
        **kw,
    )


def organisation(name: str, *phones: str, **kw: Any) -> Organisation:
    return Organisation(name=name, phones=tuple(Phone(p) for p in phones), **kw)


def address(name: str | None, city: str, **kw: Any) -> Address:
    return Address(name=name, city=city, **kw)


# -- raw HTTP on a real socket ----------------------------------------------------


async def raw_request(
    port: int,
    target: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    method: bytes = b"GET",
    host: str = "127.0.0.1",
) -> tuple[int, dict[str, str], bytes]:
    """Send one request exactly as given (``Connection: close``); return
    ``(status, headers with lower-case names, body)``."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        lines = [method + b" " + target + b" HTTP/1.1", b"Host: thulium.test"]
        lines += [name + b": " + value for name, value in headers or []]
        lines.append(b"Connection: close")
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, body


# -- log scan ----------------------------------------------------------------------

_PHONE = re.compile(r"\d(?:[ \-]?\d){8,}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
_ELEVEN = re.compile(r"(?<!\d)\d{11}(?!\d)")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def scan_problems(records: list[logging.LogRecord]) -> list[str]:
    """What the log scan finds wrong in *records* (empty when clean)."""
    problems = []
    formatter = logging.Formatter()
    for record in records:
        message = record.getMessage()
        where = f"{record.name}: {message!r}"
        if "\r" in message or "\n" in message:
            problems.append(f"raw CR/LF in {where}")
        if record.exc_info:  # a traceback is printed too: scan it for data
            message += " " + formatter.formatException(record.exc_info)
        # A random uuid's last group can hold 11 digits in a row: not data.
        without_uuids = _UUID.sub("<uuid>", message)
        if _PHONE.search(without_uuids):
            problems.append(f"phone-like number in {where}")
        if _EMAIL.search(message):
            problems.append(f"e-mail address in {where}")
        if any(is_valid_pesel(m) for m in _ELEVEN.findall(without_uuids)):
            problems.append(f"PESEL in {where}")
    return problems


_current: list[_Collect] = []


def captured_logs() -> list[logging.LogRecord]:
    """The log records of the running test so far (see ``log_scan``)."""
    return list(_current[-1].records)


@pytest.fixture(autouse=True)
def log_scan() -> Iterator[None]:
    """Capture every log record of the test at DEBUG and scan it afterwards."""
    handler = _Collect()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    _current.append(handler)
    try:
        yield
    finally:
        _current.remove(handler)
        root.removeHandler(handler)
        root.setLevel(level)
    problems = scan_problems(handler.records)
    assert problems == [], "\n".join(problems[:10])


# -- a small JSON Schema validator ---------------------------------------------------

_TYPES: Mapping[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def validate(instance: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> list[str]:
    """Violations of *schema* by *instance* (``$ref`` resolved in *root*)."""
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return validate(instance, target, root)
    errors: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(
            isinstance(instance, _TYPES[t]) and not (t != "boolean" and isinstance(instance, bool))
            for t in types
        )
        if not ok:
            return [f"{instance!r:.60} is not of type {types}"]
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        errors += [f"missing {key!r}" for key in schema.get("required", []) if key not in instance]
        extra = schema.get("additionalProperties", True)
        for key, value in instance.items():
            if key in properties:
                errors += [f"{key}: {e}" for e in validate(value, properties[key], root)]
            elif extra is False:
                errors.append(f"unexpected key {key!r}")
            elif isinstance(extra, dict):
                errors += [f"{key}: {e}" for e in validate(value, extra, root)]
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            errors.append(f"fewer than {schema['minItems']} items")
        if "items" in schema:
            for i, item in enumerate(instance):
                errors += [f"[{i}]: {e}" for e in validate(item, schema["items"], root)]
    if isinstance(instance, str):
        if len(instance) > schema.get("maxLength", len(instance)):
            errors.append("too long")
        if schema.get("format") == "date":
            try:
                date.fromisoformat(instance)
            except ValueError:
                errors.append(f"{instance!r} is not a date")
    return errors


# -- serving an app on 127.0.0.1 ----------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[tuple[str, int]]:
    """Serve *app* on 127.0.0.1 with a free port; yield ``(base url, port)``."""
    from ccrm_async.thulium import LookupServer

    async with LookupServer(app, "127.0.0.1", 0) as server:
        assert server.url is not None
        yield server.url, int(server.url.rsplit(":", 1)[1])
