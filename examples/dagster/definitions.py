"""A Dagster code location: CCRM call history of many accounts, month by month, with dlt.

    dagster dev -f examples/dagster/definitions.py

Assets ``dlt_ccrm_calls`` (with the ``notes`` table) and ``dlt_ccrm_custom_fields``,
partitioned by account x month. Each partition is its own dlt pipeline (its
own incremental state), so months load independently and a month that is
still open picks up only what is new when it runs again.

Configuration, all from the environment:

- ``CCRM_ACCOUNTS``: the accounts, comma-separated (``acme,beta``);
- per account (name upper-cased, ``-`` as ``_``): ``CCRM_TOKEN__ACME`` (the API
  key), and optionally ``CCRM_BASE_URL__ACME``, ``CCRM_LOCAL_ADDR__ACME`` (the
  egress IP to bind to), ``CCRM_PROXY__ACME`` (an HTTP proxy with a fixed egress IP);
- ``CCRM_START``: the first month (``2024-01-01``);
- ``CCRM_TZ``: the accounts' time zone (``Europe/Warsaw``);
- destination: Postgres when dlt's ``DESTINATION__POSTGRES__CREDENTIALS`` is
  set (``postgresql://user:password@host:5432/warehouse``), all accounts in one
  dataset ``CCRM_DATASET`` (``crm``); otherwise DuckDB, one file per account in
  ``CCRM_DUCKDB_DIR`` (``.``), since a DuckDB file takes one writer at a time;
- ``CCRM_DLT_PIPELINES_DIR``: where dlt keeps pipeline state (dlt's default).
"""

import calendar
import os
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import dlt
from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Definitions,
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
)
from dagster_dlt import DagsterDltResource, dlt_assets

from ccrm_async.dlt import DEFAULT_TZ, ccrm_source

ACCOUNTS = [a.strip() for a in os.environ.get("CCRM_ACCOUNTS", "demo").split(",") if a.strip()]
START = os.environ.get("CCRM_START", "2024-01-01")
TZ = os.environ.get("CCRM_TZ", DEFAULT_TZ)
DATASET = os.environ.get("CCRM_DATASET", "crm")
PIPELINES_DIR = os.environ.get("CCRM_DLT_PIPELINES_DIR") or None

PARTITIONS = MultiPartitionsDefinition(
    {
        "account": StaticPartitionsDefinition(ACCOUNTS),
        "month": MonthlyPartitionsDefinition(start_date=START, timezone=TZ),
    }
)


def _setting(name: str, account: str) -> str | None:
    return os.environ.get(f"{name}__{account.upper().replace('-', '_')}") or None


def destination(account: str) -> Any:
    """Postgres when dlt's credentials for it are in the environment, else DuckDB."""
    if os.environ.get("DESTINATION__POSTGRES__CREDENTIALS"):
        return dlt.destinations.postgres()
    folder = Path(os.environ.get("CCRM_DUCKDB_DIR", "."))
    return dlt.destinations.duckdb(str(folder / f"ccrm_{account}.duckdb"))


def month_range(month: str) -> tuple[datetime, datetime]:
    """The first and the last second of a month partition (``2024-01-01``)."""
    first = date.fromisoformat(month)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return datetime(first.year, first.month, 1), datetime(
        last.year, last.month, last.day, 23, 59, 59
    )


def source_for(account: str, month: str) -> Any:
    date_from, date_to = month_range(month)
    return ccrm_source(
        account=account,
        token=_setting("CCRM_TOKEN", account),
        base_url=_setting("CCRM_BASE_URL", account),
        local_addr=_setting("CCRM_LOCAL_ADDR", account),
        proxy=_setting("CCRM_PROXY", account),
        date_from=date_from,
        date_to=date_to,
        tz=TZ,
    )


def pipeline_for(account: str, month: str) -> Any:
    """One pipeline (one incremental state) per account and month."""
    return dlt.pipeline(
        pipeline_name=f"ccrm_{account}_{month[:7].replace('-', '_')}",
        pipelines_dir=PIPELINES_DIR,
        destination=destination(account),
        dataset_name=DATASET,
    )


# dagster-dlt reads the assets (one per resource) from a source and pipeline
# given here; this source is never run, so it needs no real key.
_SHAPE = ccrm_source(account="shape", token="unused", date_from=START, tz=TZ)  # noqa: S106


@dlt_assets(
    dlt_source=_SHAPE,
    dlt_pipeline=dlt.pipeline(pipeline_name="ccrm", pipelines_dir=PIPELINES_DIR),
    name="ccrm",
    group_name="ccrm",
    partitions_def=PARTITIONS,
    # One run per partition, so the per-account run limit in dagster.yaml holds.
    backfill_policy=BackfillPolicy.multi_run(1),
)
def ccrm_assets(context: AssetExecutionContext, dlt_resource: DagsterDltResource) -> Iterator[Any]:
    key = context.partition_key
    assert isinstance(key, MultiPartitionKey)
    account, month = key.keys_by_dimension["account"], key.keys_by_dimension["month"]
    yield from dlt_resource.run(
        context=context,
        dlt_source=source_for(account, month),
        dlt_pipeline=pipeline_for(account, month),
    )


defs = Definitions(assets=[ccrm_assets], resources={"dlt_resource": DagsterDltResource()})
