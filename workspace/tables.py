"""Tables: one small interface and its local Delta implementation (Spark: :mod:`.spark_tables`).

Every write is a single Delta transaction (append, overwrite, or a
``replace_where`` overwrite of a predicate), so a failed write leaves the table
exactly as it was. Readers get Arrow tables; stages convert as they need.
"""
from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Literal

import pyarrow as pa

from driftgate.core.errors import TableConflict, TableError
from driftgate.core.types import split_name

__all__ = [
    "TableStore", "DeltaTableStore", "Filter", "FILTER_OPS", "check_append_types", "filter_expression",
    "CHECKPOINT_INTERVAL", "COMPACT_MIN_FILES", "METADATA_PREFIX",
]

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL = 10
"""Commits between Delta checkpoints of local tables (Delta Lake's own default)."""

COMPACT_MIN_FILES = 50
"""Files before :meth:`DeltaTableStore.compact` merges a table (Databricks' auto-compaction default)."""

METADATA_PREFIX = "driftgate."

WriteMode = Literal["append", "overwrite"]


Filter = tuple[str, str, Any]
"""``(column, op, value)``; ``column`` may name a struct field as ``window.start``; ``op`` is one of
:data:`FILTER_OPS` (``in`` / ``not in`` take a list). A list of filters is their conjunction."""

FILTER_OPS = ("=", "==", "!=", ">", ">=", "<", "<=", "in", "not in")


class TableStore(ABC):
    """What every stage needs from a lakehouse: the one table interface of driftgate.

    Stages call these methods and nothing else (no probing for capabilities, no opening a
    table behind the store's back). Abstract methods are what every store must do; the
    others have a default that states what a store without that capability does. The
    contract suite ``tests/test_table_store_contract.py`` runs against every store.

    Names are Unity Catalog names ``catalog.schema.table``. Every write is one transaction:
    a failed write leaves the table as it was.
    """

    keeps_commit_metadata: ClassVar[bool] = False
    """Whether :meth:`write` keeps ``metadata`` in the commit and :meth:`commit_metadata` reads it back."""

    supports_transactions: ClassVar[bool] = False
    """Whether :meth:`write` honours ``txn`` and :meth:`transaction_version` reads the steps back.
    A store without it refuses a ``txn`` write (a caller asking for a guard never gets an
    unguarded write); callers that can do without the guard check this flag first."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether the table exists."""

    @abstractmethod
    def version(self, name: str) -> int:
        """Current version of ``name``; raises :class:`TableError` if missing."""

    def merge(self, name: str, source: pa.Table, *, on: str, update: list[str]) -> int:
        """Delta MERGE: rows of ``name`` whose ``on`` matches a ``source`` row get its ``update``
        columns (late labels by request id); returns the target rows updated. One commit.
        Default: refused with a :class:`TableError` (a store without MERGE cannot take late labels)."""
        raise TableError(f"{name}: this table store cannot MERGE (late labels need a Delta table)", table=name)

    @abstractmethod
    def last_modified(self, name: str) -> float:
        """Commit time (epoch seconds) of the latest version."""

    def schema(self, name: str) -> pa.Schema:
        """The table's Arrow schema. Default: the schema of a full read (stores override it
        with a metadata lookup)."""
        return self.read(name).schema

    @abstractmethod
    def read(self, name: str, columns: list[str] | None = None, filters: list[Filter] | None = None,
             version: int | None = None) -> pa.Table:
        """Rows of ``name`` (at ``version``; default the latest), projected to ``columns`` and
        filtered by the conjunction of ``filters`` (see :data:`Filter`), pushed into the scan."""

    @abstractmethod
    def read_since(self, name: str, version: int) -> pa.Table:
        """Rows added by the commits after ``version`` (for incremental refresh); rows that a
        commit rewrote (a label filled in) count as added."""

    @abstractmethod
    def write(self, name: str, data: pa.Table, mode: WriteMode = "append", replace_where: str | None = None,
              partition_by: list[str] | None = None, metadata: dict[str, str] | None = None,
              txn: tuple[str, int] | None = None) -> int:
        """Write in one transaction; returns the new table version.

        Args:
            name: the table; created by the first write.
            data: the rows.
            mode: ``append`` (new columns are added; a column's type may only widen, see
                :func:`check_append_types`) or ``overwrite`` (rows and schema replaced).
            replace_where: overwrite only the rows matching this SQL predicate (types checked
                as for an append).
            partition_by: partition columns of a table this write creates.
            metadata: ``driftgate.*`` keys kept in this commit's info, where
                :meth:`commit_metadata` finds them again without reading any rows.
            txn: ``(app_id, step)``: the write lands only if ``step`` is above the step recorded
                for ``app_id``, and records it in the same commit; else :class:`TableConflict`
                and nothing written. Only stores with :attr:`supports_transactions`; others refuse.

        Raises:
            TableError: the write failed or was refused; the table is as it was.
        """

    def commit_metadata(self, name: str) -> dict[str, str]:
        """The ``driftgate.*`` keys of the latest commit ({} when another writer made it).
        Default: {} (a store that keeps no commit info: callers read the rows instead)."""
        return {}

    def transaction_version(self, name: str, app_id: str) -> int | None:
        """The latest step a ``txn`` write recorded for ``app_id`` (None if never).
        Default: None (see :attr:`supports_transactions`)."""
        return None

    @abstractmethod
    def restore(self, name: str, version: int | None) -> None:
        """Put ``name`` back to ``version`` as a new commit; ``None`` (the table did not exist
        then) drops it. Used to undo the first of two writes when the second fails."""

    def compact(self, name: str, min_files: int = COMPACT_MIN_FILES) -> bool:
        """Merge a table's small files once it holds ``min_files``; returns whether it ran.
        Default: False, never (the platform compacts, as Databricks' auto-compaction does)."""
        return False

    def files(self, name: str) -> list[str] | None:
        """URIs of the current version's data files, for readers that scan them directly (the
        Spark engine on local tables). Default: None (read the table by name)."""
        return None

    def location(self, name: str) -> str | None:
        """The local folder of the table's files, recorded with training data.
        Default: None (the name is the address, as in Unity Catalog)."""
        return None

    def table_id(self, name: str, version: int | None = None) -> str | None:
        """The table's stable id (Delta metadata id) when known without a network call.
        Default: None."""
        return None

    def scratch_dir(self) -> Path | None:
        """A local folder beside the tables for caches that may be lost (monitor summaries).
        Default: None (no local folder: in-process caches only)."""
        return None

    def spark_session(self) -> Any | None:
        """The Spark session the store works through. Default: None."""
        return None

    def _refuse_txn(self, name: str, txn: tuple[str, int] | None) -> None:
        if txn is not None and not self.supports_transactions:
            raise TableError(f"{name}: {type(self).__name__} records no application transactions, so the guarded "
                             f"write txn={txn!r} cannot be honoured; nothing written", table=name)


