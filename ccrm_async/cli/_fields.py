"""``ccrm-async fields list|create|delete``: contacts' custom fields."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from ..converter import LENIENT
from ..errors import ValidationError
from ..models.custom_fields import (
    CONTACT_TYPES,
    DEFAULT_MAX_LENGTH,
    DEFAULT_MAX_VALUE,
    DEFAULT_MIN_VALUE,
    CheckboxField,
    CustomField,
    DateField,
    DateTimeField,
    FieldSpec,
    NumberField,
    SelectField,
    TextField,
)
from ._common import CommandError, UsageError, add_connection_options, add_debug_option, make_client

__all__ = [
    "field_object",
    "field_parameters",
    "fields_table",
    "in_option_terms",
    "option_names",
    "register",
]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fields = commands.add_parser(
        "fields",
        help="list, create and delete contacts' custom fields",
        description="Custom fields of people and organisations.",
    )
    add_debug_option(fields)
    sub = fields.add_subparsers(dest="fields_command", required=True, metavar="COMMAND")

    listing = sub.add_parser(
        "list",
        help="list the custom fields",
        description="List the custom fields of people, organisations, or both (each field once).",
    )
    listing.add_argument(
        "--contact-type",
        choices=CONTACT_TYPES,
        help="only the fields of this contact type (default: both)",
    )
    listing.add_argument(
        "--json",
        action="store_true",
        help="print one JSON array of objects (uuid, type, name, required, contactType, "
        "the type's parameters, canDelete) instead of a table",
    )
    add_connection_options(listing)
    add_debug_option(listing)
    listing.set_defaults(run=_run_list)

    create = sub.add_parser(
        "create",
        help="create a custom field",
        description="Create a custom field; one subcommand per type. The definition is "
        "checked before anything is sent.",
    )
    add_debug_option(create)
    types = create.add_subparsers(dest="field_type", required=True, metavar="TYPE")
    for name, help_text, options, build in _TYPES:
        parser = types.add_parser(name, help=help_text, description=help_text + ".")
        parser.add_argument("name", help="the field's name")
        parser.add_argument(
            "--contact-type",
            action="append",
            choices=CONTACT_TYPES,
            dest="contact_types",
            help="a contact type the field belongs to; repeat for both (default: both)",
        )
        parser.add_argument("--required", action="store_true", help="a value is required")
        options(parser)
        parser.add_argument("--json", action="store_true", help="print the new field as JSON")
        add_connection_options(parser)
        add_debug_option(parser)
        parser.set_defaults(run=_run_create, build=build, option_names=option_names(parser))

    delete = sub.add_parser(
        "delete",
        help="delete a custom field",
        description="Delete the custom field UUID (as listed by `fields list`).",
    )
    delete.add_argument("uuid", metavar="UUID", help="the field's uuid")
    add_connection_options(delete)
    add_debug_option(delete)
    delete.set_defaults(run=_run_delete)


# -- the types ---------------------------------------------------------------------------------


def _number(text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return (
        int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
    )


def _length(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _text_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--min-length", type=_length, default=0, metavar="N", help="(0)")
    parser.add_argument(
        "--max-length", type=_length, default=DEFAULT_MAX_LENGTH, metavar="N",
        help=f"({DEFAULT_MAX_LENGTH})",
    )  # fmt: skip
    parser.add_argument("--multiline", action="store_true", help="several lines of text")
    parser.add_argument("--link", action="store_true", help="the value is a link")


def _number_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--min-value", type=_number, default=DEFAULT_MIN_VALUE, metavar="X",
        help=f"smallest value accepted ({DEFAULT_MIN_VALUE})",
    )  # fmt: skip
    parser.add_argument(
        "--max-value", type=_number, default=DEFAULT_MAX_VALUE, metavar="X",
        help=f"largest value accepted ({DEFAULT_MAX_VALUE})",
    )  # fmt: skip


def _select_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--option",
        action="append",
        dest="options",
        required=True,
        metavar="TEXT",
        help="a choice; repeat for each (at least one)",
    )
    parser.add_argument("--multiple", action="store_true", help="allow several choices")


def _no_options(parser: argparse.ArgumentParser) -> None:
    return None


def _common(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": args.name,
        "contact_types": args.contact_types or CONTACT_TYPES,
        "required": args.required,
    }


_TYPES: tuple[
    tuple[
        str,
        str,
        Callable[[argparse.ArgumentParser], None],
        Callable[[argparse.Namespace], FieldSpec],
    ],
    ...,
] = (
    (
        "text",
        "a text field",
        _text_options,
        lambda a: TextField(
            **_common(a),
            min_length=a.min_length,
            max_length=a.max_length,
            multiline=a.multiline,
            link=a.link,
        ),
    ),
    (
        "number",
        "a number field",
        _number_options,
        lambda a: NumberField(**_common(a), min_value=a.min_value, max_value=a.max_value),
    ),
    (
        "select",
        "a drop-down list",
        _select_options,
        lambda a: SelectField(**_common(a), options=a.options, multiple=a.multiple),
    ),
    ("checkbox", "a yes/no field", _no_options, lambda a: CheckboxField(**_common(a))),
    ("date", "a date field", _no_options, lambda a: DateField(**_common(a))),
    ("datetime", "a date-and-time field", _no_options, lambda a: DateTimeField(**_common(a))),
)


# -- messages in the command line's words --------------------------------------------------


def option_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each argument's ``dest`` and how the command line spells it:
    ``{"min_length": "--min-length", "name": "NAME", ...}``."""
    names: dict[str, str] = {}
    for action in parser._actions:
        if action.dest in (argparse.SUPPRESS, "help"):
            continue
        if action.option_strings:
            names[action.dest] = max(action.option_strings, key=len)
        else:
            metavar = action.metavar if isinstance(action.metavar, str) else None
            names[action.dest] = metavar or action.dest.upper()
    return names


