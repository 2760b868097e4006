"""Feature lookups: one declaration in conf, resolved locally or by Databricks Feature Engineering.

:func:`load_training_data` reads the labelled rows of ``training.table`` (at a pinned
Delta version), keeps the training window, checks everything that would make
training meaningless (missing columns, no rows, one class) and joins the declared
features onto them. Locally the join is a point-in-time join against the local Delta
feature tables (:class:`LocalFeatureSource`); on Databricks it is
``FeatureEngineeringClient.create_training_set`` (:class:`DatabricksFeatureSource`),
which also logs the model so that serving can look the features up itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pandas loads where frames are built, not with the settings
    import pandas as pd

from driftgate.core.errors import TrainingError
from driftgate.training.config import FeatureLookupConfig, TrainingConfig

__all__ = ["TableVersion", "table_version", "TrainingData", "FeatureSource", "LocalFeatureSource", "DatabricksFeatureSource",
           "feature_source", "own_types", "probability_pyfunc", "load_training_data", "point_in_time_join"]


@dataclass(frozen=True)
class TableVersion:
    """A table and the Delta version that was read (lineage)."""

    name: str
    version: int
    role: str
    """``training`` for the labelled rows, ``features`` for a feature table."""
    path: str | None = None
    """Local Delta folder (None on Databricks, where the name is the address)."""
    table_id: str | None = None
    """The Delta table's metadata id (stable across versions), when known without a network call."""


def table_version(tables, name: str, role: str) -> TableVersion:
    """Pin the current version of ``name`` (and, for local Delta tables, its folder and id)."""
    version = tables.version(name)
    return TableVersion(name, version, role, tables.location(name), tables.table_id(name, version))


@dataclass
class TrainingData:
    """Labelled rows of the training window with their features joined on, oldest first."""

    frame: pd.DataFrame
    features: list[str]
    tables: list[TableVersion]
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    handle: Any = field(default=None, repr=False)
    """The Databricks ``TrainingSet`` (None locally): ``fe.log_model`` needs it."""


class FeatureSource(Protocol):
    """Joins declared features onto labelled rows and logs the model accordingly."""

    def check(self, lookups: list[FeatureLookupConfig]) -> list[TableVersion]:
        """Verify each feature table has the lookup key, time column and features; return versions."""
        ...

    def join(self, base: pd.DataFrame, cfg: TrainingConfig, versions: list[TableVersion]) -> tuple[pd.DataFrame, Any]:
        ...

    def log_model(self, model, *, name: str, data: TrainingData, signature, input_example) -> str:
        """Log ``model`` into the active run; return the URI to register."""
        ...


def _columns(tables, name: str) -> list[str]:
    return list(tables.schema(name).names)


def _check_feature_table(name: str, columns: list[str], lookup: FeatureLookupConfig, *, need_time: bool) -> None:
    missing_keys = [k for k in lookup.lookup_key if k not in columns]
    if missing_keys:
        raise TrainingError(
            f"{name}: feature table has no lookup key column {', '.join(map(repr, missing_keys))} "
            f"(training.feature_lookups lookup_key); its columns are {columns}"
        )
    time_col = lookup.feature_time_column
    if need_time and lookup.timestamp_lookup_key and time_col not in columns:
        raise TrainingError(
            f"{name}: feature table has no time column {time_col!r} for the point-in-time lookup "
            "(set training.feature_lookups[].timeseries_column); its columns are "
            f"{columns}"
        )
    missing = [f for f in lookup.features if f not in columns]
    if missing:
        raise TrainingError(
            f"{name}: missing feature column(s) {', '.join(map(repr, missing))} declared in "
            f"training.feature_lookups[].features; the table has {columns}"
        )


