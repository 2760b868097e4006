"""The table store on Spark (Databricks, or a local Spark session): Unity Catalog tables by name."""
from __future__ import annotations

import json
import logging
from typing import Any, Literal

import pyarrow as pa

from driftgate.core.errors import TableError
from driftgate.workspace.spark_arrow import to_spark_frame
from driftgate.workspace.tables import METADATA_PREFIX, TableStore, _prefixed, check_append_types

__all__ = ["SparkTableStore"]


class SparkTableStore(TableStore):
    """Unity Catalog tables through a Spark session (on Databricks, or any Delta-enabled Spark).

    Args:
        spark: the session.
        table_format: ``delta`` (Unity Catalog, always in production). ``parquet`` is the
            stand-in the contract tests use where the Delta jars cannot be fetched: plain Spark
            tables, which have no versions, history, change feed, ``replaceWhere`` or restore,
            so those operations raise :class:`TableError` ("needs Delta") on it.
    """

    def __init__(self, spark, table_format: Literal["delta", "parquet"] = "delta"):
        self.spark = spark
        self.table_format = table_format
        self.keeps_commit_metadata = table_format == "delta"  # Delta keeps userMetadata per commit

    @property
    def _delta(self) -> bool:
        return self.table_format == "delta"

    def _need_delta(self, name: str, what: str) -> None:
        if not self._delta:
            raise TableError(f"{name}: {what} needs a Delta table (this store writes {self.table_format})",
                             table=name)

    def spark_session(self):
        return self.spark

    def exists(self, name: str) -> bool:
        return bool(self.spark.catalog.tableExists(name))

    def _history(self, name: str):
        self._need_delta(name, "the commit history")
        try:
            return self.spark.sql(f"DESCRIBE HISTORY {name} LIMIT 1").collect()[0]
        except Exception as exc:
            raise TableError(f"{name}: cannot read Delta history: {exc}", table=name) from exc

    def version(self, name: str) -> int:
        return int(self._history(name)["version"])

    def last_modified(self, name: str) -> float:
        return self._history(name)["timestamp"].timestamp()

    def schema(self, name: str) -> pa.Schema:
        try:
            return self.spark.read.table(name).limit(0).toArrow().schema
        except Exception as exc:
            raise TableError(f"{name}: cannot read the table's schema: {exc}", table=name) from exc

    def read(self, name, columns=None, filters=None, version=None) -> pa.Table:
        reader = self.spark.read
        if version is not None:
            self._need_delta(name, "reading an older version")
            reader = reader.option("versionAsOf", version)
        try:
            df = reader.table(name)
            for col, op, value in filters or []:
                df = df.filter(_spark_predicate(col, op, value))
            if columns:
                df = df.select(*columns)
            return df.toArrow()
        except TableError:
            raise
        except Exception as exc:
            raise TableError(f"{name}: read failed: {exc}", table=name) from exc

    def read_since(self, name: str, version: int) -> pa.Table:
        """Rows inserted or updated after ``version`` (an UPDATE/MERGE of late labels counts: its
        post-images are rows to recompute). From the change data feed where the table has it
        (driftgate enables it on tables it creates); else the snapshot difference of the two
        versions, which reads both (slower, same rows)."""
        self._need_delta(name, "reading the rows added since a version (change data feed)")
        if not self._change_feed_enabled(name):
            logging.getLogger(__name__).info("%s: no change data feed; diffing versions %s and latest", name, version)
            try:
                now = self.spark.read.table(name)
                old = self.spark.read.option("versionAsOf", version).table(name)
                from pyspark.sql import functions as F

                old = old.select(*[F.col(f.name) if f.name in old.columns else F.lit(None).cast(f.dataType).alias(f.name)
                                   for f in now.schema])
                return now.exceptAll(old).toArrow()
            except Exception as exc:
                raise TableError(f"{name}: rows since version {version}: {exc}", table=name) from exc
        try:
            df = (
                self.spark.read.option("readChangeFeed", "true")
                .option("startingVersion", version + 1)
                .table(name)
                .filter("_change_type = 'insert' OR _change_type = 'update_postimage'")
                .drop("_change_type", "_commit_version", "_commit_timestamp")
            )
            return df.toArrow()
        except Exception as exc:
            raise TableError(f"{name}: change data feed since version {version} failed: {exc}", table=name) from exc

    def _change_feed_enabled(self, name: str) -> bool:
        try:
            props = {r[0]: r[1] for r in self.spark.sql(f"SHOW TBLPROPERTIES {name}").collect()}
        except Exception:  # noqa: BLE001 - no properties readable: take the path that needs none
            return False
        return str(props.get("delta.enableChangeDataFeed", "false")).lower() == "true"

    def commit_metadata(self, name: str) -> dict[str, str]:
        if not self._delta:
            return {}  # plain tables keep no commit info (the TableStore default)
        raw = self._history(name)["userMetadata"]
        try:
            found = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return {k: str(v) for k, v in found.items() if k.startswith(METADATA_PREFIX)} if isinstance(found, dict) else {}

    def write(self, name, data, mode="append", replace_where=None, partition_by=None, metadata=None,
              txn=None) -> int:
        """One commit (see :class:`TableStore`); returns the new version (-1 on plain tables,
        which have none). ``txn`` is refused: this store records no application transactions
        (on Databricks the job's ``max_concurrent_runs: 1`` serialises refreshes)."""
        self._refuse_txn(name, txn)
        existing = self.exists(name)
        if existing and (mode == "append" or replace_where is not None):
            current = self.schema(name)
            check_append_types(name, current, data.schema)
            if set(data.schema.names) - set(current.names):
                self._need_delta(name, "adding columns on append (schema merge)")
        df = to_spark_frame(self.spark, data, table=name)  # the Arrow schema, not pandas inference
        writer = df.write.format(self.table_format)
        if self._delta:
            writer = writer.option("mergeSchema", "true")
            if not existing:  # tables driftgate creates carry a change data feed (incremental refresh)
                writer = writer.option("delta.enableChangeDataFeed", "true")
            if metadata:
                # Delta keeps a writer's userMetadata in the commit info (DESCRIBE HISTORY)
                writer = writer.option("userMetadata", json.dumps(_prefixed(metadata), sort_keys=True))
        if replace_where is not None:
            self._need_delta(name, "replace_where")
            writer = writer.mode("overwrite").option("replaceWhere", replace_where)
        else:
            writer = writer.mode(mode)
        if partition_by and not existing:
            writer = writer.partitionBy(*partition_by)
        try:
            writer.saveAsTable(name)
        except Exception as exc:
            raise TableError(f"{name}: write failed: {exc}", table=name) from exc
        return self.version(name) if self._delta else -1

    def restore(self, name: str, version: int | None) -> None:
        try:
            if version is None:
                self.spark.sql(f"DROP TABLE IF EXISTS {name}")
                return
            self._need_delta(name, "restore")
            self.spark.sql(f"RESTORE TABLE {name} TO VERSION AS OF {int(version)}")
        except TableError:
            raise
        except Exception as exc:
            raise TableError(f"{name}: restore to version {version} failed: {exc}", table=name) from exc


    def merge(self, name: str, source: pa.Table, *, on: str, update: list[str]) -> int:
        """``MERGE INTO name USING source ON on WHEN MATCHED THEN UPDATE SET update`` (one Delta commit)."""
        import uuid

        self._need_delta(name, "MERGE")
        view = f"driftgate_merge_{uuid.uuid4().hex[:12]}"
        sets = ", ".join(f"t.`{c}` = s.`{c}`" for c in update)
        try:
            # the source keeps its Arrow types: a label column with nulls stays a nullable integer
            to_spark_frame(self.spark, source, table=name).createOrReplaceTempView(view)
            out = self.spark.sql(f"MERGE INTO {name} t USING {view} s ON t.`{on}` = s.`{on}` "
                                 f"WHEN MATCHED THEN UPDATE SET {sets}").collect()
        except Exception as exc:
            raise TableError(f"{name}: merge on {on} failed: {exc}", table=name) from exc
        finally:
            self.spark.catalog.dropTempView(view)
        row = out[0].asDict() if out else {}
        return int(row.get("num_updated_rows", row.get("num_affected_rows", 0)) or 0)


def _spark_predicate(col: str, op: str, value: Any):
    from pyspark.sql import functions as F

    c = F.col(col)  # a dotted name reads a struct field (window.start)
    if op in ("in", "not in"):
        found = c.isin(list(value))
        return ~found if op == "not in" else found
    ops = {"=": c.__eq__, "==": c.__eq__, "!=": c.__ne__, ">": c.__gt__, ">=": c.__ge__, "<": c.__lt__,
           "<=": c.__le__}
    if op not in ops:
        from driftgate.workspace.tables import FILTER_OPS

        raise TableError(f"filter operator must be one of {', '.join(FILTER_OPS)}, got {op!r}")
    return ops[op](value)
