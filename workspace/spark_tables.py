"""The table store on Spark (Databricks, or a local Spark session): Unity Catalog tables by name."""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from driftgate.core.errors import TableError
from driftgate.workspace.spark_arrow import to_spark_frame
from driftgate.workspace.tables import METADATA_PREFIX, _prefixed

__all__ = ["SparkTableStore"]


class SparkTableStore:
    """Unity Catalog tables through a Spark session (on Databricks, or any Delta-enabled Spark)."""

    def __init__(self, spark):
        self.spark = spark

    def exists(self, name: str) -> bool:
        return bool(self.spark.catalog.tableExists(name))

    def _history(self, name: str):
        try:
            return self.spark.sql(f"DESCRIBE HISTORY {name} LIMIT 1").collect()[0]
        except Exception as exc:
            raise TableError(f"{name}: cannot read Delta history: {exc}", table=name) from exc

    def version(self, name: str) -> int:
        return int(self._history(name)["version"])

    def last_modified(self, name: str) -> float:
        return self._history(name)["timestamp"].timestamp()

    def read(self, name, columns=None, filters=None, version=None) -> pa.Table:
        reader = self.spark.read
        if version is not None:
            reader = reader.option("versionAsOf", version)
        try:
            df = reader.table(name)
            for col, op, value in filters or []:
                df = df.filter(_spark_predicate(col, op, value))
            if columns:
                df = df.select(*columns)
            return df.toArrow()
        except Exception as exc:
            raise TableError(f"{name}: read failed: {exc}", table=name) from exc

    def read_since(self, name: str, version: int) -> pa.Table:
        df = (
            self.spark.read.option("readChangeFeed", "true")
            .option("startingVersion", version + 1)
            .table(name)
            .filter("_change_type = 'insert'")
            .drop("_change_type", "_commit_version", "_commit_timestamp")
        )
        return df.toArrow()

    def commit_metadata(self, name: str) -> dict[str, str]:
        import json

        raw = self._history(name)["userMetadata"]
        try:
            found = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return {k: str(v) for k, v in found.items() if k.startswith(METADATA_PREFIX)} if isinstance(found, dict) else {}

    def write(self, name, data, mode="append", replace_where=None, partition_by=None, metadata=None) -> int:
        import json

        df = to_spark_frame(self.spark, data, table=name)  # the Arrow schema, not pandas inference
        writer = df.write.format("delta").option("mergeSchema", "true")
        if metadata:
            # Delta keeps a writer's userMetadata in the commit info (DESCRIBE HISTORY)
            writer = writer.option("userMetadata", json.dumps(_prefixed(metadata), sort_keys=True))
        if replace_where is not None:
            writer = writer.mode("overwrite").option("replaceWhere", replace_where)
        else:
            writer = writer.mode(mode)
        if partition_by and not self.exists(name):
            writer = writer.partitionBy(*partition_by)
        try:
            writer.saveAsTable(name)
        except Exception as exc:
            raise TableError(f"{name}: write failed: {exc}", table=name) from exc
        return self.version(name)


def _spark_predicate(col: str, op: str, value: Any):
    from pyspark.sql import functions as F

    c = F.col(col)
    ops = {"=": c == value, "==": c == value, "!=": c != value, ">": c > value, ">=": c >= value,
           "<": c < value, "<=": c <= value}
    if op == "in":
        return c.isin(list(value))
    if op == "not in":
        return ~c.isin(list(value))
    return ops[op]