def point_in_time_join(base: pd.DataFrame, features: pd.DataFrame, lookup: FeatureLookupConfig) -> pd.DataFrame:
    """For each base row, the latest feature row with the same key at or before the row's time.

    Rows without such a feature row get nulls, as Databricks Feature Engineering gives them.
    Without a ``timestamp_lookup_key`` it is a plain left join on the key (latest row per key).
    Base row order is preserved.
    """
    import pandas as pd

    keys = list(lookup.lookup_key)
    ts = lookup.timestamp_lookup_key
    time_col = lookup.feature_time_column
    order = "__driftgate_row"
    left = base.assign(**{order: range(len(base))})
    right_cols = [*keys, *( [time_col] if time_col and time_col in features.columns else []), *lookup.features]
    right = features[right_cols]
    if ts is None:
        if time_col and time_col in right.columns:
            right = right.sort_values(time_col, kind="mergesort")
        right = right.drop_duplicates(keys, keep="last").drop(columns=[c for c in [time_col] if c in right.columns])
        out = left.merge(right, on=keys, how="left")
    else:
        feature_time = "__driftgate_feature_time"
        right = right.rename(columns={time_col: feature_time})
        right = right[right[feature_time].notna()]
        right[feature_time] = pd.to_datetime(right[feature_time], utc=True).astype("datetime64[ns, UTC]")
        left_ts = "__driftgate_lookup_time"
        left[left_ts] = pd.to_datetime(left[ts], utc=True).astype("datetime64[ns, UTC]")
        for k in keys:
            # merge_asof needs identical key dtypes on both sides.
            left[k] = left[k].astype("string")
            right[k] = right[k].astype("string")
        out = pd.merge_asof(
            left.sort_values(left_ts, kind="mergesort"),
            right.sort_values(feature_time, kind="mergesort"),
            left_on=left_ts, right_on=feature_time, by=keys, direction="backward", allow_exact_matches=True,
        ).drop(columns=[left_ts, feature_time])
        for k in keys:
            out[k] = out[k].astype(base[k].dtype)
    return out.sort_values(order, kind="mergesort").drop(columns=[order]).reset_index(drop=True)


class LocalFeatureSource:
    """Point-in-time joins against local Delta feature tables (``ws.tables``)."""

    def __init__(self, tables):
        self.tables = tables

    def check(self, lookups):
        versions = []
        for lookup in lookups:
            pinned = table_version(self.tables, lookup.table_name, "features")
            _check_feature_table(lookup.table_name, _columns(self.tables, lookup.table_name), lookup, need_time=True)
            versions.append(pinned)
        return versions

    def join(self, base, cfg, versions):
        out = base
        for lookup, tv in zip(cfg.feature_lookups, versions):
            cols = [*lookup.lookup_key, *([lookup.feature_time_column] if lookup.timestamp_lookup_key else []),
                    *lookup.features]
            table = self.tables.read(lookup.table_name, columns=list(dict.fromkeys(cols)), version=tv.version)
            out = point_in_time_join(out, table.to_pandas(), lookup)
        return out, None

    def log_model(self, model, *, name, data, signature, input_example):
        import mlflow

        info = mlflow.sklearn.log_model(model, name=name, signature=signature, input_example=input_example,
                                        **sklearn_serialization(model), **probability_pyfunc(model))
        return info.model_uri


