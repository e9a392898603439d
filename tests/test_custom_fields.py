"""``crm.custom_fields`` against the emulator over a real socket (seed 001)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import orjson
import pytest
from test_custom_field_specs import BROKEN, SEED_REQUESTS

from ccrm_async import (
    AuthenticationError,
    CCRMClient,
    CCRMError,
    CheckboxField,
    CustomField,
    DateField,
    FieldSpec,
    FieldType,
    NotFoundError,
    PermissionDeniedError,
    ResponseError,
    SelectField,
    ServerError,
    TextField,
    ValidationError,
)
from ccrm_async.custom_fields import CUSTOM_FIELDS_PATH, parse_custom_fields
from ccrm_async.testing import SEED_CUSTOM_FIELDS, CCRMEmulator

from conftest import FAST_RETRY, sample_json

PEOPLE = "/publicApi/people/customFields"
ORGANISATIONS = "/publicApi/organisations/customFields"


@pytest.fixture
async def emulator() -> AsyncIterator[CCRMEmulator]:
    # Custom fields need no call history: keep the dataset tiny.
    async with CCRMEmulator(calls=1) as emu:
        yield emu


@pytest.fixture
async def crm(emulator: CCRMEmulator) -> AsyncIterator[CCRMClient]:
    async with CCRMClient(base_url=emulator.url, token=emulator.token, retry=FAST_RETRY) as client:
        yield client


def named(emulator: CCRMEmulator, name: str) -> list[dict[str, Any]]:
    return [f for f in emulator.custom_fields.fields() if f["param"]["name"] == name]


def requests(emulator: CCRMEmulator, method: str, path: str = CUSTOM_FIELDS_PATH) -> int:
    return sum(1 for r in emulator.requests(path) if r.method == method)


def raw(body: bytes) -> Any:
    return orjson.loads(body)


# -- list -------------------------------------------------------------------------------


async def test_list_serves_the_seed_example_quirks_included(
    crm: CCRMClient, emulator: CCRMEmulator
) -> None:
    seed = sample_json("custom_fields_list.json")
    assert list(SEED_CUSTOM_FIELDS) == seed["data"]
    for path in (PEOPLE, ORGANISATIONS):
        answer = await crm.transport.request("GET", path, raw)
        assert answer == seed  # the {} entry and "canDelete": 1 included
    expected = parse_custom_fields(orjson.dumps(seed))
    assert await crm.custom_fields.list("person") == expected
    assert await crm.custom_fields.list("organisation") == expected
    assert len(expected) == 5 and all(f.can_delete for f in expected)


async def test_list_filters_by_contact_type(crm: CCRMClient) -> None:
    await crm.custom_fields.create(DateField("Tylko osoby", "person"))
    people = {f.name for f in await crm.custom_fields.list("person")}
    organisations = {f.name for f in await crm.custom_fields.list("organisation")}
    assert "Tylko osoby" in people and "Tylko osoby" not in organisations


# -- create, update, delete ---------------------------------------------------------------


@pytest.mark.parametrize(("sample", "spec"), SEED_REQUESTS, ids=[s for s, _ in SEED_REQUESTS])
async def test_create_sends_the_seed_body_and_returns_the_field(
    crm: CCRMClient, emulator: CCRMEmulator, sample: str, spec: FieldSpec
) -> None:
    created = await crm.custom_fields.create(spec)
    assert isinstance(created, CustomField)
    assert created.spec == spec and created.type is spec.field_type and created.name == spec.name
    assert created.uuid not in {f["uuid"] for f in SEED_CUSTOM_FIELDS if f}
    (stored,) = named(emulator, spec.name)
    assert stored["uuid"] == created.uuid
    sent = {k: v for k, v in stored["param"].items() if k != "uuid"}
    assert sent == sample_json(sample)  # what arrived over the socket
    # list before, create, list after
    assert [(r.method, r.path) for r in emulator.log] == [
        ("GET", PEOPLE),
        ("POST", CUSTOM_FIELDS_PATH),
        ("GET", PEOPLE),
    ]


async def test_update_and_delete(crm: CCRMClient, emulator: CCRMEmulator) -> None:
    created = await crm.custom_fields.create(TextField("Uwagi", ["organisation"], max_length=20))
    changed = TextField("Uwagi", ["organisation", "person"], max_length=500, multiline=True)
    await crm.custom_fields.update(created.uuid, changed)
    (listed,) = [f for f in await crm.custom_fields.list("person") if f.uuid == created.uuid]
    assert listed.spec == changed
    await crm.custom_fields.delete(created.uuid)
    assert created.uuid not in {f.uuid for f in await crm.custom_fields.list("organisation")}
    await crm.custom_fields.delete(created.uuid)  # already gone: missing_ok
    with pytest.raises(NotFoundError):
        await crm.custom_fields.delete(created.uuid, missing_ok=False)
    with pytest.raises(NotFoundError):
        await crm.custom_fields.update(created.uuid, changed)


async def test_a_field_that_cannot_be_deleted(crm: CCRMClient, emulator: CCRMEmulator) -> None:
    emulator.custom_fields.entries[0]["canDelete"] = 0
    uuid = emulator.custom_fields.entries[0]["uuid"]
    with pytest.raises(PermissionDeniedError):
        await crm.custom_fields.delete(uuid)
    assert (await crm.custom_fields.list("person"))[0].can_delete is False


async def test_a_namesake_listed_before_is_not_mistaken_for_the_new_field(
    crm: CCRMClient, emulator: CCRMEmulator
) -> None:
    # The seed already has a text field "Tekst wielolin".
    created = await crm.custom_fields.create(TextField("Tekst wielolin", "person"))
    assert created.uuid != "12350856-bfba-4a7e-b69c-da35b8a6a3e1"
    assert created.spec == TextField("Tekst wielolin", "person")


# -- nothing invalid reaches the network -------------------------------------------------------


@pytest.mark.parametrize(("rule", "build", "field"), BROKEN, ids=[r for r, _, _ in BROKEN])
async def test_invalid_spec_sends_no_request(
    crm: CCRMClient,
    emulator: CCRMEmulator,
    rule: str,
    build: Callable[[], object],
    field: str,
) -> None:
    with pytest.raises(ValidationError):
        build()
    # Even a spec that skipped its own checks is stopped by the client.
    with attrs.validators.disabled():
        spec: Any = build()
    with pytest.raises(ValidationError) as created:
        await crm.custom_fields.create(spec)
    with pytest.raises(ValidationError) as updated:
        await crm.custom_fields.update("12350856-bfba-4a7e-b69c-da35b8a6a3e1", spec)
    assert created.value.field == updated.value.field == field
    assert emulator.log == []


async def test_bad_arguments_send_no_request(crm: CCRMClient, emulator: CCRMEmulator) -> None:
    with pytest.raises(ValidationError) as caught:
        await crm.custom_fields.list("people")
    assert caught.value.field == "contact_type"
    for call in (
        crm.custom_fields.update("", DateField("x", "person")),
        crm.custom_fields.delete("  "),
    ):
        with pytest.raises(ValidationError) as caught:
            await call
        assert caught.value.field == "uuid"
    with pytest.raises(ValidationError) as caught:
        await crm.custom_fields.create({"type": "date"})  # type: ignore[arg-type]
    assert caught.value.field == "spec"
    assert emulator.log == []


def _valid(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = sample_json("custom_field_create_text.json")
    body.update(changes)
    return body


@pytest.mark.parametrize(
    "body",
    [
        _valid(name=""),
        _valid(contactType=["person", "lead"]),
        _valid(contactType=[]),
        _valid(minLength=10, maxLength=5),
        _valid(minLength=-1),
        _valid(type="colour"),
        {k: v for k, v in _valid().items() if k != "isLink"},
        {**sample_json("custom_field_create_number.json"), "minValue": 101},
        {**sample_json("custom_field_create_select.json"), "options": []},
        {**sample_json("custom_field_create_select.json"), "options": ["a", "a"]},
    ],
)
async def test_emulator_refuses_what_the_library_refuses(
    crm: CCRMClient, emulator: CCRMEmulator, body: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as caught:
        await crm.transport.request("POST", CUSTOM_FIELDS_PATH, raw, json=body, idempotent=False)
    assert caught.value.status == 400 and caught.value.message
    assert len(emulator.custom_fields.fields()) == 5


async def test_emulator_accepts_the_tables_spelling(
    crm: CCRMClient, emulator: CCRMEmulator
) -> None:
    body = _valid(name="Literówka")
    body["minLenght"], body["maxLenght"] = body.pop("minLength"), body.pop("maxLength")
    assert await crm.transport.request("POST", CUSTOM_FIELDS_PATH, raw, json=body) == (
        sample_json("custom_fields_ok_response.json")
    )
    (stored,) = named(emulator, "Literówka")
    assert (stored["param"]["minLength"], stored["param"]["maxLength"]) == (0, 50)


# -- create is not retried blindly -------------------------------------------------------------


async def test_dropped_after_processing_reconciles_to_exactly_one_field(
    crm: CCRMClient, emulator: CCRMEmulator
) -> None:
    emulator.custom_fields.drop_after_processing("POST")
    spec = SelectField("Źródło", ["organisation", "person"], options=["www", "telefon"])
    created = await crm.custom_fields.create(spec)
    assert emulator.custom_fields.dropped == 1  # the server acted, the answer never came
    assert len(named(emulator, "Źródło")) == 1
    assert created.spec == spec and created.uuid == named(emulator, "Źródło")[0]["uuid"]
    assert requests(emulator, "POST") == 1  # not retried
    assert requests(emulator, "GET", ORGANISATIONS) == 2  # before, and to reconcile


async def test_failed_without_effect_is_sent_once_more(
    crm: CCRMClient, emulator: CCRMEmulator
) -> None:
    emulator.faults.script(CUSTOM_FIELDS_PATH, ["503"])  # answered 503, nothing created
    created = await crm.custom_fields.create(CheckboxField("Zgoda", "person"))
    assert len(named(emulator, "Zgoda")) == 1 and named(emulator, "Zgoda")[0]["uuid"] == (
        created.uuid
    )
    assert requests(emulator, "POST") == 2
    assert requests(emulator, "GET", PEOPLE) == 3  # before, reconcile, after


async def test_second_ambiguous_failure_is_raised(crm: CCRMClient, emulator: CCRMEmulator) -> None:
    emulator.faults.script(CUSTOM_FIELDS_PATH, ["503", "503"])
    with pytest.raises(ServerError) as caught:
        await crm.custom_fields.create(CheckboxField("Zgoda", "person"))
    assert caught.value.ambiguous is True
    assert requests(emulator, "POST") == 2  # the create and exactly one more
    assert named(emulator, "Zgoda") == []


async def test_second_attempt_dropped_after_processing_is_found(
    crm: CCRMClient, emulator: CCRMEmulator
) -> None:
    emulator.faults.script(CUSTOM_FIELDS_PATH, ["503"])
    emulator.custom_fields.drop_after_processing("POST")
    created = await crm.custom_fields.create(DateField("Urodziny", "person"))
    (stored,) = named(emulator, "Urodziny")
    assert stored["uuid"] == created.uuid
    assert requests(emulator, "POST") == 2


@pytest.mark.parametrize(
    ("fault", "error"), [("403", PermissionDeniedError), ("401", AuthenticationError)]
)
async def test_an_error_without_effect_is_raised_at_once(
    crm: CCRMClient, emulator: CCRMEmulator, fault: str, error: type[CCRMError]
) -> None:
    emulator.faults.script(CUSTOM_FIELDS_PATH, [fault])
    with pytest.raises(error) as caught:
        await crm.custom_fields.create(DateField("Urodziny", "person"))
    assert caught.value.ambiguous is False
    assert requests(emulator, "POST") == 1
    assert requests(emulator, "GET", PEOPLE) == 1  # only the list before


async def test_rate_limited_create_is_retried_by_the_transport(
    crm: CCRMClient, emulator: CCRMEmulator
) -> None:
    # A rate-limit 403 cannot have taken effect: retried without reconciling.
    emulator.faults.script(CUSTOM_FIELDS_PATH, ["rate_limit"])
    created = await crm.custom_fields.create(DateField("Urodziny", "person"))
    assert named(emulator, "Urodziny")[0]["uuid"] == created.uuid
    assert requests(emulator, "POST") == 2
    assert requests(emulator, "GET", PEOPLE) == 2


async def test_delete_dropped_after_processing_counts_as_done(
    crm: CCRMClient, emulator: CCRMEmulator
) -> None:
    created = await crm.custom_fields.create(DateField("Do usunięcia", "person"))
    emulator.custom_fields.drop_after_processing("DELETE")
    await crm.custom_fields.delete(created.uuid)  # re-sent, 404: done by the first attempt
    assert named(emulator, "Do usunięcia") == []
    assert requests(emulator, "DELETE") == 2


async def test_client_exposes_the_area(crm: CCRMClient) -> None:
    assert "CustomFields" in repr(crm.custom_fields)
    fields = await crm.custom_fields.list("person")
    assert fields[0].type is FieldType.DATE


async def test_errors_after_the_create_was_sent_are_ambiguous(
    crm: CCRMClient, emulator: CCRMEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    area = crm.custom_fields
    real_list = area.list
    calls: list[str] = []

    async def list_then_fail(contact_type: str) -> list[CustomField]:
        calls.append(contact_type)
        if len(calls) > 1:
            raise ServerError("listing failed", status=503)
        return await real_list(contact_type)

    monkeypatch.setattr(area, "list", list_then_fail)
    with pytest.raises(ServerError) as caught:
        await area.create(DateField("Urodziny", "person"))
    assert caught.value.ambiguous is True  # the field exists; the caller must not resend
    assert len(named(emulator, "Urodziny")) == 1

    async def never_listed(contact_type: str) -> list[CustomField]:
        return []

    monkeypatch.setattr(area, "list", never_listed)
    with pytest.raises(ResponseError) as unlisted:
        await area.create(DateField("Imieniny", "person"))
    assert unlisted.value.ambiguous is True and "does not list it" in unlisted.value.message