# Delta's type widening: wider integers, and integers up to 32 bits to double (exact)
_WIDENING: dict[pa.DataType, tuple[pa.DataType, ...]] = {
    pa.int8(): (pa.int16(), pa.int32(), pa.int64(), pa.float64()),
    pa.int16(): (pa.int32(), pa.int64(), pa.float64()),
    pa.int32(): (pa.int64(), pa.float64()),
    pa.uint8(): (pa.int16(), pa.int32(), pa.int64(), pa.float64()),
    pa.uint16(): (pa.int32(), pa.int64(), pa.float64()),
    pa.uint32(): (pa.int64(), pa.float64()),
    pa.float16(): (pa.float32(), pa.float64()),
    pa.float32(): (pa.float64(),),
}


def _plain(t: pa.DataType) -> pa.DataType:
    """The logical type: dictionary encoding and large / view layouts do not change the values."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        return pa.list_(t.value_field)
    return t


def _type_loss(new: pa.DataType, old: pa.DataType) -> str | None:
    """Why storing ``new`` values in an ``old`` column would change them; None when it would not."""
    new, old = _plain(new), _plain(old)
    if new == old or pa.types.is_null(new):
        return None
    if pa.types.is_timestamp(new) and pa.types.is_timestamp(old):
        if (new.tz is None) != (old.tz is None):
            return ("a timestamp without time zone would be taken as UTC" if new.tz is None
                    else "a timestamp with a time zone would lose it")
        return None  # the unit only: the table keeps microseconds, as Delta does
    if old in _WIDENING.get(new, ()):
        return None
    if pa.types.is_struct(new) and pa.types.is_struct(old):
        for f in new:
            idx = old.get_field_index(f.name)
            if idx >= 0 and (why := _type_loss(f.type, old.field(idx).type)):
                return f"field {f.name!r}: {why}"
        return None  # new fields are schema evolution
    if pa.types.is_list(new) and pa.types.is_list(old):
        return _type_loss(new.value_type, old.value_type)
    if pa.types.is_map(new) and pa.types.is_map(old):
        return _type_loss(new.key_type, old.key_type) or _type_loss(new.item_type, old.item_type)
    return "its values would be converted"


def check_append_types(name: str, table: pa.Schema, data: pa.Schema) -> None:
    """Refuse data whose column types would change its values in the table, as Unity Catalog does.

    Appending 52.7 to an integer column would store 52, 2 to a boolean column True, and a
    timestamp without time zone would be taken as UTC. Allowed: equal types, new columns
    (schema evolution), all-NULL columns, safe widening (int8→int16→int32→int64, unsigned to a
    wider signed integer, integers of up to 32 bits to float64, float16→float32→float64, as
    Delta's type widening allows), string / large_string and other layouts of
    one type, struct fields by the same rules (new fields too), and timestamps that differ only
    in unit with the same time zone (the table keeps microseconds, as Delta does). Anything else
    is refused: narrowing (int64 data into an int32 column), int64 into float64 (inexact above
    2**53), floating into integer, integer into boolean, naive into zoned timestamps.

    Raises:
        TableError: naming the table, the column and both types.
    """
    for f in data:
        idx = table.get_field_index(f.name)
        if idx < 0:
            continue
        want = table.field(idx).type
        why = _type_loss(f.type, want)
        if why is not None:
            raise TableError(f"{name}: column {f.name!r} is {want} in the table but {f.type} in the data ({why}); "
                             "nothing written: cast the column to the table's type first", table=name)


def _commit_stamp(path: Path, version: int) -> tuple[int, int] | None:
    """(inode, mtime) of a version's commit file; None when it is gone."""
    try:
        st = (path / "_delta_log" / f"{version:020d}.json").stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


class DeltaTableStore(TableStore):
    """Local Delta tables written with ``deltalake`` under ``<root>/<catalog>/<schema>/<table>``."""

    supports_transactions: ClassVar[bool] = True
    keeps_commit_metadata: ClassVar[bool] = True

    def __init__(self, root: str | Path, spark: Any | None = None):
        """``spark``: a session that computes over these tables (``monitor.engine: spark`` reads the
        current version's data files through it); None: no Spark."""
        self.root = Path(root)
        self.spark = spark
        # Open handles of the latest versions, per thread (a DeltaTable is not safe to update
        # while another thread reads it). Opening replays the log since the last checkpoint
        # (~10 ms or more); bringing an open handle up to date lists the log (~1.5 ms).
        self._handles = threading.local()

    def spark_session(self) -> Any | None:
        return self.spark

    def path(self, name: str) -> Path:
        catalog, schema, table = split_name(name)
        return self.root / catalog / schema / table

    def _cached(self, path: Path):
        """An open handle brought up to date, or None when there is none or it may be stale.

        A table deleted and created again (``driftgate demo`` resets its world) no longer has
        the handle's commit file as it was, so that file's identity is checked first.
        """
        cache = getattr(self._handles, "tables", None)
        entry = cache.get(path) if cache else None
        if entry is None:
            return None
        table, version, stamp = entry
        try:
            if _commit_stamp(path, version) != stamp:
                return None
            table.update_incremental()
        except Exception:  # noqa: BLE001 - any doubt: open the table afresh
            return None
        return table

    def _remember(self, path: Path, table) -> None:
        cache = getattr(self._handles, "tables", None)
        if cache is None:
            cache = self._handles.tables = {}
        version = int(table.version())
        cache[path] = (table, version, _commit_stamp(path, version))

    def _table(self, name: str, version: int | None = None):
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        path = self.path(name)
        if version is None and (cached := self._cached(path)) is not None:
            self._remember(path, cached)
            return cached
        try:
            table = DeltaTable(str(path), version=version)
            if version is None:
                self._remember(path, table)
            return table
        except TableNotFoundError as exc:
            raise TableError(f"{name}: table does not exist (looked in {path})", table=name) from exc
        except Exception as exc:  # deltalake raises several unrelated types for corrupt logs
            raise TableError(f"{name}: cannot open Delta table at {path}: {exc}", table=name) from exc

    def exists(self, name: str) -> bool:
        return (self.path(name) / "_delta_log").is_dir()

    def version(self, name: str) -> int:
        return int(self._table(name).version())

    def last_modified(self, name: str) -> float:
        history = self._table(name).history(1)
        return float(history[0]["timestamp"]) / 1000.0 if history else 0.0

    def files(self, name: str) -> list[str]:
        """Current data files (what Spark reads locally; the folder alone has stale files)."""
        return list(self._table(name).file_uris())

    def location(self, name: str) -> str:
        return str(self.path(name))

    def table_id(self, name: str, version: int | None = None) -> str:
        return str(self._table(name, version).metadata().id)

    def scratch_dir(self) -> Path:
        return self.root

    def schema(self, name: str) -> pa.Schema:
        return pa.schema(self._table(name).schema().to_arrow())

    def read(self, name, columns=None, filters=None, version=None) -> pa.Table:
        table = self._table(name, version)
        expr = filter_expression(filters, name)
        try:
            if filters:
                skipped = _read_skipping(table, columns, filters)
                if skipped is not None:
                    return skipped
            return table.to_pyarrow_table(columns=columns, filters=expr)
        except Exception as exc:
            raise TableError(f"{name}: read failed: {exc}", table=name) from exc

    def commit_metadata(self, name: str) -> dict[str, str]:
        return _latest_metadata(self._table(name))

    def read_since(self, name: str, version: int) -> pa.Table:
        """Rows added by the commits after ``version``: the add actions of those commits."""
        import pyarrow.parquet as pq

        table = self._table(name)
        current = table.version()
        if version >= current:
            return table.to_pyarrow_table().schema.empty_table()
        current_files = table.file_uris()
        added = _added_files(self.path(name), version, current)
        if added is not None:
            new = [uri for uri in current_files if _file_name(uri) in added]
        else:
            before = set(self._table(name, version).file_uris())
            new = [uri for uri in current_files if uri not in before]
        if not new:
            return pa.schema(table.schema().to_arrow()).empty_table()
        parts = [pq.read_table(uri) for uri in new]
        return pa.concat_tables(parts, promote_options="default")

    def merge(self, name: str, source: pa.Table, *, on: str, update: list[str]) -> int:
        """Delta MERGE through ``deltalake`` (see :class:`TableStore`)."""
        table = self._table(name)
        q = _sql_ident
        try:
            merger = table.merge(source=source, predicate=f"t.{q(on)} = s.{q(on)}", source_alias="s",
                                 target_alias="t")
            stats = merger.when_matched_update(updates={q(c): f"s.{q(c)}" for c in update}).execute()
        except Exception as exc:
            raise TableError(f"{name}: merge on {on} failed: {exc}", table=name) from exc
        return int(stats.get("num_target_rows_updated", 0))

    def transaction_version(self, name: str, app_id: str) -> int | None:
        """The latest Delta application-transaction version recorded for ``app_id`` (None if never)."""
        found = self._table(name).transaction_version(app_id)
        return None if found is None else int(found)

    def write(self, name, data, mode="append", replace_where=None, partition_by=None, metadata=None,
              txn=None) -> int:
        """One Delta commit (see :class:`TableStore`).

        ``txn = (app_id, version)`` guards the write: it happens only if the table's recorded
        version for ``app_id`` is below ``version`` (else :class:`TableConflict`, nothing
        written) and records ``version`` in the same commit, so two writers that planned the
        same step cannot both land (a commit with the same app id after the check fails ours).
        """
        from deltalake import CommitProperties, Transaction, write_deltalake
        from deltalake.exceptions import CommitFailedError

        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"mode": mode}
        if replace_where is not None:
            kwargs.update(mode="overwrite", predicate=replace_where)
        if partition_by and not self.exists(name):
            kwargs["partition_by"] = partition_by
        if mode == "overwrite" and replace_where is None:
            kwargs["schema_mode"] = "overwrite"
        elif mode == "append":
            kwargs["schema_mode"] = "merge"
        commit: dict[str, Any] = {}
        if metadata:
            commit["custom_metadata"] = _prefixed(metadata)
        # the store's up-to-date handle: the writer need not open the table again (~10-25 ms)
        target = self._table(name) if self.exists(name) else None
        if target is not None and (mode == "append" or replace_where is not None):
            check_append_types(name, pa.schema(target.schema().to_arrow()), data.schema)
        if txn is not None:
            app_id, txn_version = txn
            done = target.transaction_version(app_id) if target is not None else None
            if done is not None and done >= txn_version:
                raise TableConflict(f"{name}: another writer already recorded step {done} of {app_id} "
                                    f"(this write was step {txn_version}); nothing written", table=name)
            # checked on this handle's version: a commit after it with the same app id fails ours
            commit["app_transactions"] = [Transaction(app_id=app_id, version=txn_version)]
        if commit:
            kwargs["commit_properties"] = CommitProperties(**commit)
        try:
            write_deltalake(target if target is not None else str(path), data, **kwargs)
        except CommitFailedError as exc:
            if txn is not None and "oncurrent" in str(exc):
                raise TableConflict(f"{name}: a concurrent writer committed step {txn[1]} of {txn[0]} first; "
                                    "nothing written", table=name) from exc
            raise TableError(f"{name}: write ({kwargs['mode']}) failed: {exc}", table=name) from exc
        except Exception as exc:
            raise TableError(f"{name}: write ({kwargs['mode']}) failed: {exc}", table=name) from exc
        table = self._table(name)
        version = int(table.version())
        if version and version % CHECKPOINT_INTERVAL == 0:
            # Opening a table replays its JSON log since the last checkpoint, and deltalake does
            # not checkpoint by itself: a metric or audit table with 40 commits took 27 ms to open
            # (10 ms after a checkpoint), and more with every commit. The commit has landed by
            # now, so a failed checkpoint only costs speed.
            try:
                table.create_checkpoint()
            except Exception as exc:  # noqa: BLE001 - see above
                log.warning("%s: checkpoint at version %s failed: %s", name, version, exc)
        return version

    def restore(self, name: str, version: int | None) -> None:
        if version is None:
            import shutil

            shutil.rmtree(self.path(name), ignore_errors=True)
            return
        try:
            self._table(name).restore(version)
        except TableError:
            raise
        except Exception as exc:
            raise TableError(f"{name}: restore to version {version} failed: {exc}", table=name) from exc

    def compact(self, name: str, min_files: int = COMPACT_MIN_FILES) -> bool:
        """Merge the table's files into few once it holds ``min_files`` or more.

        Tables appended to by every refresh grow a small file per commit, and every read
        opens them all (the profile table took 150 ms to read after 30 daily refreshes,
        10 ms compacted). The compaction commit changes no rows (``dataChange`` false) and
        carries the latest commit's ``driftgate.*`` metadata forward. Returns whether it ran.
        """
        from deltalake import CommitProperties

        table = self._table(name)
        if len(table.file_uris()) < min_files:
            return False
        carried = _latest_metadata(table)
        try:
            table.optimize.compact(commit_properties=CommitProperties(custom_metadata=carried) if carried else None)
        except Exception as exc:  # noqa: BLE001 - compaction only buys speed; the table is intact
            log.warning("%s: compaction failed: %s", name, exc)
            return False
        return True


