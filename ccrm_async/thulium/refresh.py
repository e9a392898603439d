"""Contacts from CCRM itself: both exports through an export receiver.

:class:`RefreshOptions` is what a refresh may be asked (columns, sensitive
data, custom-field names, the deadline, whether to keep the files), one
frozen value passed from the command line to
:meth:`~ccrm_async.thulium.ContactDirectory.refresh` and
:meth:`~ccrm_async.thulium.ContactDirectory.refresh_every`.
:func:`export_contacts` runs both exports at once and hands back the
downloaded files and the custom-field names.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .._core.export_columns import CUSTOM_FIELD_PREFIX, ORGANISATION_COLUMNS, PEOPLE_COLUMNS
from ..exports import ExportResult

if TYPE_CHECKING:
    from ..client import CCRMClient
    from ..exports import ExportJob, ExportReceiver

__all__ = [
    "ORGANISATION_REFRESH_COLUMNS",
    "PEOPLE_REFRESH_COLUMNS",
    "SENSITIVE_PEOPLE_COLUMNS",
    "RefreshOptions",
    "export_contacts",
]

#: Added to the people columns with ``include_sensitive=True``.
SENSITIVE_PEOPLE_COLUMNS: tuple[str, ...] = ("pesel", "idDocType", "idDocNumber", "idDocIssuer")
#: People columns a refresh exports by default: the documented ones but the
#: sensitive ones (what is not exported cannot leak) and the nested lists.
PEOPLE_REFRESH_COLUMNS: tuple[str, ...] = tuple(
    c
    for c in PEOPLE_COLUMNS
    if c not in {*SENSITIVE_PEOPLE_COLUMNS, "organisations", "supervisors"}
)
#: Organisation columns a refresh exports by default (no nested lists, no registry).
ORGANISATION_REFRESH_COLUMNS: tuple[str, ...] = tuple(
    c for c in ORGANISATION_COLUMNS if c not in {"registry", "people", "supervisors"}
)


def _columns(value: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _names(value: Mapping[str, str] | None) -> Mapping[str, str] | None:
    return None if value is None else dict(value)


@attrs.frozen(kw_only=True)
class RefreshOptions:
    """What a refresh from CCRM exports, and how long it may take.

    - *people_columns* / *organisation_columns* (None: the defaults):
      :data:`PEOPLE_REFRESH_COLUMNS` (plus :data:`SENSITIVE_PEOPLE_COLUMNS`
      with *include_sensitive*) and :data:`ORGANISATION_REFRESH_COLUMNS`, each
      with a ``customFields.<uuid>`` column for every custom field of that
      contact type;
    - *include_sensitive* (False): also export PESEL and identity documents;
    - *custom_field_names* (None): uuid -> name, over the names CCRM lists;
    - *timeout* (1800 s): each export's deadline;
    - *keep_files* (False): the downloaded exports are deleted once built.
    """

    people_columns: tuple[str, ...] | None = attrs.field(default=None, converter=_columns)
    organisation_columns: tuple[str, ...] | None = attrs.field(default=None, converter=_columns)
    include_sensitive: bool = False
    custom_field_names: Mapping[str, str] | None = attrs.field(
        default=None, converter=_names, eq=False, hash=False
    )
    timeout: float = 1800.0
    keep_files: bool = False

    def __attrs_post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"timeout must be more than 0 seconds, got {self.timeout}")

    def people(self, custom_fields: Collection[str]) -> list[str]:
        """The people columns to export, given the people custom-field uuids."""
        if self.people_columns is not None:
            return list(self.people_columns)
        return [
            *PEOPLE_REFRESH_COLUMNS,
            *(SENSITIVE_PEOPLE_COLUMNS if self.include_sensitive else ()),
            *(CUSTOM_FIELD_PREFIX + uuid for uuid in custom_fields),
        ]

    def organisations(self, custom_fields: Collection[str]) -> list[str]:
        """The organisation columns to export, given their custom-field uuids."""
        if self.organisation_columns is not None:
            return list(self.organisation_columns)
        return [
            *ORGANISATION_REFRESH_COLUMNS,
            *(CUSTOM_FIELD_PREFIX + uuid for uuid in custom_fields),
        ]


async def export_contacts(
    crm: CCRMClient, receiver: ExportReceiver, options: RefreshOptions
) -> tuple[list[ExportResult], dict[str, str]]:
    """Export people and organisations at once; the downloaded results, and
    custom-field uuid -> name (CCRM's names, overridden by the options')."""
    person = await crm.custom_fields.list("person")
    organisation = await crm.custom_fields.list("organisation")
    names = {f.uuid: f.name for f in [*person, *organisation] if f.name}
    if options.custom_field_names is not None:
        names.update(options.custom_field_names)
    results = await _export_both(
        crm,
        receiver,
        options.people(_uuids(person)),
        options.organisations(_uuids(organisation)),
        options.timeout,
    )
    return results, names


def _uuids(fields: Collection[Any]) -> list[str]:
    return list(dict.fromkeys(f.uuid for f in fields))


async def _export_both(
    crm: CCRMClient,
    receiver: ExportReceiver,
    people_columns: Sequence[str],
    organisation_columns: Sequence[str],
    timeout: float,  # noqa: ASYNC109 - the export jobs' deadline
) -> list[ExportResult]:
    jobs: list[ExportJob] = []
    try:
        jobs.append(await crm.export_people(people_columns, receiver=receiver, timeout=timeout))
        jobs.append(
            await crm.export_organisations(organisation_columns, receiver=receiver, timeout=timeout)
        )
        return list(await asyncio.gather(*(job.wait() for job in jobs)))
    except BaseException:
        # Fail fast: stop the other job, and remove a file that already arrived
        # (awaiting a finished job does not suspend, even while cancelled).
        for job in jobs:
            if job.cancel():
                continue
            with contextlib.suppress(Exception):
                (await job.wait()).path.unlink(missing_ok=True)
        raise
