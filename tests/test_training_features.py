"""Feature lookups: the point-in-time join, input checks, and the Databricks adapter (fake client)."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import training_world as tw
from training_world import mlflow_template, tws  # noqa: F401  (fixtures)
from driftgate.core.errors import TrainingError
from driftgate.training.config import FeatureLookupConfig
from driftgate.training.features import (DatabricksFeatureSource, LocalFeatureSource, feature_source, load_training_data,
                               point_in_time_join)


def ts(day: int, hour: int = 0) -> pd.Timestamp:
    return pd.Timestamp(tw.START) + pd.Timedelta(days=day, hours=hour)


def test_point_in_time_join_takes_the_latest_row_at_or_before_and_never_the_future():
    base = pd.DataFrame({"customer_id": ["a", "a", "b", "c", "a"],
                         "timestamp": [ts(1), ts(3), ts(2), ts(2), ts(5)], "label": [0, 1, 0, 1, 1]})
    feats = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "b"],
                          "timestamp": [ts(0), ts(3), ts(4), ts(2, 1), ts(1)],
                          "usage_gb": [1.0, 3.0, 4.0, 99.0, 2.0]})
    lookup = FeatureLookupConfig(table_name="m.s.f", lookup_key=["customer_id"], features=["usage_gb"])
    out = point_in_time_join(base, feats, lookup)
    # a@1 -> row of day 0; a@3 -> exact match day 3; b@2 -> day 1 (day 2 01:00 is the future);
    # c has no features -> null; a@5 -> day 4. Base order and rows are preserved.
    assert out["usage_gb"].tolist()[:3] == [1.0, 3.0, 2.0]
    assert np.isnan(out["usage_gb"].iloc[3]) and out["usage_gb"].iloc[4] == 4.0
    assert out[["customer_id", "timestamp", "label"]].equals(base)


def test_plain_key_lookup_takes_the_latest_row_per_key():
    base = pd.DataFrame({"customer_id": ["a", "b"], "label": [0, 1]})
    feats = pd.DataFrame({"customer_id": ["a", "a", "b"], "timestamp": [ts(2), ts(1), ts(0)], "plan": ["x", "y", "z"]})
    lookup = FeatureLookupConfig(table_name="m.s.f", lookup_key=["customer_id"], timestamp_lookup_key=None, timeseries_column="timestamp",
                                 features=["plan"])
    assert point_in_time_join(base, feats, lookup)["plan"].tolist() == ["x", "z"]


def test_local_training_data_pins_versions_and_joins_features(tws):
    frame = tw.world(tws, days=10, rows_per_day=20)
    data = load_training_data(tws, tws.settings.training, LocalFeatureSource(tws.tables))
    assert len(data.frame) == len(frame) and data.frame["timestamp"].is_monotonic_increasing
    # Feature rows are written at the event time, so each row finds its own features.
    merged = data.frame.merge(frame, on=["customer_id", "timestamp"], suffixes=("", "_true"))
    assert np.allclose(merged["usage_gb"], merged["usage_gb_true"])
    assert [(t.name, t.version, t.role) for t in data.tables] == [
        (tw.TRAINING, 0, "training"), (tw.FEATURES, 0, "features")]
    assert all(t.table_id for t in data.tables)


def test_window_keeps_only_the_most_recent_days(tws):
    tw.world(tws, days=20, rows_per_day=20)
    cfg = tws.settings.training.model_copy(update={"window_days": 5})
    data = load_training_data(tws, cfg, LocalFeatureSource(tws.tables))
    span = data.frame["timestamp"].max() - data.frame["timestamp"].min()
    assert pd.Timedelta(days=4) < span <= pd.Timedelta(days=5)


def _rewrite(tws, name, table: pa.Table):
    tws.tables.write(name, table, mode="overwrite")


@pytest.mark.parametrize("case, fragment", [
    ("missing_feature", "missing feature column(s) 'usage_gb'"),
    ("no_lookup_key", "no lookup key column 'customer_id'"),
    ("one_class", "has one class"),
    ("no_labels", "no labelled rows"),
    ("training_without_timestamp", "missing column 'timestamp'"),
])
def test_bad_input_fails_before_training_naming_what_to_fix(tws, case, fragment):
    frame = tw.world(tws, days=10, rows_per_day=20)
    if case == "missing_feature":
        _rewrite(tws, tw.FEATURES, pa.Table.from_pandas(frame.drop(columns=["usage_gb", "label"]), preserve_index=False))
    elif case == "no_lookup_key":
        _rewrite(tws, tw.FEATURES, pa.Table.from_pandas(frame.drop(columns=["customer_id", "label"]),
                                                        preserve_index=False))
    elif case == "one_class":
        _rewrite(tws, tw.TRAINING, pa.Table.from_pandas(frame[["customer_id", "timestamp"]].assign(label=0),
                                                        preserve_index=False))
    elif case == "no_labels":
        labels = pa.array([None] * len(frame), pa.int64())
        _rewrite(tws, tw.TRAINING, pa.table({"customer_id": frame["customer_id"], "timestamp": frame["timestamp"],
                                            "label": labels}))
    else:
        _rewrite(tws, tw.TRAINING, pa.Table.from_pandas(frame[["customer_id", "label"]], preserve_index=False))
    with pytest.raises(TrainingError) as err:
        load_training_data(tws, tws.settings.training, LocalFeatureSource(tws.tables))
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_local_workspace_never_builds_the_databricks_client(tws):
    assert isinstance(feature_source(tws), LocalFeatureSource)


class FakeTrainingSet:
    def __init__(self, frame):
        self.frame = frame

    def load_df(self):
        return SimpleNamespace(toPandas=lambda: self.frame.copy())


class FakeFeatureEngineeringClient:
    """Records calls; resolves lookups with the local join so the rest of training runs for real."""

    def __init__(self, features: pd.DataFrame):
        self.features = features
        self.calls: list[tuple[str, dict]] = []

    def create_training_set(self, **kwargs):
        self.calls.append(("create_training_set", kwargs))
        frame = kwargs["df"].pdf
        for lk in kwargs["feature_lookups"]:
            cfg = FeatureLookupConfig(table_name=lk.table_name, lookup_key=lk.lookup_key,
                                      timestamp_lookup_key=lk.timestamp_lookup_key, features=lk.feature_names)
            frame = point_in_time_join(frame, self.features, cfg)
        return FakeTrainingSet(frame)

    def log_model(self, **kwargs):
        self.calls.append(("log_model", kwargs))
        return SimpleNamespace(model_uri="models:/m-fake")


class FakeSpark:
    def createDataFrame(self, pdf):
        return SimpleNamespace(pdf=pdf)


def test_databricks_path_goes_through_feature_engineering(tws):
    from databricks.feature_engineering import FeatureLookup

    from driftgate import training
    from driftgate.workspace import FakeRegistry

    frame = tw.world(tws, days=20, rows_per_day=30)
    client = FakeFeatureEngineeringClient(frame.drop(columns=["label"]))
    source = DatabricksFeatureSource(client, FakeSpark(), tws.tables, lookup_cls=FeatureLookup)
    fake_ws = dataclasses.replace(tws, registry=FakeRegistry())
    result = training.train(fake_ws, reason={"trigger": "test"}, source=source)

    [(name, create), (name2, logged)] = client.calls
    assert (name, name2) == ("create_training_set", "log_model")
    [lookup] = create["feature_lookups"]
    assert isinstance(lookup, FeatureLookup)
    assert (lookup.table_name, lookup.lookup_key, lookup.timestamp_lookup_key) == (
        tw.FEATURES, ["customer_id"], "timestamp")
    assert lookup.feature_names == tws.settings.training.features
    assert create["label"] == "label" and set(create["df"].pdf.columns) == {"customer_id", "timestamp", "label"}
    assert logged["training_set"].frame is not None and logged["artifact_path"] == "model"
    assert logged["flavor"].__name__ == "mlflow.sklearn"
    # served by lookup key: the signature comes from the training set, not the joined columns
    assert logged["infer_input_example"] is True and "signature" not in logged and "input_example" not in logged
    assert result.registered and fake_ws.registry.calls[0] == ("register", tws.settings.project.model_name,
                                                                "models:/m-fake")


class PackagingFeatureEngineeringClient(FakeFeatureEngineeringClient):
    """``fe.log_model`` as the installed databricks-feature-engineering 0.18 does it
    (``_training_scoring_client.log_model``): the raw model is saved with
    ``flavor.save_model(model, <data>/feature_store/raw_model, mlflow_model=..., **kwargs)`` and
    packaged under a ``python_function``-only model whose loader loads that raw model as a pyfunc
    and calls its ``predict`` (after the feature lookup, which this stand-in leaves out)."""

    def log_model(self, *, model, artifact_path, flavor, training_set, infer_input_example=False, **kwargs):
        import tempfile

        import mlflow

        self.calls.append(("log_model", {"flavor": flavor, **kwargs}))
        raw = f"{tempfile.mkdtemp()}/raw_model"
        flavor.save_model(model, raw, mlflow_model=mlflow.models.Model(), **kwargs)
        return mlflow.pyfunc.log_model(name=artifact_path, python_model=_RawModelWrapper(),
                                       artifacts={"raw_model": raw})


class _RawModelWrapper:
    """Defined lazily as a PythonModel subclass (mlflow imported inside)."""

    def __new__(cls):
        import mlflow

        class Wrapper(mlflow.pyfunc.PythonModel):
            def load_context(self, context):
                self.raw = mlflow.pyfunc.load_model(context.artifacts["raw_model"])

            def predict(self, context, model_input):
                return self.raw.predict(model_input)

        return Wrapper()


def test_a_model_logged_through_feature_engineering_scores_probabilities_as_a_pyfunc(tws):
    """The Databricks path: the registered model has only the pyfunc flavour (as fe.log_model
    packages it), and the shadow scorer still gets P(class 1), the same as the sklearn model's."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    from driftgate.promotion.replay import load_scorer
    from driftgate.training.features import TrainingData

    rng = np.random.default_rng(3)
    x = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    model = LogisticRegression().fit(x, (x.a + rng.normal(scale=0.5, size=200) > 0).astype(int))
    client = PackagingFeatureEngineeringClient(x)
    source = DatabricksFeatureSource(client, FakeSpark(), tws.tables)
    tws.activate_mlflow()
    with mlflow.start_run():
        uri = source.log_model(model, name="model", data=TrainingData(x, ["a", "b"], [], None, None, handle="ts"),
                               signature=None, input_example=None)
    assert client.calls[-1][1]["pyfunc_predict_fn"] == "predict_proba"
    assert client.calls[-1][1]["metadata"] == {"classes": [0, 1]}
    assert set(mlflow.models.get_model_info(uri).flavors) == {"python_function"}  # no sklearn to fall back on
    proba = load_scorer(uri, ["a", "b"]).probability(x)
    assert not np.isin(proba, (0.0, 1.0)).all()
    np.testing.assert_allclose(proba, model.predict_proba(x)[:, 1])


def test_sklearn_models_are_saved_as_this_mlflow_can(monkeypatch):
    """skops with the model's own types where MLflow has it; cloudpickle on an MLflow without it
    (MLflow 3.0.1, what Databricks Runtime 17.3 LTS ML ships)."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    from driftgate.training.features import sklearn_serialization

    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    import inspect

    current = sklearn_serialization(model)
    has_skops = "skops_trusted_types" in inspect.signature(mlflow.sklearn.log_model).parameters
    assert ("skops_trusted_types" in current) == has_skops
    assert any(r.startswith("skops" if has_skops else "cloudpickle") for r in current["pip_requirements"])

    def log_model(sk_model, artifact_path=None, serialization_format="cloudpickle", name=None, pip_requirements=None):
        """MLflow 3.0.1's parameters (no skops)."""

    monkeypatch.setattr(mlflow.sklearn, "log_model", log_model)
    old = sklearn_serialization(model)
    assert "skops_trusted_types" not in old
    assert any(r.startswith("cloudpickle") for r in old["pip_requirements"])
    assert f"mlflow=={mlflow.__version__}" in old["pip_requirements"]
