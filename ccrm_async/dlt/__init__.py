"""Load CCRM call history and intum deals into any warehouse with dlt.

Needs the extra: ``pip install 'ccrm-async[dlt]'`` (dlt and pyarrow).

>>> import dlt                                                        # doctest: +SKIP
>>> from ccrm_async.dlt import ccrm_source
>>> pipeline = dlt.pipeline("ccrm_acme", destination="duckdb", dataset_name="crm")
>>> pipeline.run(ccrm_source(account="acme", date_from="2024-01-01", notes=True))

See :func:`ccrm_source` and :func:`intum_source`; the tables' columns are in
:mod:`ccrm_async.dlt` as Arrow schemas (:data:`CALLS_SCHEMA`, ...).
"""

try:
    import dlt as _dlt  # noqa: F401 - only to give a clear message when missing
    import pyarrow as _pyarrow  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "ccrm_async.dlt needs dlt and pyarrow: pip install 'ccrm-async[dlt]'"
    ) from exc

from ._sources import DEFAULT_TZ, ROWS_PER_TABLE, ccrm_source, intum_source
from ._tables import (
    CALLS_SCHEMA,
    CUSTOM_FIELDS_SCHEMA,
    DEALS_SCHEMA,
    MONEY_TYPE,
    NOTES_SCHEMA,
)

__all__ = [
    "CALLS_SCHEMA",
    "CUSTOM_FIELDS_SCHEMA",
    "DEALS_SCHEMA",
    "DEFAULT_TZ",
    "MONEY_TYPE",
    "NOTES_SCHEMA",
    "ROWS_PER_TABLE",
    "ccrm_source",
    "intum_source",
]
