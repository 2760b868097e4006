"""Arrow tables into Spark DataFrames with the Arrow schema kept, not inferred.

``spark.createDataFrame(table.to_pandas())`` infers the schema from pandas: map columns fail
(``CANNOT_INFER_TYPE_FOR_FIELD``), structs can become maps, nullable ints become doubles,
all-null columns become void and an empty batch has no schema at all. Here the Spark schema
is built from the Arrow schema, and the rows go over as Arrow where Spark takes Arrow
(Spark 4: classic and Spark Connect), else as Python rows shaped for that schema (Spark 3.5).
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from driftgate.core.errors import TableError

__all__ = ["spark_schema", "to_spark_frame"]


def spark_schema(schema: pa.Schema, *, table: str = "<table>"):
    """The Spark ``StructType`` of an Arrow schema; a column of Arrow type ``null`` has no type to write."""
    from pyspark.sql.pandas.types import from_arrow_schema

    untyped = [f.name for f in schema if pa.types.is_null(f.type)]
    if untyped:
        raise TableError(f"{table}: column(s) {', '.join(untyped)} have no type (Arrow null); give the batch "
                         "a typed schema", table=table)
    return from_arrow_schema(schema)


def to_spark_frame(spark, data: pa.Table, *, table: str = "<table>"):
    """A DataFrame holding ``data`` with exactly its schema (also when ``data`` is empty)."""
    schema = spark_schema(data.schema, table=table)
    if takes_arrow():
        return spark.createDataFrame(data, schema=schema)
    return spark.createDataFrame(_python_rows(data), schema=schema)


def takes_arrow() -> bool:
    """Whether ``createDataFrame`` takes an Arrow table: PySpark 4.0 and later, classic and Connect."""
    import pyspark

    return int(pyspark.__version__.split(".")[0]) >= 4


def _python_rows(data: pa.Table) -> list[tuple]:
    columns = [[_python(v, field.type) for v in data.column(i).to_pylist()] for i, field in enumerate(data.schema)]
    return list(zip(*columns)) if columns else []


def _python(value: Any, type_: pa.DataType) -> Any:
    """Arrow's Python values in the shapes Spark's row converter expects (maps as dicts)."""
    if value is None:
        return None
    if pa.types.is_map(type_):
        return {k: _python(v, type_.item_type) for k, v in value}
    if pa.types.is_struct(type_):
        return tuple(_python(value.get(f.name), f.type) for f in type_)
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return [_python(v, type_.value_type) for v in value]
    return value
