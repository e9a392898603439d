"""The OpenAPI 3.1 description of the lookup endpoint (pure data).

``openapi_document()`` gives it as a dict (``json.dumps`` it to publish); the
contract tests validate every generated request's answer against it
(RELIABILITY 27). It describes what :func:`~ccrm_async.thulium.create_lookup_app`
can answer under any configuration: every documented Thulium field is
optional, and the statuses that access control and the rate limit add are
listed too.
"""

from __future__ import annotations

from typing import Any

from .fields import ADDRESS_FIELDS, THULIUM_FIELDS
from .phones import MAX_INPUT_LENGTH

__all__ = ["CONTENT_TYPE", "DEFAULT_PATH", "openapi_document"]

#: The ``Content-Type`` of every answer, exactly as Thulium's documentation writes it.
CONTENT_TYPE = "application/json;charset=utf-8"
#: The default path of the endpoint.
DEFAULT_PATH = "/customers.json"

_STRING = {"type": "string"}
_ADDRESS = {
    "type": "object",
    "properties": {name: _STRING for name in ADDRESS_FIELDS},
    "additionalProperties": False,
}
_LISTS = ("phone_number", "email")
_ADDRESSES = ("address", "mail_drop_address", "invoice_address")


def _customer_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name in sorted(THULIUM_FIELDS):
        if name in _LISTS:
            properties[name] = {"type": "array", "items": _STRING, "minItems": 1}
        elif name in _ADDRESSES:
            properties[name] = _ADDRESS
        elif name == "custom_fields":
            properties[name] = {
                "type": "object",
                "additionalProperties": {"type": ["string", "null"]},
            }
        elif name == "birthdate":
            properties[name] = {"type": "string", "format": "date"}
        else:
            properties[name] = _STRING
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _error_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def openapi_document(path: str = DEFAULT_PATH, *, path_token: bool = False) -> dict[str, Any]:
    """The endpoint at *path* (``/customers.json``) as an OpenAPI 3.1 document.

    With *path_token* the path is ``/{token}<path>``.
    """
    route = "/{token}" + path if path_token else path
    parameters: list[dict[str, Any]] = [
        {
            "name": "phone_number",
            "in": "query",
            "required": True,
            "description": (
                "The caller's number in any usual form: 9 national digits, +48, 0048,"
                " spaces, dashes, dots, brackets; foreign numbers with + or 00."
            ),
            "schema": {"type": "string", "maxLength": MAX_INPUT_LENGTH},
            "example": "123975300",
        }
    ]
    if path_token:
        parameters.insert(
            0, {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Thulium external CRM lookup (ccrm_async)",
            "version": "1",
            "description": (
                "Thulium asks who is calling; the answer comes from CCRM contacts."
                " Every field is optional; PESEL and birth date only when enabled."
            ),
        },
        "paths": {
            route: {
                "get": {
                    "operationId": "lookupCustomer",
                    "summary": "The customer with this phone number",
                    "parameters": parameters,
                    "security": [{}, {"basicAuth": []}],
                    "responses": {
                        "200": {
                            "description": "The customer, in Thulium's fields.",
                            "content": {
                                CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Customer"}}
                            },
                        },
                        "400": _error_response(
                            "phone_number missing, repeated, too long or not a phone number."
                        ),
                        "401": _error_response(
                            "Basic credentials required or wrong.",
                            {"WWW-Authenticate": {"schema": {"type": "string"}}},
                        ),
                        "403": _error_response("Address not allowed, or wrong path token."),
                        "404": _error_response("Nobody has this number."),
                        "429": _error_response(
                            "Too many distinct numbers from this address in a minute.",
                            {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
                        ),
                    },
                }
            }
        },
        "components": {
            "schemas": {
                "Customer": _customer_schema(),
                "Error": {
                    "type": "object",
                    "properties": {"error": _STRING},
                    "required": ["error"],
                    "additionalProperties": False,
                },
            },
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
        },
    }
