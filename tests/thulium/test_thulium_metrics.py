"""``/metrics`` (the optional ``metrics`` extra): behind the lookup's access
control, with lookups by result, the latency histogram, the directory's size and
the age of its data."""

from __future__ import annotations

import base64

import aiohttp
import pytest
from _thulium_fixtures import log_scan, person  # noqa: F401
from aiohttp import web

from ccrm_async.thulium import (
    ContactDirectory,
    LookupServer,
    LookupService,
    create_lookup_app,
)
from ccrm_async.thulium.metrics import LookupMetrics

AUTH = "Basic " + base64.b64encode(b"thulium:s3cret-pass").decode()


def _value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics")


async def test_metrics_count_lookups_behind_the_same_access_control() -> None:
    directory = ContactDirectory.build(people=[person("Ada", "Testowa", "500300001")])
    app = create_lookup_app(directory, basic_auth=("thulium", "s3cret-pass"), metrics=True)
    async with LookupServer(app) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/metrics") as resp:
            assert resp.status == 401  # like the lookup
            assert "thulium" not in await resp.text()
        for number in ("500300001", "500300001", "500300999", "banana"):
            url = f"{server.url}/customers.json"
            params = {"phone_number": number}
            async with http.get(url, params=params, headers={"Authorization": AUTH}) as resp:
                await resp.read()
        async with http.get(f"{server.url}/customers.json?phone_number=1") as resp:
            assert resp.status == 401
        async with http.get(f"{server.url}/metrics", headers={"Authorization": AUTH}) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            text = await resp.text()
    directory.close()
    assert _value(text, 'thulium_lookups_total{result="found"}') == 2
    assert _value(text, 'thulium_lookups_total{result="not_found"}') == 1
    assert _value(text, 'thulium_lookups_total{result="invalid"}') == 1
    assert _value(text, 'thulium_lookups_total{result="unauthorized"}') == 1
    assert _value(text, 'thulium_lookups_total{result="rate_limited"}') == 0
    assert _value(text, 'thulium_lookups_total{result="failed"}') == 0
    assert _value(text, "thulium_lookup_duration_seconds_count") == 5
    assert _value(text, "thulium_directory_contacts") == 1
    assert _value(text, "thulium_directory_numbers") == 1
    assert _value(text, "thulium_directory_age_seconds") >= 0
    assert "500300001" not in text and "300001" not in text  # no number in the metrics


async def test_metrics_move_with_the_path_token_and_report_failures_and_age() -> None:
    directory = ContactDirectory.build(people=[person("Ada", "Testowa", "500300001")])
    built = directory.stats.built_at
    metrics = LookupMetrics(directory, clock=lambda: built + 42.5)
    service = LookupService(directory, metrics=metrics)
    service.directory = None  # type: ignore[assignment]  # every lookup now fails inside
    app = web.Application()
    app.add_routes(service.routes())
    async with LookupServer(app) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/customers.json?phone_number=500300001") as resp:
            assert resp.status == 404  # the fallback
        async with http.get(f"{server.url}/metrics") as resp:
            text = await resp.text()
    assert _value(text, 'thulium_lookups_total{result="failed"}') == 1
    assert _value(text, "thulium_directory_age_seconds") == 42.5

    token = "t" * 24
    app = create_lookup_app(directory, path_token=token, metrics=True)
    async with LookupServer(app) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/metrics") as resp:
            assert resp.status == 403
        async with http.get(f"{server.url}/{token}/metrics") as resp:
            assert resp.status == 200
    directory.close()


def test_the_lookup_cannot_sit_at_metrics() -> None:
    directory = ContactDirectory()
    with pytest.raises(ValueError, match="/metrics"):
        create_lookup_app(directory, path="/metrics", metrics=True)
    directory.close()