def _latest_metadata(table) -> dict[str, str]:
    history = table.history(1)
    info = history[0] if history else {}
    return {k: str(v) for k, v in info.items() if k.startswith(METADATA_PREFIX)}


def _sql_ident(name: str) -> str:
    """A column name for a Delta SQL predicate: bare when plain lower-case, else double-quoted."""
    import re

    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'


def _prefixed(metadata: dict[str, str]) -> dict[str, str]:
    return {(k if k.startswith(METADATA_PREFIX) else METADATA_PREFIX + k): str(v) for k, v in metadata.items()}


def filter_expression(filters: list[Filter] | None, name: str = "?"):
    """The pyarrow dataset expression of a conjunction of :data:`Filter` s (None for no filters).

    Raises:
        TableError: an operator outside :data:`FILTER_OPS`.
    """
    import pyarrow.dataset as ds

    expr = None
    for col, op, value in filters or []:
        field = ds.field(*col.split("."))
        if op in ("=", "=="):
            term = field == value
        elif op == "!=":
            term = field != value
        elif op == ">":
            term = field > value
        elif op == ">=":
            term = field >= value
        elif op == "<":
            term = field < value
        elif op == "<=":
            term = field <= value
        elif op in ("in", "not in"):
            term = field.isin(list(value))
            term = ~term if op == "not in" else term
        else:
            raise TableError(f"{name}: filter operator must be one of {', '.join(FILTER_OPS)}, got {op!r}", table=name)
        expr = term if expr is None else expr & term
    return expr


