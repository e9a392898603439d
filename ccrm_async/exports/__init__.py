"""Export jobs: an awaitable handle completed by CCRM's ``pushUrl`` callback.

>>> async with CCRMClient(account="acme") as crm, ExportReceiver(         # doctest: +SKIP
...         listen=("0.0.0.0", 8080), public_url="https://hooks.example.com") as rx:
...     job = await crm.export_people(["firstName", "lastName", "phone1"], receiver=rx)
...     result = await job
...     async for person in result.people():
...         print(person.display_name, [p.number for p in person.phones])

:func:`run_export` does one export end to end (the command line uses it);
:func:`read_people` and :func:`read_organisations` read an export file you
already have.
"""

from .._core.export_columns import ORGANISATION_COLUMNS, PEOPLE_COLUMNS
from .._core.export_files import ExportFormat
from .._core.export_lifecycle import MAX_TRIES, ExportStatus
from ._download import DEFAULT_MAX_BYTES
from ._files import iter_organisations as read_organisations
from ._files import iter_people as read_people
from ._files import iter_rows as read_rows
from ._job import ExportJob, ExportResult
from ._receiver import ExportReceiver
from ._run import EXPORT_PATHS, run_export, start_export
from ._store import JobRecord, JobStore, MemoryJobStore, SQLiteJobStore

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EXPORT_PATHS",
    "MAX_TRIES",
    "ORGANISATION_COLUMNS",
    "PEOPLE_COLUMNS",
    "ExportFormat",
    "ExportJob",
    "ExportReceiver",
    "ExportResult",
    "ExportStatus",
    "JobRecord",
    "JobStore",
    "MemoryJobStore",
    "SQLiteJobStore",
    "read_organisations",
    "read_people",
    "read_rows",
    "run_export",
    "start_export",
]
