"""Contacts as exported by CCRM (seed 000): people and organisations.

Export files carry the columns that were asked for; every attribute that was
not exported is ``None`` or empty. Phones and e-mails keep their slot order
(``phone1`` .. ``phone3``), empty slots left out. ``custom_fields`` maps a
custom field's uuid (the ``customFields.<uuid>`` column) to its value as text;
``extra`` keeps any column this version does not know, by its header.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ._enum import WireEnum

__all__ = ["Address", "Email", "Organisation", "Person", "Phone", "Supervisor", "SupervisorRole"]


class SupervisorRole(WireEnum):
    MANAGER = "manager"  # opiekun
    WATCHER = "watcher"  # obserwator


@attrs.frozen
class Phone:
    number: str
    name: str | None = None


@attrs.frozen
class Email:
    address: str
    name: str | None = None


@attrs.frozen
class Address:
    """One of at most 3 addresses of a contact; ``name`` says which (e.g. seat)."""

    name: str | None = None
    street: str | None = None
    building_no: str | None = None
    local_no: str | None = None
    postcode: str | None = None
    city: str | None = None
    district: str | None = None
    voivodeship: str | None = None
    country: str | None = None


@attrs.frozen
class Supervisor:
    """A CRM user in charge of (manager) or watching (watcher) the contact."""

    user: str
    role: SupervisorRole | None = None


def _mapping() -> Mapping[str, str | None]:
    return {}


@attrs.frozen
class Person:
    """A person from a people export. ``organisations`` holds organisation uuids."""

    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    pesel: str | None = None
    description: str | None = None
    phones: tuple[Phone, ...] = ()
    emails: tuple[Email, ...] = ()
    id_doc_type: str | None = None
    id_doc_number: str | None = None
    id_doc_issuer: str | None = None
    addresses: tuple[Address, ...] = ()
    organisations: tuple[str, ...] = ()
    supervisors: tuple[Supervisor, ...] = ()
    custom_fields: Mapping[str, str | None] = attrs.field(factory=_mapping)
    extra: Mapping[str, str | None] = attrs.field(factory=_mapping)

    @property
    def display_name(self) -> str:
        parts = (self.first_name, self.middle_name, self.last_name)
        return " ".join(p for p in parts if p)


@attrs.frozen
class Organisation:
    """An organisation from an organisations export. ``people`` holds person uuids."""

    name: str | None = None
    description: str | None = None
    phones: tuple[Phone, ...] = ()
    emails: tuple[Email, ...] = ()
    nip: str | None = None
    regon: str | None = None
    registry: str | None = None
    addresses: tuple[Address, ...] = ()
    people: tuple[str, ...] = ()
    supervisors: tuple[Supervisor, ...] = ()
    custom_fields: Mapping[str, str | None] = attrs.field(factory=_mapping)
    extra: Mapping[str, str | None] = attrs.field(factory=_mapping)

    @property
    def display_name(self) -> str:
        return self.name or ""
