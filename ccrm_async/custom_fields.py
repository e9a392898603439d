"""``crm.custom_fields``: list, create, update and delete contacts' custom fields (seed 001).

Endpoints: ``GET /publicApi/people/customFields`` and
``GET /publicApi/organisations/customFields`` list the fields of one contact
type; ``POST``, ``PATCH`` and ``DELETE /publicApi/customFields`` create, change
and remove one. The documentation does not say where PATCH and DELETE carry the
field's uuid; we send it in the JSON body (API-NOTES), in :func:`with_uuid` only.

Create is not idempotent and the API has no idempotency key, so a create is
never retried blindly once its request may have reached the server. Before
creating, :meth:`CustomFields.create` lists the fields of the spec's first
contact type; after an ambiguous failure it lists them again and looks for a
*new* field with the spec's name and type: found, the create took effect; not
found, it tries once more. The same listing afterwards gives the new field's
uuid, which the API's ``"OK"`` answer does not carry.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Collection
from functools import partial
from typing import Any

import cattrs

from ._core.responses import parse_envelope
from .converter import LENIENT
from .errors import CCRMError, NotFoundError, ResponseError, ValidationError
from .models.custom_fields import CONTACT_TYPES, CustomField, FieldSpec, validate_spec
from .parsing import structure_records
from .transport import Transport

__all__ = [
    "CUSTOM_FIELDS_PATH",
    "CustomFields",
    "find_created",
    "list_path",
    "parse_custom_fields",
    "with_uuid",
]

log = logging.getLogger("ccrm_async")

#: Create (POST), change (PATCH) and delete (DELETE) a custom field.
CUSTOM_FIELDS_PATH = "/publicApi/customFields"

_LIST_PATHS = {
    "person": "/publicApi/people/customFields",
    "organisation": "/publicApi/organisations/customFields",
}


def list_path(contact_type: str) -> str:
    """The list endpoint of *contact_type*; :class:`ValidationError` for an unknown one."""
    path = _LIST_PATHS.get(contact_type) if isinstance(contact_type, str) else None
    if path is None:
        raise ValidationError(
            f"unknown contact type {contact_type!r}; known: {', '.join(CONTACT_TYPES)}",
            field="contact_type",
        )
    return path


def with_uuid(body: dict[str, Any], uuid: str) -> dict[str, Any]:
    """*body* with the field's uuid where PATCH and DELETE expect it.

    The one place that decides the uuid's placement (API-NOTES: in the JSON body).
    """
    if not isinstance(uuid, str) or not uuid.strip():
        raise ValidationError("uuid must be a non-blank string", field="uuid")
    return {**body, "uuid": uuid}


def parse_custom_fields(
    body: bytes, converter: cattrs.Converter = LENIENT
) -> builtins.list[CustomField]:
    """A list answer as fields, in the API's order, skipping empty ``{}`` (and null)
    entries; any other entry that cannot be read fails the lot."""
    envelope = parse_envelope(body, data_type=list)
    items = [item for item in envelope.data if item not in ({}, None, [])]
    return structure_records(items, CustomField, converter)


def _parse_ok(body: bytes) -> None:
    # Writes answer {"success": true, "data": "OK", ...}; only success matters.
    parse_envelope(body, data_type=None)


def find_created(
    fields: Collection[CustomField], spec: FieldSpec, before: Collection[str] = ()
) -> CustomField | None:
    """The field of *fields* with *spec*'s name and type whose uuid is not in
    *before* (the uuids listed before the create); the last such one, if several."""
    found = None
    for field in fields:
        if field.name == spec.name and field.type == spec.field_type and field.uuid not in before:
            found = field
    return found


class CustomFields:
    """The custom-fields area of a :class:`~ccrm_async.CCRMClient`: ``crm.custom_fields``.

    Every spec is checked with :func:`~ccrm_async.models.custom_fields.validate_spec`
    before anything is sent.
    """

    def __init__(self, transport: Transport, *, converter: cattrs.Converter = LENIENT) -> None:
        self._transport = transport
        self._converter = converter

    def __repr__(self) -> str:
        return f"CustomFields(base_url={str(self._transport.base_url)!r})"

    async def list(self, contact_type: str) -> builtins.list[CustomField]:
        """The custom fields of ``"person"`` or ``"organisation"`` contacts, in the
        API's order. One request (retried on transient failures)."""
        path = list_path(contact_type)
        return await self._transport.request(
            "GET", path, partial(parse_custom_fields, converter=self._converter)
        )

    async def list_all(
        self, contact_types: Collection[str] = CONTACT_TYPES
    ) -> builtins.list[CustomField]:
        """The fields of *contact_types* (both by default), each once: a field of
        both types is listed by both. One request per contact type."""
        found: dict[str, CustomField] = {}
        for contact_type in contact_types:
            for field in await self.list(contact_type):
                found.setdefault(field.uuid, field)
        return builtins.list(found.values())

    async def create(self, spec: FieldSpec) -> CustomField:
        """Create the field *spec* describes and return it as listed, with its uuid.

        Costs three requests: the list of the spec's first contact type before
        the create (to tell a new field from an older namesake), the create, and
        the list again (the API answers a create with just ``"OK"``). When the
        create fails in a way that may have taken effect (a dropped connection, a
        5xx), the list decides: a new field with the spec's name and type means it
        was created; otherwise the create is sent once more. An error that cannot
        have taken effect (400, 401, 403) is raised at once; any error raised after
        the create may have taken effect has ``ambiguous`` set: list the fields
        before trying again.
        """
        validate_spec(spec)
        body = self._converter.unstructure(spec)
        contact_type = spec.contact_types[0]
        before = {field.uuid for field in await self.list(contact_type)}
        for attempt in (1, 2):  # the create, and at most once more after an ambiguous failure
            try:
                await self._transport.request(
                    "POST", CUSTOM_FIELDS_PATH, _parse_ok, json=body, idempotent=False
                )
            except CCRMError as error:
                if not error.ambiguous:
                    raise
                created = await self._find_created(spec, before)
                if created is not None:
                    log.debug("create: took effect despite the error (%s)", error)
                    return created
                if attempt == 2:
                    raise
                log.debug("create: did not take effect (%s); sending it once more", error)
            else:
                break
        created = await self._find_created(spec, before)
        if created is None:
            unlisted = ResponseError(
                f"the API accepted the {spec.field_type.value} field but does not "
                f"list it among the {contact_type} fields",
                method="POST",
                path=CUSTOM_FIELDS_PATH,
            )
            unlisted.ambiguous = True
            raise unlisted
        return created

    async def _find_created(self, spec: FieldSpec, before: Collection[str]) -> CustomField | None:
        """List the spec's first contact type and find the new field. Once a create
        was sent, a failure here leaves its effect unknown: raised as ``ambiguous``."""
        try:
            fields = await self.list(spec.contact_types[0])
        except CCRMError as error:
            error.ambiguous = True
            raise
        return find_created(fields, spec, before)

    async def update(self, uuid: str, spec: FieldSpec) -> None:
        """Replace the definition of field *uuid* with *spec* (PATCH, the uuid in the
        body). Sending the same definition twice changes nothing, so it is retried
        like a read."""
        validate_spec(spec)
        body = with_uuid(self._converter.unstructure(spec), uuid)
        await self._transport.request("PATCH", CUSTOM_FIELDS_PATH, _parse_ok, json=body)

    async def delete(self, uuid: str, *, missing_ok: bool = True) -> None:
        """Delete field *uuid* (DELETE, the uuid in the body); retried on transient
        failures, as deleting twice leaves the same state.

        A 404 means the field is gone, which is what was asked: with
        ``missing_ok`` (True) it is not an error. A 404 cannot tell "never
        existed" from "deleted by an earlier attempt whose answer was lost" (our
        retries, or aiohttp's own silent re-send of a DELETE on a reused
        connection), so ``missing_ok=False``, which raises
        :class:`~ccrm_async.NotFoundError`, can misreport a delete that worked.
        """
        body = with_uuid({}, uuid)
        try:
            await self._transport.request("DELETE", CUSTOM_FIELDS_PATH, _parse_ok, json=body)
        except NotFoundError:
            if not missing_ok:
                raise
