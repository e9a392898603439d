"""Call history records (seed 002, ``GET /publicApi/callHistory``)."""

from __future__ import annotations

from datetime import datetime

import attrs

from ._enum import WireEnum

__all__ = [
    "CallDirection",
    "CallRecord",
    "CallService",
    "CallStatus",
    "Caller",
    "ContactType",
    "ExternalNumber",
    "Flag",
    "Receiver",
    "TalkStatus",
    "UserTalk",
]


class CallDirection(WireEnum):
    IN = "in"
    OUT = "out"
    INTERNAL = "internal"


class CallService(WireEnum):
    CALL = "call"
    SMS = "sms"
    FAX = "fax"


class CallStatus(WireEnum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"


class ContactType(WireEnum):
    """Who a number belongs to in the CRM."""

    UNKNOWN = "unknown"
    PERSON = "person"
    ORGANISATION = "organisation"


class TalkStatus(WireEnum):
    """Whether the call went through a queue, not, or was internal."""

    QUEUE = "queue"
    NO_QUEUE = "no_queue"
    INTERNAL = "internal"


@attrs.frozen
class Caller:
    """One side of a call (``to`` / ``from``); names only when the CRM knows it."""

    type: ContactType = ContactType.UNKNOWN
    number: str | None = None
    number_not_formatted: str | None = None
    uuid: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    avatar: str | None = None


@attrs.frozen
class Receiver:
    """A CRM user who took part in the call."""

    internal: int | None = None
    uuid: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@attrs.frozen
class UserTalk:
    status: TalkStatus | None = None
    receivers: tuple[Receiver, ...] = ()


@attrs.frozen
class ExternalNumber:
    number_not_formatted: str | None = None
    number_formatted: str | None = None
    type: ContactType = ContactType.UNKNOWN


@attrs.frozen
class Flag:
    """A tag on a call; ``rel_uuid`` identifies the tag's link to this call."""

    uuid: str | None = None
    name: str | None = None
    color: str | None = None
    rel_uuid: str | None = None


@attrs.frozen
class CallRecord:
    """One event of the contact history: a call, an SMS or a fax.

    ``call_date`` is naive, in the account's local time (Poland); None when the
    API sent a MySQL zero date. ``duration`` is in seconds; ``has_notes`` says
    whether notes exist (the wire's ``note`` 0/1). ``duration``, ``has_notes``
    and ``cost`` are None when the API left them empty (``null``, ``""``) or
    out: unknown, never a made-up 0 or False.
    """

    uuid: str
    call_date: datetime | None
    direction: CallDirection | None = None
    service: CallService | None = None
    status: CallStatus | None = None
    duration: int | None = None
    has_notes: bool | None = None
    destination: str | None = None
    cost: int | float | None = None
    sms_data: str | None = None
    to: Caller | None = None
    from_: Caller | None = None
    user_talk: UserTalk | None = None
    external_number: ExternalNumber | None = None
    flags: tuple[Flag, ...] = ()