def _read_skipping(table, columns, filters) -> pa.Table | None:
    """A filtered read that opens only the files whose Delta statistics can match (data skipping).

    ``to_pyarrow_table(filters=...)`` opens every file of the table to filter it (54 ms for one
    day out of 31 daily files; 17 ms this way). The statistics in the add actions rule out the
    rest: min/max per column. Only plain tables take this path (no partition columns, column
    mapping or deletion vectors); else, and when no file can be skipped, None.
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
    from datetime import timedelta

    meta = table.metadata()
    if meta.partition_columns or meta.configuration.get("delta.columnMapping.mode", "none") != "none":
        return None
    if table.protocol().min_reader_version > 2:
        return None
    schema = pa.schema(table.schema().to_arrow())
    actions = pa.table(table.get_add_actions(flatten=True))
    keep = pa.array([True] * actions.num_rows)
    for col, op, value in filters:
        if op not in ("=", "==", ">", ">=", "<", "<=") or "." in col or f"min.{col}" not in actions.column_names:
            continue
        typ = schema.field(col).type
        if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_timestamp(typ)
                or pa.types.is_date(typ)):
            continue  # string statistics are truncated prefixes: no skipping on them
        low, high = actions.column(f"min.{col}"), actions.column(f"max.{col}")
        if pa.types.is_timestamp(high.type):
            # Delta writes timestamp statistics truncated to milliseconds
            high = pc.add(high, pa.scalar(timedelta(milliseconds=1), pa.duration(high.type.unit)))
        try:
            bound = pa.scalar(value).cast(low.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return None
        if op in (">", ">="):
            may = pc.greater_equal(high, bound) if op == ">=" else pc.greater(high, bound)
        elif op in ("<", "<="):
            may = pc.less_equal(low, bound) if op == "<=" else pc.less(low, bound)
        else:
            may = pc.and_(pc.less_equal(low, bound), pc.greater_equal(high, bound))
        keep = pc.and_(keep, pc.fill_null(may, True))  # no statistics: the file may match
    kept = {_file_name(p) for p in actions.filter(keep).column("path").to_pylist()}
    if len(kept) == actions.num_rows:
        return None
    files = [uri for uri in table.file_uris() if _file_name(uri) in kept]
    data = ds.dataset(files, schema=schema, format="parquet")
    return data.to_table(columns=columns, filter=filter_expression(filters))


def _file_name(path: str) -> str:
    """A data file's name: Delta names files with a UUID, so the name alone identifies one."""
    from urllib.parse import unquote

    return unquote(path).rsplit("/", 1)[-1]


def _added_files(root: Path, version: int, current: int) -> set[str] | None:
    """Names of the files that the commits ``version+1 .. current`` added with new rows.

    Read from the commit files of the Delta log, so no older snapshot is opened (that replayed
    the log: ~20 ms per refresh). None when a commit file is gone (log cleanup) or a commit
    rearranged rows without changing them (compaction): the caller then diffs snapshots.
    """
    import json

    added: set[str] = set()
    for v in range(version + 1, current + 1):
        try:
            lines = (root / "_delta_log" / f"{v:020d}.json").read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            if '"add"' not in line:
                continue
            action = json.loads(line).get("add")
            if action is None:
                continue
            if not action.get("dataChange", True):
                return None
            added.add(_file_name(action["path"]))
    return added
