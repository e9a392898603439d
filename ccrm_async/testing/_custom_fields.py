"""Custom fields in the fake CCRM (seed 001).

:class:`CustomFieldStore` keeps an account's custom fields in memory, starting
with the seed's list example, quirks included (an empty ``{}`` entry, ``canDelete``
sent as ``1``). Its routes serve both list endpoints and the write endpoints, which
check a definition as the library does (400 ``{"success": false, "message": ...}``)
and take the field's uuid from the JSON body. :meth:`CustomFieldStore.drop_after_processing`
makes the server act on a write and then cut the connection without answering.
"""

from __future__ import annotations

import copy
import math
import random
import uuid as uuid_module
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from aiohttp import web

__all__ = ["SEED_CUSTOM_FIELDS", "CustomFieldStore", "definition_problem"]

_WRITE_PATH = "/publicApi/customFields"
_LIST_PATHS = {
    "person": "/publicApi/people/customFields",
    "organisation": "/publicApi/organisations/customFields",
}
_CONTACT_TYPES = ("person", "organisation")
_OK_BODY = {"success": True, "data": "OK", "otherData": {}, "message": "OK"}

#: The ``data`` of the seed's list example, as documented (the ``{}`` entry too).
SEED_CUSTOM_FIELDS: tuple[Mapping[str, Any], ...] = (
    {
        "uuid": "7b0abc08-afa4-4946-ad23-ad4646072853",
        "type": "date",
        "param": {
            "type": "date",
            "name": "Data zamówienia",
            "required": True,
            "contactType": ["person", "organisation"],
        },
        "canDelete": 1,
    },
    {
        "uuid": "12350856-bfba-4a7e-b69c-da35b8a6a3e1",
        "type": "text",
        "param": {
            "type": "text",
            "name": "Tekst wielolin",
            "required": False,
            "contactType": ["person", "organisation"],
            "isLink": False,
            "isMultiline": True,
            "minLength": 0,
            "maxLength": 15,
            "uuid": "12350856-bfba-4a7e-b69c-da35b8a6a3e1",
        },
        "canDelete": 1,
    },
    {
        "uuid": "96d8ad7a-ffef-4b5f-a38f-f21e7c8bb97e",
        "type": "number",
        "param": {
            "type": "number",
            "name": "number",
            "required": False,
            "contactType": ["person", "organisation"],
            "minValue": 5,
            "maxValue": 20,
            "uuid": "96d8ad7a-ffef-4b5f-a38f-f21e7c8bb97e",
        },
        "canDelete": 1,
    },
    {},
    {
        "uuid": "183619e0-af10-4584-b260-bd81324a6ec2",
        "type": "select",
        "param": {
            "type": "select",
            "name": "Lista rozw",
            "required": True,
            "contactType": ["organisation", "person"],
            "isMultiple": True,
            "options": ["cd", "dvd"],
        },
        "canDelete": 1,
    },
    {
        "uuid": "c894f58b-fe44-4afa-9776-bf44bf820bf4",
        "type": "checkbox",
        "param": {
            "type": "checkbox",
            "name": "checkboxTest",
            "required": False,
            "contactType": ["person", "organisation"],
        },
        "canDelete": 1,
    },
)

# Parameters of each type beyond type/name/required/contactType: wire key -> kind.
_TYPE_PARAMS: dict[str, dict[str, str]] = {
    "text": {"isLink": "bool", "isMultiline": "bool", "minLength": "length", "maxLength": "length"},
    "number": {"minValue": "number", "maxValue": "number"},
    "select": {"isMultiple": "bool", "options": "options"},
    "checkbox": {},
    "date": {},
    "datetime": {},
}
# The request tables' spelling, accepted as well as the examples'.
_ALIASES = {"minLenght": "minLength", "maxLenght": "maxLength"}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind_problem(key: str, kind: str, value: object) -> str | None:
    if kind == "bool" and not isinstance(value, bool):
        return f"{key} must be a boolean"
    if kind == "length" and not (_is_int(value) and isinstance(value, int) and value >= 0):
        return f"{key} must be a non-negative integer"
    if kind == "number" and (
        not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value)
    ):
        return f"{key} must be a number"
    if kind == "options":
        if not isinstance(value, list) or not value:
            return f"{key} must be a non-empty array"
        if not all(isinstance(option, str) and option.strip() for option in value):
            return f"{key} must hold non-blank strings"
        if len(set(value)) != len(value):
            return f"{key} must not repeat a value"
    return None


def definition_problem(body: Mapping[str, Any]) -> str | None:
    """Why the API would refuse a field definition (a POST or PATCH body), or ``None``.

    Every documented key is required; ``minLenght``/``maxLenght`` stand for
    ``minLength``/``maxLength``. The rules are the library's spec rules.
    """
    field_type = body.get("type")
    if field_type not in _TYPE_PARAMS:
        return f"type must be one of: {', '.join(_TYPE_PARAMS)}"
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        return "name must be a non-blank string"
    if not isinstance(body.get("required"), bool):
        return "required must be a boolean"
    contact = body.get("contactType")
    if not isinstance(contact, list) or not contact:
        return "contactType must be a non-empty array"
    if any(item not in _CONTACT_TYPES for item in contact):
        return f"contactType may hold only: {', '.join(_CONTACT_TYPES)}"
    for key, kind in _TYPE_PARAMS[field_type].items():
        if key not in body:
            return f"{key} is required"
        problem = _kind_problem(key, kind, body[key])
        if problem:
            return problem
    if field_type == "text" and body["minLength"] > body["maxLength"]:
        return "minLength must not be greater than maxLength"
    if field_type == "number" and body["minValue"] > body["maxValue"]:
        return "minValue must not be greater than maxValue"
    return None


