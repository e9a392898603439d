"""The bare references the library is measured against: the least code that does
the same network and parsing work, with none of the library's guarantees (no
retries, no ordering, no de-duplication, no drift checks).

Both structure records with the library's own lenient cattrs hooks, so they
build the very same objects: what the library spends beyond them is engine,
envelope and bookkeeping, not the wire rules.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from typing import Any

import aiohttp
import orjson

from ccrm_async import CallRecord, Note
from ccrm_async.converter import LENIENT
from ccrm_async.sinks import Window
from ccrm_async.testing import CallDataset

PAGE_SIZE = 1000
CALL_HISTORY = "/publicApi/callHistory"
NOTES = "/publicApi/notes"

_CALL_HOOK = LENIENT.get_structure_hook(CallRecord)
_NOTE_HOOK = LENIENT.get_structure_hook(Note)


def parse_calls(body: bytes) -> tuple[list[CallRecord], int]:
    """A call-history page's records and ``totalCount``: orjson, then the hook per record."""
    payload = orjson.loads(body)
    hook = _CALL_HOOK
    return [hook(item, CallRecord) for item in payload["data"]], payload["otherData"]["totalCount"]


def parse_notes(body: bytes) -> list[Note]:
    """A notes answer's records."""
    hook = _NOTE_HOOK
    return [hook(item, Note) for item in orjson.loads(body)["data"]]


def windowed_requests(
    dataset: CallDataset, windows: Iterable[Window], *, notes: bool
) -> list[tuple[str, dict[str, str]]]:
    """The ``(path, query)`` of every request a windowed pull of *dataset* sends
    when nothing fails: each window's pages (page 1 without ``page``, as the
    library asks), then, with *notes*, one notes request per call with notes."""
    requests: list[tuple[str, dict[str, str]]] = []
    for window in windows:
        date_from, date_to = window.wire
        calls = dataset.select(date_from, date_to)
        params = {"dateFrom": date_from, "dateTo": date_to}
        for page in range(1, max(1, math.ceil(len(calls) / PAGE_SIZE)) + 1):
            requests.append((CALL_HISTORY, {**params, "page": str(page)} if page > 1 else params))
        if notes:
            requests.extend((NOTES, {"callHistory": c["uuid"]}) for c in calls if c["note"])
    return requests


def _session(token: str, concurrency: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {token}"},
        connector=aiohttp.TCPConnector(limit=concurrency),
    )


async def pipelined_pull(
    url: str, token: str, date_from: str, date_to: str, *, concurrency: int
) -> int:
    """Every call of a range: page 1 alone (for the total), then *concurrency*
    fetch workers that only read bodies, feeding one parser through a queue of
    at most ``2 * concurrency`` bodies. Returns the number of records parsed."""
    params = {"dateFrom": date_from, "dateTo": date_to}
    async with _session(token, concurrency) as session:

        async def get(page: int) -> bytes:
            query = {**params, "page": str(page)} if page > 1 else params
            async with session.get(f"{url}{CALL_HISTORY}", params=query) as r:
                r.raise_for_status()
                return await r.read()

        records, total = parse_calls(await get(1))
        count = len(records)
        pages = iter(range(2, math.ceil(total / PAGE_SIZE) + 1))
        bodies: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=2 * concurrency)

        async def fetcher() -> None:
            for page in pages:  # one shared iterator: each page taken once
                await bodies.put(await get(page))

        async def parser() -> int:
            parsed = 0
            while (body := await bodies.get()) is not None:
                parsed += len(parse_calls(body)[0])
            return parsed

        parsing = asyncio.create_task(parser())
        await asyncio.gather(*(fetcher() for _ in range(concurrency)))
        await bodies.put(None)
        return count + await parsing


async def fan_out(
    url: str, token: str, requests: Iterable[tuple[str, dict[str, str]]], *, concurrency: int
) -> tuple[int, int]:
    """GET every ``(path, query)`` of *requests* with *concurrency* workers, each
    reading, decoding and structuring its answer. Returns (requests, records)."""
    todo = iter(requests)
    done = [0, 0]

    async with _session(token, concurrency) as session:

        async def worker() -> None:
            for path, query in todo:
                async with session.get(f"{url}{path}", params=query) as r:
                    r.raise_for_status()
                    body = await r.read()
                parsed: list[Any] = (
                    parse_calls(body)[0] if path == CALL_HISTORY else parse_notes(body)
                )
                done[0] += 1
                done[1] += len(parsed)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done[0], done[1]
