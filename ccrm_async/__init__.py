"""asyncio client for the Telecube CRM (CCRM) public API.

>>> async with CCRMClient(account="acme", token="...") as crm:       # doctest: +SKIP
...     async for call in crm.call_history("2024-01-01", "2024-01-31"):
...         print(call.call_date, call.direction, call.duration)
"""

__version__ = "0.1.0.dev0"

from .client import CCRMClient
from .config import RetryPolicy, Timeouts
from .custom_fields import CustomFields
from .errors import (
    AuthenticationError,
    CCRMError,
    DownloadError,
    EventLoopError,
    ExportCancelled,
    ExportError,
    ExportTimeout,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    ServerError,
    TransportError,
    ValidationError,
)
from .exports import ExportFormat, ExportJob, ExportReceiver, ExportResult, ExportStatus
from .models import (
    CallDirection,
    Caller,
    CallRecord,
    CallService,
    CallStatus,
    ContactType,
    ExternalNumber,
    Flag,
    Note,
    NoteCall,
    NoteFile,
    NoteOrganisation,
    NotePerson,
    NoteUser,
    Receiver,
    RejectedRecord,
    TalkStatus,
    UserTalk,
)
from .models.custom_fields import (
    CheckboxField,
    CustomField,
    DateField,
    DateTimeField,
    FieldSpec,
    FieldType,
    NumberField,
    SelectField,
    TextField,
)
from .pagination import Pull, PullStats

__all__ = [
    "AuthenticationError",
    "CCRMClient",
    "CCRMError",
    "CallDirection",
    "CallRecord",
    "CallService",
    "CallStatus",
    "Caller",
    "CheckboxField",
    "ContactType",
    "CustomField",
    "CustomFields",
    "DateField",
    "DateTimeField",
    "DownloadError",
    "EventLoopError",
    "ExportCancelled",
    "ExportError",
    "ExportFormat",
    "ExportJob",
    "ExportReceiver",
    "ExportResult",
    "ExportStatus",
    "ExportTimeout",
    "ExternalNumber",
    "FieldSpec",
    "FieldType",
    "Flag",
    "NotFoundError",
    "Note",
    "NoteCall",
    "NoteFile",
    "NoteOrganisation",
    "NotePerson",
    "NoteUser",
    "NumberField",
    "PermissionDeniedError",
    "Pull",
    "PullStats",
    "RateLimitError",
    "Receiver",
    "RejectedRecord",
    "ResponseError",
    "RetryPolicy",
    "SelectField",
    "ServerError",
    "TalkStatus",
    "TextField",
    "Timeouts",
    "TransportError",
    "UserTalk",
    "ValidationError",
    "__version__",
]
