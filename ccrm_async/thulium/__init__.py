"""Thulium "external CRM" lookup: who is calling, answered from CCRM contacts (seed 003).

When a call reaches the Thulium contact centre, Thulium sends
``GET <url>?phone_number=...`` to our server; we answer with the caller's
contact in the JSON fields Thulium documents, or 404.

>>> directory = ContactDirectory.from_files(                         # doctest: +SKIP
...     ["exportPerson.csv", "exportOrganisation.csv"], path="directory.sqlite")
>>> app = create_lookup_app(directory, basic_auth=("thulium", "s3cret"))  # doctest: +SKIP
>>> async with LookupServer(app, "0.0.0.0", 8080):                   # doctest: +SKIP
...     ...

- :mod:`~ccrm_async.thulium.phones`: phone numbers to canonical keys;
- :class:`ContactDirectory`: phone -> contact (:mod:`.directory`), read from
  export files (:mod:`.files`), kept in SQLite (:mod:`.store`), refreshed from
  CCRM with :class:`RefreshOptions` (:mod:`.refresh`);
- :mod:`~ccrm_async.thulium.fields`: a contact as Thulium's JSON;
- :func:`create_lookup_app`: the endpoint; :func:`openapi_document` describes it;
- the command line ``ccrm-async thulium serve|build`` lives in :mod:`ccrm_async.cli`.
"""

from .._serving import ConnectionLimits
from .access import AccessControl, DistinctNumberLimiter
from .app import (
    LOOKUP_SERVICE,
    LookupServer,
    LookupService,
    ScrubbedServerLog,
    create_lookup_app,
)
from .directory import ContactDirectory
from .fields import (
    DEFAULT_FIELDS,
    SENSITIVE_FIELDS,
    THULIUM_FIELDS,
    FieldPolicy,
    thulium_record,
)
from .files import ExportFileSource, detect_kind
from .metrics import LookupMetrics
from .openapi import CONTENT_TYPE, DEFAULT_PATH, openapi_document
from .phones import (
    PhoneNumberError,
    display_phone,
    mask_phone,
    normalize_phone,
    try_normalize_phone,
)
from .refresh import (
    ORGANISATION_REFRESH_COLUMNS,
    PEOPLE_REFRESH_COLUMNS,
    SENSITIVE_PEOPLE_COLUMNS,
    RefreshOptions,
)
from .store import DirectoryError, DirectoryStats, is_directory_file

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_FIELDS",
    "DEFAULT_PATH",
    "LOOKUP_SERVICE",
    "ORGANISATION_REFRESH_COLUMNS",
    "PEOPLE_REFRESH_COLUMNS",
    "SENSITIVE_FIELDS",
    "SENSITIVE_PEOPLE_COLUMNS",
    "THULIUM_FIELDS",
    "AccessControl",
    "ConnectionLimits",
    "ContactDirectory",
    "DirectoryError",
    "DirectoryStats",
    "DistinctNumberLimiter",
    "ExportFileSource",
    "FieldPolicy",
    "LookupMetrics",
    "LookupServer",
    "LookupService",
    "PhoneNumberError",
    "RefreshOptions",
    "ScrubbedServerLog",
    "create_lookup_app",
    "detect_kind",
    "display_phone",
    "is_directory_file",
    "mask_phone",
    "normalize_phone",
    "openapi_document",
    "thulium_record",
    "try_normalize_phone",
]