def _dealias(body: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(body)
    for alias, documented in _ALIASES.items():
        if alias in out:
            out.setdefault(documented, out.pop(alias))
    return out


def _param(body: Mapping[str, Any], uuid: str) -> dict[str, Any]:
    """A stored ``param`` in the list example's shape, keys in its order."""
    field_type = body["type"]
    param = {key: body[key] for key in ("type", "name", "required", "contactType")}
    param.update({key: body[key] for key in _TYPE_PARAMS[field_type]})
    param["uuid"] = uuid
    return param


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


def _error(message: str, status: int) -> web.Response:
    return _json({"success": False, "message": message}, status)


class CustomFieldStore:
    """An account's custom fields, in memory, and the routes that serve them.

    ``entries`` are list entries in the wire shape (``uuid``, ``type``, ``param``,
    ``canDelete``); by default the seed's example (:data:`SEED_CUSTOM_FIELDS`).
    New fields get uuids drawn from ``seed`` (0). ``dropped`` counts the writes
    that were processed and then left unanswered.
    """

    def __init__(
        self, entries: Iterable[Mapping[str, Any]] | None = None, *, seed: int = 0
    ) -> None:
        source = SEED_CUSTOM_FIELDS if entries is None else tuple(entries)
        self.entries: list[dict[str, Any]] = [copy.deepcopy(dict(e)) for e in source]
        self.dropped = 0
        self._rng = random.Random(seed)
        self._drops: dict[str, int] = {}

    def fields(self, contact_type: str | None = None) -> list[dict[str, Any]]:
        """The stored fields (no empty entries), optionally of one contact type."""
        return [
            entry
            for entry in self.entries
            if entry
            and (contact_type is None or contact_type in entry["param"].get("contactType", ()))
        ]

    def drop_after_processing(self, method: str = "POST", times: int = 1) -> None:
        """Act on the next *times* (1) *method* (``POST``) requests to
        ``/publicApi/customFields``, then cut the connection without answering:
        the field changed, the client cannot know."""
        method = method.upper()
        self._drops[method] = self._drops.get(method, 0) + times

    def routes(self) -> list[web.RouteDef]:
        """Routes for :meth:`CCRMEmulator.add_routes`."""
        return [
            web.get(_LIST_PATHS["person"], self._list_person),
            web.get(_LIST_PATHS["organisation"], self._list_organisation),
            web.post(_WRITE_PATH, self._create),
            web.patch(_WRITE_PATH, self._update),
            web.delete(_WRITE_PATH, self._delete),
        ]

    # -- handlers -------------------------------------------------------------------

    def _list(self, contact_type: str) -> web.Response:
        data = [
            entry
            for entry in self.entries
            if not entry or contact_type in entry.get("param", {}).get("contactType", ())
        ]
        return _json({"success": True, "data": data, "otherData": {}, "message": "OK"})

    async def _list_person(self, request: web.Request) -> web.Response:
        return self._list("person")

    async def _list_organisation(self, request: web.Request) -> web.Response:
        return self._list("organisation")

    async def _create(self, request: web.Request) -> web.Response:
        body = await _read_object(request)
        if body is None:
            return _error("the body must be a JSON object", 400)
        body = _dealias(body)
        problem = definition_problem(body)
        if problem:
            return _error(problem, 400)
        new_uuid = str(uuid_module.UUID(int=self._rng.getrandbits(128), version=4))
        self.entries.append(
            {
                "uuid": new_uuid,
                "type": body["type"],
                "param": _param(body, new_uuid),
                "canDelete": 1,
            }
        )
        return self._answer(request)

    async def _update(self, request: web.Request) -> web.Response:
        body = await _read_object(request)
        if body is None:
            return _error("the body must be a JSON object", 400)
        entry = self._find(body.get("uuid"))
        if entry is None:
            return _error("Not found", 404) if body.get("uuid") else _error("uuid is required", 400)
        body = _dealias(body)
        problem = definition_problem(body)
        if problem:
            return _error(problem, 400)
        entry["type"] = body["type"]
        entry["param"] = _param(body, entry["uuid"])
        return self._answer(request)

    async def _delete(self, request: web.Request) -> web.Response:
        body = await _read_object(request)
        if body is None:
            return _error("the body must be a JSON object", 400)
        entry = self._find(body.get("uuid"))
        if entry is None:
            return _error("Not found", 404) if body.get("uuid") else _error("uuid is required", 400)
        if not entry.get("canDelete"):
            return _error("This field cannot be deleted", 403)
        self.entries.remove(entry)
        return self._answer(request)

    def _find(self, uuid: object) -> dict[str, Any] | None:
        if not isinstance(uuid, str) or not uuid:
            return None
        return next((e for e in self.entries if e and e.get("uuid") == uuid), None)

    def _answer(self, request: web.Request) -> web.Response:
        pending = self._drops.get(request.method, 0)
        if pending and request.transport is not None:
            self._drops[request.method] = pending - 1
            self.dropped += 1
            # Cut the connection before a byte of the answer; aiohttp then gives
            # up writing the response below without complaint.
            request.transport.abort()
        return _json(_OK_BODY)


async def _read_object(request: web.Request) -> dict[str, Any] | None:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None