def in_option_terms(message: str, names: dict[str, str]) -> str:
    """A spec's validation *message* with its attribute names as the options:
    ``min_length (10) is greater than max_length (5)`` becomes
    ``--min-length (10) is greater than --max-length (5)``. Plain words
    (``name``) are replaced only where they open the message."""

    def spelled(match: re.Match[str]) -> str:
        option = names.get(match.group(1))
        if option is None:
            return match.group(0)
        index = match.group(2)
        return f"{option} #{int(index) + 1}" if index is not None else option

    head = re.compile(r"^([a-z]+)(?:\[(\d+)\])?")
    message = head.sub(spelled, message, count=1)
    return re.sub(r"\b([a-z]+_[a-z_]+)\b(?:\[(\d+)\])?", spelled, message)


# -- output (pure) -------------------------------------------------------------------------


def field_object(field: CustomField) -> dict[str, Any]:
    """A field as one flat JSON object: uuid, type, name, required, contactType,
    the type's parameters in the API's spelling, canDelete."""
    body: dict[str, Any] = LENIENT.unstructure(field)
    return body


def field_parameters(field: CustomField) -> str:
    """The type's parameters in a few words: ``0-15 chars, multiline``."""
    spec = field.spec
    words: list[str] = []
    if isinstance(spec, TextField):
        words.append(f"{spec.min_length}-{spec.max_length} chars")
        words += [flag for flag, on in (("multiline", spec.multiline), ("link", spec.link)) if on]
    elif isinstance(spec, NumberField):
        words.append(f"{spec.min_value} to {spec.max_value}")
    elif isinstance(spec, SelectField):
        words.append("options: " + ", ".join(spec.options))
        if spec.multiple:
            words.append("multiple")
    words += [f"{key}={value}" for key, value in field.extra.items()]
    if not field.can_delete:
        words.append("cannot be deleted")
    return ", ".join(words)


def fields_table(fields: Iterable[CustomField]) -> list[str]:
    """Fields as the lines of an aligned table, header first."""
    rows = [("UUID", "TYPE", "NAME", "REQUIRED", "CONTACT TYPES", "PARAMETERS")]
    for field in fields:
        rows.append(
            (
                field.uuid,
                field.type.value,
                field.name,
                "yes" if field.required else "no",
                ", ".join(field.contact_types),
                field_parameters(field),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


# -- the commands ------------------------------------------------------------------------------


async def _run_list(args: argparse.Namespace) -> int:
    types = [args.contact_type] if args.contact_type else list(CONTACT_TYPES)
    async with make_client(args) as crm:
        fields = await crm.custom_fields.list_all(types)
    if args.json:
        print(orjson.dumps([field_object(f) for f in fields]).decode())
    elif fields:
        print("\n".join(fields_table(fields)))
    else:
        print("no custom fields")
    return 0


async def _run_create(args: argparse.Namespace) -> int:
    try:
        spec: FieldSpec = args.build(args)
    except ValidationError as exc:
        raise UsageError(in_option_terms(exc.message, args.option_names)) from None
    async with make_client(args) as crm:
        field = await crm.custom_fields.create(spec)
    if args.json:
        print(orjson.dumps(field_object(field)).decode())
    else:
        print(f"created {field.type.value} field {field.name!r}: {field.uuid}")
    return 0


async def _run_delete(args: argparse.Namespace) -> int:
    async with make_client(args) as crm:
        fields = {field.uuid: field for field in await crm.custom_fields.list_all()}
        field = fields.get(args.uuid)
        if field is None:
            raise CommandError(f"no custom field has the uuid {args.uuid!r}")
        if not field.can_delete:
            raise CommandError(f"the API says field {field.name!r} cannot be deleted")
        await crm.custom_fields.delete(field.uuid)
    print(f"deleted {field.type.value} field {field.name!r}: {field.uuid}")
    return 0