class DatabricksFeatureSource:
    """Databricks Feature Engineering in Unity Catalog, behind the same three calls.

    The client is passed in (tests give a fake that records calls); :func:`feature_source`
    builds the real one only when the workspace backend is ``databricks``.
    """

    def __init__(self, client, spark, tables=None, lookup_cls=None):
        self.client = client
        self.spark = spark
        self.tables = tables
        self._lookup_cls = lookup_cls

    def _lookup(self, **kwargs):
        cls = self._lookup_cls
        if cls is None:
            from databricks.feature_engineering import FeatureLookup as cls
        return cls(**kwargs)

    def check(self, lookups):
        versions = []
        for lookup in lookups:
            version = self.tables.version(lookup.table_name) if self.tables is not None else -1
            if self.tables is not None:
                # The time column is the table's TIMESERIES key there; FE checks it itself.
                _check_feature_table(lookup.table_name, _columns(self.tables, lookup.table_name), lookup,
                                     need_time=False)
            versions.append(TableVersion(lookup.table_name, version, "features"))
        return versions

    def join(self, base, cfg, versions):
        lookups = [
            self._lookup(table_name=lk.table_name, lookup_key=list(lk.lookup_key), feature_names=list(lk.features),
                         timestamp_lookup_key=lk.timestamp_lookup_key)
            for lk in cfg.feature_lookups
        ]
        df = self.spark.createDataFrame(base)
        training_set = self.client.create_training_set(df=df, feature_lookups=lookups, label=cfg.label_col,
                                                       exclude_columns=[])
        frame = training_set.load_df().toPandas()
        return frame, training_set

    def log_model(self, model, *, name, data, signature, input_example):
        import mlflow

        # Packaged with the feature spec so serving looks the features up by key. The served
        # model takes the lookup keys, not the joined feature columns, so the signature and the
        # example must come from the training set (infer_input_example), never from ``x``; the
        # local ``signature``/``input_example`` are deliberately not passed. (Databricks runtimes
        # save scikit-learn models with cloudpickle, so no skops trust list here.)
        # fe.log_model passes further keyword arguments to the flavour's save_model for the raw
        # model its pyfunc wrapper loads: with pyfunc_predict_fn the wrapper (the only flavour the
        # packaged model has, what fe.score_batch and serving call) returns probabilities.
        info = self.client.log_model(model=model, artifact_path=name, flavor=mlflow.sklearn,
                                     training_set=data.handle, infer_input_example=True,
                                     **probability_pyfunc(model))
        uri = getattr(info, "model_uri", None)
        return uri or f"runs:/{mlflow.active_run().info.run_id}/{name}"


def probability_pyfunc(model) -> dict[str, Any]:
    """``mlflow.sklearn`` arguments that make the model's pyfunc ``predict`` return probabilities.

    A classifier's pyfunc ``predict`` returns classes by default; a model that is loaded only as a
    pyfunc (``fe.log_model`` packages just that flavour) would then be scored on 0/1, and ROC AUC
    and thresholds would mean something else than locally. With ``pyfunc_predict_fn="predict_proba"``
    it returns one column per class, named in order by the ``classes`` metadata. Regressors: ``{}``.
    """
    if not callable(getattr(model, "predict_proba", None)):
        return {}
    classes = getattr(model, "classes_", None)
    meta = {"classes": [c.item() if hasattr(c, "item") else c for c in classes]} if classes is not None else {}
    return {"pyfunc_predict_fn": "predict_proba", **({"metadata": meta} if meta else {})}


def sklearn_serialization(model) -> dict:
    """How ``mlflow.sklearn.log_model`` saves ``model``, by what this MLflow can do.

    An MLflow that saves with skops gets the model's own types as trusted; an older one (MLflow
    3.0.1 on Databricks Runtime 17.3 LTS ML has no skops support) keeps its default, cloudpickle.
    Requirements are pinned either way: inferring them runs the model in a subprocess (seconds).
    """
    import inspect

    import mlflow

    pins = [f"mlflow=={mlflow.__version__}"]
    if "skops_trusted_types" in inspect.signature(mlflow.sklearn.log_model).parameters:
        return {"skops_trusted_types": own_types(model),
                "pip_requirements": [*mlflow.sklearn.get_default_pip_requirements(include_skops=True), *pins]}
    return {"pip_requirements": [*mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=True), *pins]}


def own_types(model) -> list[str]:
    """The types skops would refuse to load from ``model``'s file.

    MLflow saves scikit-learn models with skops, which loads only trusted types. This
    process built the model itself, so its own types are trusted; they are recorded in
    the MLmodel file and reloading needs no flag.
    """
    import skops.io

    return sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


def feature_source(ws) -> FeatureSource:
    """The feature source for this workspace; the Databricks client is built only on Databricks."""
    if ws.settings.workspace.backend == "databricks":
        from databricks.feature_engineering import FeatureEngineeringClient

        return DatabricksFeatureSource(FeatureEngineeringClient(), ws.tables.spark_session(), ws.tables)
    return LocalFeatureSource(ws.tables)


