"""The bundle's dashboard resource: official bundle schema, the .lvdash.json's structure, and its SQL run on Spark."""
from __future__ import annotations

import copy
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from sqlglot import exp

from driftgate.core.metric_tables import ROLES, metric_columns
from driftgate.core.settings import load_settings
from driftgate.dashboard.model import ESTIMATED_SUFFIXES, QUALITY_METRICS
from tests.bundle_support import CLI_VARS, REPO, load_yaml, resolve_target
from tests.test_bundle import _errors, validator  # noqa: F401 - the official schema's validator fixture

RESOURCE = REPO / "resources" / "dashboard.yml"


def _resource(doc: dict | None = None) -> dict:
    return (doc or load_yaml(RESOURCE))["resources"]["dashboards"]["driftgate_dashboard"]


def _lvdash() -> dict:
    return json.loads((RESOURCE.parent / _resource()["file_path"]).read_text())


def _sql(dataset: dict) -> str:
    return "".join(dataset["queryLines"])


def _parsed(dataset: dict) -> exp.Expression:
    return sqlglot.parse_one(_sql(dataset), read="databricks")


def _tables(tree: exp.Expression) -> set[str]:
    """Tables a query reads, its own CTEs left out, as written (catalog and schema included if any)."""
    ctes = {c.alias for c in tree.find_all(exp.CTE)}
    return {".".join(p.name for p in t.parts) for t in tree.find_all(exp.Table) if t.name not in ctes}


def _configured_tables() -> dict[str, str]:
    """What conf names the four tables on Databricks (``<schema>.<table>``)."""
    s = load_settings(REPO / "conf", "databricks", ())
    return {"drift": s.monitor.drift_metrics_table, "profile": s.monitor.profile_metrics_table,
            "decisions": f"{s.project.audit_schema}.driftgate_decisions",
            "events": f"{s.project.audit_schema}.driftgate_events"}


def test_the_dashboard_resource_validates_against_the_official_bundle_schema(validator):  # noqa: F811
    doc = load_yaml(RESOURCE)
    assert _errors(validator, doc) == []
    typo = copy.deepcopy(doc)
    _resource(typo)["file_pth"] = _resource(typo).pop("file_path")
    assert any("file_pth" in e for e in _errors(validator, typo))
    wrong = copy.deepcopy(doc)
    _resource(wrong)["embed_credentials"] = "sometimes"
    assert _errors(validator, wrong)


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_each_target_points_the_datasets_at_its_catalog_and_schema(target):
    bundle = resolve_target(target)
    dash = bundle["resources"]["dashboards"]["driftgate_dashboard"]
    values = bundle["values"]
    assert dash["dataset_catalog"] == values["catalog"] and dash["dataset_schema"] == values["schema"]
    assert dash["warehouse_id"] == CLI_VARS["warehouse_id"]
    assert (RESOURCE.parent / dash["file_path"]).is_file()
    # the retraining job watches the drift table of the same schema the dashboard reads
    watched = bundle["resources"]["jobs"]["retraining_job"]["trigger"]["table_update"]["table_names"]
    assert f"{values['catalog']}.{values['schema']}.inference_log_drift_metrics" in watched


def test_every_query_reads_only_the_configured_tables_by_bare_name():
    """Bare names, so dataset_catalog / dataset_schema decide where they live; the names are conf's."""
    configured = _configured_tables()
    schemas = {name.rsplit(".", 1)[0] for name in configured.values()}
    assert len(schemas) == 1, f"one schema must hold all four tables for dataset_schema to work: {configured}"
    bare = {kind: name.rsplit(".", 1)[1] for kind, name in configured.items()}
    read: set[str] = set()
    for dataset in _lvdash()["datasets"]:
        tables = _tables(_parsed(dataset))
        assert tables and tables <= set(bare.values()), (dataset["name"], tables)
        read |= tables
    assert read == set(bare.values())


def test_widgets_reference_datasets_and_fields_that_exist():
    doc = _lvdash()
    outputs = {d["name"]: set(_parsed(d).named_selects) for d in doc["datasets"]}
    assert len(outputs) == len(doc["datasets"])
    names, used = set(), set()
    for page in doc["pages"]:
        cells = set()
        for item in page["layout"]:
            widget, pos = item["widget"], item["position"]
            assert widget["name"] not in names, widget["name"]
            names.add(widget["name"])
            assert 0 <= pos["x"] and pos["x"] + pos["width"] <= 6 and pos["height"] > 0, widget["name"]
            area = {(x, y) for x in range(pos["x"], pos["x"] + pos["width"])
                    for y in range(pos["y"], pos["y"] + pos["height"])}
            assert not cells & area, f"{widget['name']} overlaps another widget on {page['name']}"
            cells |= area
            queries = {q["name"]: q["query"] for q in widget.get("queries", [])}
            fields: dict[str, set[str]] = {}
            for qname, query in queries.items():
                assert query["datasetName"] in outputs, (widget["name"], query["datasetName"])
                used.add(query["datasetName"])
                fields[qname] = {f["name"] for f in query["fields"]}
                for f in query["fields"]:
                    for column in re.findall(r"`([^`]+)`", f["expression"]):
                        assert column in outputs[query["datasetName"]], (widget["name"], column)
            if "spec" not in widget:
                assert "multilineTextboxSpec" in widget
                continue
            encodings = widget["spec"]["encodings"]
            refs = encodings.get("columns") or encodings.get("fields") or [
                v for k, v in encodings.items() if isinstance(v, dict)]
            assert refs, widget["name"]
            for ref in refs:
                assert ref["fieldName"] in fields[ref.get("queryName", next(iter(fields)))], (widget["name"], ref)
    assert used == set(outputs), "a dataset no widget shows"


