"""A CCRM contact as the JSON object Thulium documents (pure; no I/O).

Seed 003 lists the fields Thulium accepts, all optional. They are filled from a
:class:`~ccrm_async.models.Person` or :class:`~ccrm_async.models.Organisation`:

======================  ==========================================================
Thulium field           from
======================  ==========================================================
``name``                a person's first and middle names
``surname``             a person's last name; an organisation's name
``phone_number``        every phone (a list), Polish numbers as 9 digits, others
                        in E.164; a phone whose label says fax (``fax``/``faks``)
                        goes to ``fax`` instead
``email``               every e-mail address (a list)
``identifier``          the contact's uuid when the export file has a ``uuid``
                        (or ``id``) column; CCRM's export does not list one
``nip``, ``regon``      the organisation's
``note``                the contact's ``description``
``address`` ...         see "Addresses" below
``custom_fields``       ``{name: value}``; names from the uuid -> name mapping
                        (``crm.custom_fields.list``), the uuid where unknown
``pesel``               the person's PESEL, only with ``expose_pesel``
``birthdate``           a ``birthDate``-like column, else the date a valid PESEL
                        encodes, only with ``expose_birthdate``
======================  ==========================================================

Identity-document fields (``idDocType``, ``idDocNumber``, ``idDocIssuer``)
have no Thulium field; with ``expose_id_document`` they are added to
``custom_fields`` under the labels CCRM's documentation gives them.

Addresses: CCRM keeps at most 3 per contact, each with a free-text ``name``
(seed 000 gives "siedziba", "korespondencyjny" as examples). Thulium has three
slots. An address goes to ``mail_drop_address`` when its name (any case,
with or without Polish letters) contains ``koresp``, ``mail``, ``poczt``,
``wysylk`` or ``dorecz`` (:data:`MAIL_DROP_WORDS`), to ``invoice_address`` when it contains
``faktur``, ``rozlicz``, ``invoice`` or ``billing``
(:data:`INVOICE_WORDS`), and to ``address`` otherwise; each slot takes the
first address that fits it, and an address whose slot is taken is left out.
Each slot object has ``street``, ``building`` (CCRM ``building_no``),
``flat`` (``local_no``), ``postcode``, ``city`` and ``country``.

Which keys appear is decided by a :class:`FieldPolicy`: the allow-list
``fields`` (by default :data:`DEFAULT_FIELDS`, every documented field except
the sensitive ones) and, for the sensitive ones, their own switch as well; a
sensitive field needs both. Empty values are left out; a custom field without
a value is sent as ``null``, as in the seed's example.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping
from datetime import date
from typing import Any

import attrs

from ..models.contacts import Address, Organisation, Person
from .phones import display_phone, try_normalize_phone

__all__ = [
    "ADDRESS_FIELDS",
    "DEFAULT_FIELDS",
    "ID_DOCUMENT_LABELS",
    "INVOICE_WORDS",
    "MAIL_DROP_WORDS",
    "SENSITIVE_FIELDS",
    "THULIUM_FIELDS",
    "Contact",
    "FieldPolicy",
    "birthdate_from_pesel",
    "contact_identifier",
    "thulium_record",
]

Contact = Person | Organisation

#: Every field seed 003 documents.
THULIUM_FIELDS: frozenset[str] = frozenset(
    {
        "phone_number",
        "email",
        "identifier",
        "surname",
        "name",
        "pesel",
        "regon",
        "fax",
        "note",
        "birthdate",
        "birthplace",
        "marital_status",
        "gender",
        "nip",
        "job",
        "job_title",
        "homepage",
        "industry",
        "address",
        "mail_drop_address",
        "invoice_address",
        "custom_fields",
    }
)
#: Fields that are sent only when their own switch is on as well.
SENSITIVE_FIELDS: frozenset[str] = frozenset({"pesel", "birthdate"})
#: The default allow-list: every documented field but the sensitive ones.
DEFAULT_FIELDS: frozenset[str] = THULIUM_FIELDS - SENSITIVE_FIELDS
#: The keys of each address object.
ADDRESS_FIELDS: tuple[str, ...] = ("street", "building", "flat", "postcode", "city", "country")
#: Address names (folded) that mean a correspondence address.
MAIL_DROP_WORDS: tuple[str, ...] = ("koresp", "mail", "poczt", "wysylk", "dorecz")
#: Address names (folded) that mean an invoice address.
INVOICE_WORDS: tuple[str, ...] = ("faktur", "rozlicz", "invoice", "billing")
#: Custom-field labels of the identity-document columns (seed 000's wording).
ID_DOCUMENT_LABELS: Mapping[str, str] = {
    "id_doc_type": "Dokument potwierdzający tożsamość",
    "id_doc_number": "Numer dokumentu tożsamości",
    "id_doc_issuer": "Organ wydający dokument tożsamości",
}

_FAX_WORDS = ("fax", "faks")
_IDENTIFIER_COLUMNS = ("uuid", "id")
_BIRTHDATE_COLUMNS = ("birthdate", "birthDate", "birth_date", "dataUrodzenia")
_PESEL_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)


def _known_fields(value: Collection[str]) -> frozenset[str]:
    fields = frozenset(value)
    unknown = sorted(fields - THULIUM_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown Thulium field(s): {', '.join(unknown)}; known: "
            + ", ".join(sorted(THULIUM_FIELDS))
        )
    return fields


def _optional_names(value: Collection[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


@attrs.frozen
class FieldPolicy:
    """Which fields an answer may carry.

    - ``fields`` (:data:`DEFAULT_FIELDS`): the allow-list of top-level keys;
    - ``expose_pesel`` (False), ``expose_birthdate`` (False): the second
      switch of ``pesel`` and ``birthdate``, which must also be in ``fields``;
    - ``expose_id_document`` (False): add the identity-document fields to
      ``custom_fields`` (under :data:`ID_DOCUMENT_LABELS`);
    - ``custom_fields`` (None: all): the custom fields sent, by name or uuid.
    """

    fields: frozenset[str] = attrs.field(default=DEFAULT_FIELDS, converter=_known_fields)
    expose_pesel: bool = False
    expose_birthdate: bool = False
    expose_id_document: bool = False
    custom_fields: frozenset[str] | None = attrs.field(default=None, converter=_optional_names)

    @property
    def allowed(self) -> frozenset[str]:
        """The keys an answer may have under this policy."""
        allowed = set(self.fields)
        if not self.expose_pesel:
            allowed.discard("pesel")
        if not self.expose_birthdate:
            allowed.discard("birthdate")
        return frozenset(allowed)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _slot_of(address: Address) -> str:
    name = _fold(address.name or "")
    if any(word in name for word in MAIL_DROP_WORDS):
        return "mail_drop_address"
    if any(word in name for word in INVOICE_WORDS):
        return "invoice_address"
    return "address"


def _address_object(address: Address) -> dict[str, str]:
    values = {
        "street": address.street,
        "building": address.building_no,
        "flat": address.local_no,
        "postcode": address.postcode,
        "city": address.city,
        "country": address.country,
    }
    return {key: value for key, value in values.items() if value}


def _addresses(addresses: tuple[Address, ...]) -> dict[str, dict[str, str]]:
    slots: dict[str, dict[str, str]] = {}
    for address in addresses:
        slot = _slot_of(address)
        if slot in slots:
            continue
        body = _address_object(address)
        if body:
            slots[slot] = body
    return slots


def birthdate_from_pesel(pesel: str | None) -> date | None:
    """The birth date a checksum-valid PESEL encodes, else ``None``.

    Digits 1-6 are YYMMDD with the century in the month: +80 for 1800-1899,
    +0 for 1900s, +20 for 2000s, +40 for 2100s, +60 for 2200s.
    """
    if pesel is None or len(pesel) != 11 or not pesel.isascii() or not pesel.isdigit():
        return None
    weighted = sum(int(d) * w for d, w in zip(pesel, _PESEL_WEIGHTS, strict=False))
    if (10 - weighted % 10) % 10 != int(pesel[10]):
        return None
    year, month, day = int(pesel[0:2]), int(pesel[2:4]), int(pesel[4:6])
    century = {0: 1900, 1: 2000, 2: 2100, 3: 2200, 4: 1800}[month // 20]
    try:
        return date(century + year, month % 20, day)
    except ValueError:
        return None


def contact_identifier(contact: Contact) -> str | None:
    """The contact's own id when the export carried one (a ``uuid``/``id`` column)."""
    for column in _IDENTIFIER_COLUMNS:
        value = contact.extra.get(column)
        if value:
            return value
    return None


