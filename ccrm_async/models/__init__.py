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
from .contacts import Address, Email, Organisation, Person, Phone, Supervisor, SupervisorRole
from .notes import Note, NoteCall, NoteFile, NoteOrganisation, NotePerson, NoteUser
from .rejects import RejectedRecord

__all__ = [
    "Address",
    "CallDirection",
    "CallRecord",
    "CallService",
    "CallStatus",
    "Caller",
    "ContactType",
    "Email",
    "ExternalNumber",
    "Flag",
    "Note",
    "NoteCall",
    "NoteFile",
    "NoteOrganisation",
    "NotePerson",
    "NoteUser",
    "Organisation",
    "Person",
    "Phone",
    "Receiver",
    "RejectedRecord",
    "Supervisor",
    "SupervisorRole",
    "TalkStatus",
    "UserTalk",
]