def test_the_drift_query_reads_every_metric_a_rule_may_name_and_the_estimates_match_the_local_page():
    datasets = {d["name"]: _sql(d) for d in _lvdash()["datasets"]}
    paths = [c for c, kind in metric_columns("drift").items() if c not in ROLES and kind == "number"]
    paths += [f"{c}.{field}" for c, kind in metric_columns("drift").items() if c not in ROLES
              and isinstance(kind, tuple) for field in kind]
    for path in paths:
        assert f"'{path}'," in datasets["drift_by_rule"], path
    estimated = {e for pairs in QUALITY_METRICS.values() for _, e in pairs if e}
    wanted = estimated | {e + s for e in estimated for s in ESTIMATED_SUFFIXES}
    named = set(re.findall(r"\bestimated_\w+", datasets["estimated_quality"]))
    assert named == wanted


# -- the SQL runs (Spark SQL, on the documented schemas) ---------------------------------------------

def _with_every_estimate(profile: pa.Table) -> pa.Table:
    for _, estimated in QUALITY_METRICS["classification"]:
        for name in (estimated, *(estimated + s for s in ESTIMATED_SUFFIXES)):
            values = profile.column(name.replace(estimated, "estimated_roc_auc"))
            if name in profile.column_names:
                profile = profile.set_column(profile.column_names.index(name), name, values)
            else:
                profile = profile.append_column(name, values)
    return profile


@pytest.mark.spark
def test_every_dataset_query_runs_on_spark_over_tables_of_the_documented_schemas(spark, tmp_path):
    from driftgate.gating.evaluate import _DECISIONS_SCHEMA
    from driftgate.workspace.audit import _SCHEMA as EVENTS_SCHEMA
    from tests.test_dashboard import _decisions, _events, _profile
    from driftgate.gating.testing import drift_rows

    rule = {"name": "psi", "table": "drift", "metric": "population_stability_index", "op": ">", "threshold": 0.2,
            "filters": {"granularity": "1 day", "drift_type": "BASELINE"}}
    decisions = pa.Table.from_pylist([{
        "decision_id": f"d{i}", "evaluated_at": d["evaluated_at"], "recorded_at": d["evaluated_at"],
        "status": d["status"], "drift_exceeded": True, "trigger": "table_update", "run_key": d["run_key"],
        "summary": d["summary"], "rules_exceeded": "psi", "decision_json": json.dumps({"reasons": [rule]})}
        for i, d in enumerate(_decisions())], schema=_DECISIONS_SCHEMA)
    events = pa.Table.from_pylist([{**e, "details": json.dumps(e["details"])} for e in _events()],
                                  schema=EVENTS_SCHEMA)
    tables = {"inference_log_drift_metrics": drift_rows(20, ["age", "plan"], lambda d, c: 0.05 if d < 8 else 0.4),
              "inference_log_profile_metrics": _with_every_estimate(_profile(estimates=True)),
              "driftgate_decisions": decisions, "driftgate_events": events}
    for name, table in tables.items():
        pq.write_table(table, tmp_path / f"{name}.parquet")
        spark.read.parquet(str(tmp_path / f"{name}.parquet")).createOrReplaceTempView(name)

    rows = {d["name"]: spark.sql(_sql(d)).collect() for d in _lvdash()["datasets"]}
    drift = rows["drift_by_rule"]
    assert {r["series"] for r in drift} == {"age", "plan", "threshold"}
    assert {r["rule"] for r in drift} == {"psi: population_stability_index > 0.2"}
    assert all(r["value"] == 0.2 for r in drift if r["series"] == "threshold")
    assert len([r for r in drift if r["series"] == "age"]) == 20
    assert {r["metric"] for r in rows["quality"]} == {"roc_auc", "accuracy", "f1 (macro)"}
    est = [r for r in rows["estimated_quality"] if r["metric"] == "roc_auc"]
    assert len(est) == 20 and all(r["lower"] < r["estimate"] < r["upper"] for r in est)
    assert [r["status"] for r in rows["decisions"]] == ["EXCEEDED", "EXCEEDED"]
    lineage = {(r["version"], r["status"]): r for r in rows["lineage"]}
    assert lineage[("2", "promoted")]["replaced"] == "1"
    assert lineage[("2", "promoted")]["challenger_roc_auc"] == pytest.approx(0.91)
    assert lineage[("3", "refused")]["shadow_status"] == "FAIL"
    assert "not promoted" in lineage[("3", "refused")]["reason"]
    assert {r["kind"] for r in rows["events"]} >= {"gate_decision", "promotion", "refusal", "job_run"}
