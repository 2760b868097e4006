"""The Spark engine: Spark reads, windows, slices and distributes; the shared kernel computes.

For logs that outgrow one machine. Spark does the data-sized work: it reads the
monitored table (``spark.read.table`` on Databricks; locally the Delta table's current
Parquet files from ``ws.tables.files(name)``, since Delta jars cannot be fetched),
evaluates the slicing expressions with Spark SQL, assigns every row to its window per
granularity, copies each window's rows to the next window (its CONSECUTIVE comparison),
and groups by (granularity, window). Each group is handed, as Arrow, to the same
:func:`driftgate.monitoring.engine.compute` the embedded engine runs, on the executors
(``applyInArrow``); only the small metric rows travel back to the driver. So one
definition produces every row, and the parity test checks that the Spark-side
windowing and slicing agree with the embedded engine's.

A window's rows (plus its predecessor's) must fit in one executor's memory.
"""
from __future__ import annotations

import io
from datetime import datetime

import pyarrow as pa

from driftgate.core.errors import MonitorError
from driftgate.monitoring import engine

__all__ = ["compute", "spark_session", "arrow_schema"]

_MICROS = {"5 minutes": 300_000_000, "30 minutes": 1_800_000_000, "1 hour": 3_600_000_000,
           "1 day": 86_400_000_000, "1 week": 7 * 86_400_000_000, "2 weeks": 14 * 86_400_000_000,
           "3 weeks": 21 * 86_400_000_000, "4 weeks": 28 * 86_400_000_000}
_MONDAY_ORIGIN = -3 * 86_400_000_000  # 1969-12-29, the Monday before the epoch (Arrow's week origin)


def spark_session(ws):
    """The workspace's Spark session (SparkTableStore) or the active one."""
    spark = ws.tables.spark_session()
    if spark is not None:
        return spark
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise MonitorError("monitor.engine is 'spark' but pyspark is not installed (pip install driftgate[spark])") \
            from exc
    active = SparkSession.getActiveSession()
    if active is None:
        raise MonitorError("monitor.engine is 'spark' but no Spark session is active; start one or use "
                           "monitor.engine=embedded")
    return active


