"""The OpenAPI document against the server, by schemathesis (RELIABILITY 27).

Every check schemathesis has runs on every case: schema-valid requests
(positive) must not be refused with 400, schema-invalid ones (negative) must
not be answered 200, and every answer must be a documented status with its
documented body, Content-Type and headers. 400 cases, half positive and half
negative, go over a real socket to the lookup served from a thread; nothing
fails. The directory holds the numbers of ``KNOWN``; schemathesis's own
examples phase is not used, so the known numbers come from the document's
example (a 404) and from generation.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from _thulium_fixtures import log_scan, person  # noqa: F401
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from test_thulium_contract import served_in_a_thread

from ccrm_async.thulium import ContactDirectory, create_lookup_app, openapi_document

KNOWN = ["500300001", "+48 500 300 002"]
EXAMPLES = 320  # per run, positive and negative cases mixed

load_all_checks()
ALL_CHECKS = CHECKS.get_all()


@pytest.fixture(autouse=True)
def quiet_client() -> Iterator[None]:
    """requests logs every URL it asks for at DEBUG (numbers in full): that is
    the test's client talking, not the server, so keep it out of the log scan."""
    client = logging.getLogger("urllib3")
    level = client.level
    client.setLevel(logging.WARNING)
    yield
    client.setLevel(level)


@pytest.fixture
def directory() -> Iterator[ContactDirectory]:
    built = ContactDirectory.build(people=[person("Adam", "Testowy", *KNOWN)])
    yield built
    built.close()


@pytest.mark.parametrize("path_token", [False, True], ids=["plain", "path-token"])
def test_schemathesis_finds_no_difference(directory: ContactDirectory, path_token: bool) -> None:
    token = "t0ken-for-the-contract-test" if path_token else None
    app = create_lookup_app(directory, path_token=token, max_numbers_per_minute=None)
    schema = schemathesis.openapi.from_dict(openapi_document(path_token=path_token))
    cases = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE)
    )
    seen: Counter[tuple[str, int]] = Counter()
    with served_in_a_thread(app) as port:
        base_url = f"http://127.0.0.1:{port}"

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases)
        def run(case: schemathesis.Case) -> None:
            if token is not None and case.path_parameters and len(seen) % 2:
                case.path_parameters["token"] = token  # the right token too, not only wrong ones
            response = case.call_and_validate(base_url=base_url, checks=ALL_CHECKS, timeout=10)
            mode = case.meta.generation.mode.value if case.meta else "?"
            seen[(mode, response.status_code)] += 1

        run()
    total = sum(seen.values())
    assert total >= 300, seen
    assert {mode for mode, _ in seen} == {"positive", "negative"}, seen
    assert all(status < 500 for _, status in seen), seen