def _birthdate(person: Person) -> str | None:
    for column in _BIRTHDATE_COLUMNS:
        value = person.extra.get(column)
        if value:
            return value
    born = birthdate_from_pesel(person.pesel)
    return born.isoformat() if born is not None else None


def _phones(contact: Contact) -> tuple[list[str], str | None]:
    numbers: list[str] = []
    fax: str | None = None
    for phone in contact.phones:
        key = try_normalize_phone(phone.number)
        shown = display_phone(key) if key is not None else phone.number
        label = _fold(phone.name or "")
        if fax is None and any(word in label for word in _FAX_WORDS):
            fax = shown
        elif shown not in numbers:
            numbers.append(shown)
    return numbers, fax


def _custom_fields(
    contact: Contact, names: Mapping[str, str], policy: FieldPolicy
) -> dict[str, str | None]:
    result: dict[str, str | None] = {}
    wanted = policy.custom_fields
    for uuid, value in contact.custom_fields.items():
        name = names.get(uuid) or uuid
        if wanted is not None and name not in wanted and uuid not in wanted:
            continue
        if name in result:  # two fields with one name: keep both, tell them apart
            name = f"{name} ({uuid})"
        result[name] = value
    if policy.expose_id_document and isinstance(contact, Person):
        for attribute, label in ID_DOCUMENT_LABELS.items():
            value = getattr(contact, attribute)
            if value:
                result[label] = value
    return result


def thulium_record(
    contact: Contact,
    *,
    custom_field_names: Mapping[str, str] | None = None,
    policy: FieldPolicy | None = None,
) -> dict[str, Any]:
    """*contact* as Thulium's JSON object, with only the keys *policy* allows.

    *custom_field_names* maps a custom field's uuid to its name; *policy*
    defaults to ``FieldPolicy()`` (no PESEL, birth date or identity document).
    """
    policy = policy or FieldPolicy()
    names = custom_field_names or {}
    allowed = policy.allowed
    record: dict[str, Any] = {}
    if isinstance(contact, Person):
        given = " ".join(p for p in (contact.first_name, contact.middle_name) if p)
        record["name"] = given or None
        record["surname"] = contact.last_name
        record["pesel"] = contact.pesel
        if "birthdate" in allowed:
            record["birthdate"] = _birthdate(contact)
    else:
        record["surname"] = contact.name
        record["nip"] = contact.nip
        record["regon"] = contact.regon
    numbers, fax = _phones(contact)
    record["phone_number"] = numbers
    record["fax"] = fax
    record["email"] = list(dict.fromkeys(e.address for e in contact.emails))
    record["identifier"] = contact_identifier(contact)
    record["note"] = contact.description
    record.update(_addresses(contact.addresses))
    if "custom_fields" in allowed:
        record["custom_fields"] = _custom_fields(contact, names, policy)
    return {key: value for key, value in record.items() if key in allowed and value}
