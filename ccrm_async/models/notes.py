"""Notes attached to a call (seed 002, ``GET /publicApi/notes?callHistory=<uuid>``)."""

from __future__ import annotations

from datetime import datetime

import attrs

from .._core.draftjs import plain_text
from .calls import CallDirection, CallService, ExternalNumber

__all__ = ["Note", "NoteCall", "NoteFile", "NoteOrganisation", "NotePerson", "NoteUser"]


@attrs.frozen
class NoteUser:
    """The CRM user who wrote the note."""

    uuid: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@attrs.frozen
class NoteCall:
    """The contact-history event the note belongs to."""

    uuid: str | None = None
    call_date: datetime | None = None
    direction: CallDirection | None = None
    service: CallService | None = None
    external_number: ExternalNumber | None = None


@attrs.frozen
class NotePerson:
    uuid: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@attrs.frozen
class NoteOrganisation:
    uuid: str | None = None
    name: str | None = None


@attrs.frozen
class NoteFile:
    """A file attached to a note; ``file_size`` in bytes."""

    uuid: str | None = None
    uploaded_at: datetime | None = None
    related_to: str | None = None
    mime_type: str | None = None
    file_extension: str | None = None
    file_size: int | None = None
    file_description: str | None = None
    file_name: str | None = None


@attrs.frozen
class Note:
    """A note. ``text`` is as sent (often a Draft.js JSON document; None when
    the API sent none); ``plain_text`` is the readable text. ``status`` is
    ``"exist"`` or the server's word for a deleted note. ``pinned`` and
    ``edited`` are None when the API left the flag empty."""

    uuid: str
    text: str | None = None
    created: datetime | None = None
    status: str | None = None
    user: NoteUser | None = None
    call: NoteCall | None = None
    person: NotePerson | None = None
    organisation: NoteOrganisation | None = None
    pinned: bool | None = None
    edited: bool | None = None
    files: tuple[NoteFile, ...] = ()

    @property
    def plain_text(self) -> str:
        """The readable text: Draft.js blocks joined by newlines, else ``text``
        (``""`` when there is none)."""
        return plain_text(self.text) if self.text is not None else ""
