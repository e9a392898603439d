"""Typed records. They know nothing of the wire: see :mod:`ccrm_async.converter`."""

from .calls import (
    CallDirection,
    Caller,
    CallRecord,
    CallService,
    CallStatus,
    ContactType,
    ExternalNumber,
    Flag,
    Receiver,
    TalkStatus,
    UserTalk,
)
from .notes import Note, NoteCall, NoteFile, NoteOrganisation, NotePerson, NoteUser

__all__ = [
    "CallDirection",
    "CallRecord",
    "CallService",
    "CallStatus",
    "Caller",
    "ContactType",
    "ExternalNumber",
    "Flag",
    "Note",
    "NoteCall",
    "NoteFile",
    "NoteOrganisation",
    "NotePerson",
    "NoteUser",
    "Receiver",
    "TalkStatus",
    "UserTalk",
]