def arrow_schema(spark_schema) -> pa.Schema:
    """The Arrow schema of a Spark schema (classic or Spark Connect), timestamps in UTC."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(spark_schema, timezone="UTC") if _takes_timezone(to_arrow_schema) \
        else to_arrow_schema(spark_schema)


def _takes_timezone(fn) -> bool:
    import inspect

    return "timezone" in inspect.signature(fn).parameters


def _read(spark, ws, name: str):
    files = ws.tables.files(name)
    if files is not None:
        # local Delta: read exactly the current version's data files
        return spark.read.parquet(*files)
    return spark.read.table(name)


def _window_start(col, granularity: str):
    from pyspark.sql import functions as F

    if granularity in ("1 month", "1 year"):
        return F.date_trunc("month" if granularity == "1 month" else "year", col)
    dur = _MICROS[granularity]
    origin = _MONDAY_ORIGIN if "week" in granularity else 0
    us = F.unix_micros(col)
    return F.timestamp_micros(F.floor((us - F.lit(origin)) / F.lit(dur)).cast("long") * F.lit(dur) + F.lit(origin))


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _unipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(io.BytesIO(data)).read_all()


def compute(ws, plan: engine.Plan, *, source_name: str, time_range: tuple[datetime, datetime] | None,
            baseline: pa.Table | None, profile_windows: dict[str, set[datetime]] | None,
            drift_windows: dict[str, set[datetime]] | None, commit_version: int,
            now: datetime | None = None) -> tuple[pa.Table, pa.Table]:
    """Same contract as :func:`driftgate.monitoring.engine.compute`, with the source read and grouped by Spark.

    Args:
        ws: the workspace (its table store gives the Spark session or the local file list).
        plan: the resolved monitor plan.
        source_name: the monitored table.
        time_range: [start, end) of the rows to read (incremental refresh), None for all.
        baseline: the baseline rows (small; shipped to every group), or None.
        profile_windows, drift_windows, commit_version, now: as in the embedded engine.
    """
    from pyspark.sql import functions as F

    cfg = plan.cfg
    spark = spark_session(ws)
    df = _read(spark, ws, source_name)
    schema = arrow_schema(df.schema)  # Spark's own schema: no rows travel to the driver for it
    ts = cfg.timestamp_col
    if time_range is not None:
        df = df.filter((F.col(ts) >= F.lit(time_range[0])) & (F.col(ts) < F.lit(time_range[1])))
    slice_cols = []
    for i, (text, _) in enumerate(plan.slices):
        name = f"{engine.SLICE_PREFIX}{i}"
        df = df.withColumn(name, F.expr(text))
        slice_cols.append(name)
    # Shipped inside the kernel's closure (cloudpickle), not through sparkContext.broadcast, which
    # serverless and standard (Spark Connect) compute do not have. The baseline is small by design.
    payload = {"plan": plan, "baseline": baseline, "schema": schema, "commit_version": commit_version,
               "profile_windows": profile_windows, "drift_windows": drift_windows, "now": now}

    if ts is None:  # snapshot: one group, the whole table
        grouped = df.withColumn("__gran", F.lit("snapshot")).withColumn("__target", F.lit(None).cast("timestamp"))
    else:
        parts = []
        for gran in cfg.granularities:
            start = _window_start(F.col(ts), gran)
            cur = df.withColumn("__gran", F.lit(gran)).withColumn("__target", start)
            parts.append(cur)
            if drift_windows is None or drift_windows.get(gran):
                # the same rows again, as the previous window of the next window
                nxt = _next_window(start, gran)
                parts.append(df.withColumn("__gran", F.lit(gran)).withColumn("__target", nxt))
        grouped = parts[0]
        for part in parts[1:]:
            grouped = grouped.unionByName(part)
        if profile_windows is not None:
            wanted = {(g, s) for g, starts in {**profile_windows}.items() for s in starts}
            wanted |= {(g, s) for g, starts in (drift_windows or {}).items() for s in starts}
            cond = None
            for g, s in wanted:
                c = (F.col("__gran") == F.lit(g)) & (F.col("__target") == F.lit(s))
                cond = c if cond is None else (cond | c)
            grouped = grouped.filter(cond if cond is not None else F.lit(False))

    def kernel(table: pa.Table) -> pa.Table:
        p = payload
        gran = table.column("__gran")[0].as_py()
        target = table.column("__target")[0].as_py()
        rows = table.drop_columns(["__gran", "__target"])
        rows = _restore_types(rows, p["schema"])
        the_plan = p["plan"]
        if gran == "snapshot":
            prof, drift = engine.compute(the_plan, rows, p["baseline"], commit_version=p["commit_version"],
                                         now=p["now"], workers=1, emit_baseline=False)
        else:
            target = engine.as_utc(target)
            only_gran = engine.restrict_granularity(the_plan, gran)
            pw = {gran: {target}} if p["profile_windows"] is None or target in p["profile_windows"].get(gran, ()) \
                else {gran: set()}
            dw = {gran: {target}} if p["drift_windows"] is None or target in p["drift_windows"].get(gran, ()) \
                else {gran: set()}
            prof, drift = engine.compute(only_gran, rows, p["baseline"], profile_windows=pw, drift_windows=dw,
                                         commit_version=p["commit_version"], workers=1, emit_baseline=False)
        return pa.table({"profile": pa.array([_ipc(prof)], pa.binary()),
                         "drift": pa.array([_ipc(drift)], pa.binary())})

    result = grouped.groupBy("__gran", "__target").applyInArrow(kernel, "profile binary, drift binary")
    collected = result.toArrow()
    profiles = [_unipc(b) for b in collected.column("profile").to_pylist()]
    drifts = [_unipc(b) for b in collected.column("drift").to_pylist()]
    pschema, dschema = engine.profile_schema(cfg), engine.drift_schema(cfg)
    profile = pa.concat_tables([pschema.empty_table(), *profiles])
    drift = pa.concat_tables([dschema.empty_table(), *drifts])
    if baseline is not None:
        base_profile, _ = engine.compute(plan, baseline.schema.empty_table(), baseline, commit_version=commit_version,
                                         now=now, workers=1)
        profile = pa.concat_tables([profile, base_profile])
    return profile, drift


def _next_window(start_col, granularity: str):
    from pyspark.sql import functions as F

    if granularity == "1 month":
        return F.add_months(start_col, 1).cast("timestamp")
    if granularity == "1 year":
        return F.add_months(start_col, 12).cast("timestamp")
    return F.timestamp_micros(F.unix_micros(start_col) + F.lit(_MICROS[granularity]))


def _restore_types(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """Spark hands back its own types (timestamps in the session zone, ints as Spark ints); cast to the source's."""
    cols = {}
    for name in rows.column_names:
        col = rows.column(name)
        if name in schema.names:
            want = schema.field(name).type
            if col.type != want:
                col = col.cast(want)
        cols[name] = col
    return pa.table(cols)
