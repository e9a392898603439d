"""A fake CCRM for tests, benchmarks, the demo and your own tests.

>>> async with CCRMEmulator(calls=3000) as emu:                      # doctest: +SKIP
...     async with CCRMClient(base_url=emu.url, token=emu.token) as crm:
...         calls = [c async for c in crm.call_history("2024-01-01", "2024-01-31")]

See :class:`CCRMEmulator` and :class:`Faults`.
"""

from ._ccrm import FAULT_NAMES, RATE_LIMIT_BODY, CCRMEmulator, Faults, LoggedRequest
from ._contacts import ContactFactory
from ._custom_fields import SEED_CUSTOM_FIELDS, CustomFieldStore
from ._data import CallDataset, draft_js
from ._export_files import ExportFile, render_export
from ._exports import EmulatedExport, ExportArea, ExportFaults
from ._intum import INTUM_FAULT_NAMES, INTUM_ROUTES, IntumEmulator, IntumFaults, IntumRequest
from ._php import RECORD_HABITS, PhpHabits, php_spelling, unreadable

__all__ = [
    "FAULT_NAMES",
    "INTUM_FAULT_NAMES",
    "INTUM_ROUTES",
    "RATE_LIMIT_BODY",
    "RECORD_HABITS",
    "SEED_CUSTOM_FIELDS",
    "CCRMEmulator",
    "CallDataset",
    "ContactFactory",
    "CustomFieldStore",
    "EmulatedExport",
    "ExportArea",
    "ExportFaults",
    "ExportFile",
    "Faults",
    "IntumEmulator",
    "IntumFaults",
    "IntumRequest",
    "LoggedRequest",
    "PhpHabits",
    "draft_js",
    "php_spelling",
    "render_export",
    "unreadable",
]