def load_training_data(ws, cfg: TrainingConfig, source: FeatureSource | None = None, *,
                       as_of: datetime | None = None) -> TrainingData:
    """Read, window, check and join the training data; fail before any training on bad input.

    ``as_of`` (a replay of history): only rows timestamped before it are training rows, so a
    model retrained "as of" a past day never learns from the days after it.

    Raises:
        TableError: a table does not exist.
        TrainingError: one line naming the table, column or setting to fix.
    """
    import pandas as pd

    source = source or feature_source(ws)
    tables = ws.tables
    pinned = table_version(tables, cfg.table, "training")
    version = pinned.version
    columns = _columns(tables, cfg.table)
    needed = {cfg.label_col: "training.label_col", cfg.timestamp_col: "training.timestamp_col"}
    for lookup in cfg.feature_lookups:
        for key in lookup.lookup_key:
            needed.setdefault(key, f"lookup_key of {lookup.table_name}")
        if lookup.timestamp_lookup_key:
            needed.setdefault(lookup.timestamp_lookup_key, f"timestamp_lookup_key of {lookup.table_name}")
    for feat in cfg.table_features:
        needed.setdefault(feat, "training.table_features")
    for col, why in needed.items():
        if col not in columns:
            raise TrainingError(f"{cfg.table}: missing column {col!r} ({why}); the table has {columns}")
    clash = [f for lookup in cfg.feature_lookups for f in lookup.features if f in columns]
    if clash:
        raise TrainingError(
            f"{cfg.table}: column(s) {clash} are also looked up from a feature table; "
            "drop them from the training table or list them under training.table_features instead"
        )
    feature_versions = source.check(cfg.feature_lookups)

    base = tables.read(cfg.table, columns=list(needed), version=version).to_pandas()
    base = base[base[cfg.label_col].notna() & base[cfg.timestamp_col].notna()]
    if base.empty:
        raise TrainingError(f"{cfg.table}@v{version}: no labelled rows (label {cfg.label_col!r} is null everywhere)")
    base[cfg.timestamp_col] = pd.to_datetime(base[cfg.timestamp_col], utc=True)
    if as_of is not None:
        base = base[base[cfg.timestamp_col] < pd.Timestamp(as_of)]
        if base.empty:
            raise TrainingError(f"{cfg.table}@v{version}: no labelled rows before {as_of:%Y-%m-%d %H:%M} (--as-of)")
    end = base[cfg.timestamp_col].max()
    start = base[cfg.timestamp_col].min()
    if cfg.window_days is not None:
        start = max(start, end - timedelta(days=cfg.window_days))
        base = base[base[cfg.timestamp_col] >= start]
    if base.empty:
        raise TrainingError(f"{cfg.table}@v{version}: the training window is empty (training.window_days)")
    base = base.sort_values([cfg.timestamp_col, *[k for lk in cfg.feature_lookups for k in lk.lookup_key]],
                            kind="mergesort").reset_index(drop=True)
    problem_type = ws.settings.project.problem_type
    if problem_type == "regression":
        base[cfg.label_col] = base[cfg.label_col].astype("float64")
    elif pd.api.types.is_numeric_dtype(base[cfg.label_col]):
        base[cfg.label_col] = base[cfg.label_col].astype("int64")
    classes = sorted(base[cfg.label_col].unique().tolist())
    if len(classes) < 2:
        one, what = (("one value", "a regressor needs variation") if problem_type == "regression"
                     else ("one class", "a classifier needs two or more"))
        raise TrainingError(
            f"{cfg.table}@v{version}: label {cfg.label_col!r} has {one} ({classes[0]}) in the training window "
            f"{start:%Y-%m-%d}..{end:%Y-%m-%d}; {what} (widen training.window_days or fix the labels)"
        )
    if problem_type == "binary" and len(classes) > 2:
        raise TrainingError(
            f"{cfg.table}@v{version}: label {cfg.label_col!r} has {len(classes)} classes {classes[:10]} but "
            "project.problem_type is binary; set project.problem_type: multiclass"
        )
    frame, handle = source.join(base, cfg, feature_versions)
    missing = [f for f in cfg.features if f not in frame.columns]
    if missing:
        raise TrainingError(f"feature lookup returned no column(s) {missing}; check training.feature_lookups")
    return TrainingData(
        frame=frame,
        features=cfg.features,
        tables=[pinned, *feature_versions],
        window_start=start,
        window_end=end,
        handle=handle,
    )
