"""An offline model of what ``databricks bundle validate -t <target>`` produces from the bundle files.

It merges ``databricks.yml`` with ``resources/*.yml``, applies the target (variables, workspace,
run_as, permissions, resource overrides), then the development-mode presets as the Databricks CLI
applies them (``bundle/config/mutator/resourcemutator/apply_target_mode.go`` and
``apply_presets.go`` in databricks/cli: name prefix ``[dev <short name>] ``, job schedules and
triggers and alert schedules PAUSED unless they set a pause status, quality-monitor schedules
removed unless UNPAUSED), then resolves ``${var.*}`` (complex variables included),
``${bundle.*}``, ``${workspace.*}`` and ``${resources.<type>.<key>.<field>}`` references.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
BUNDLE_FILES = [REPO / "databricks.yml", *sorted((REPO / "resources").glob("*.yml"))]

# What `--var name=value` supplies for the variables that have no default.
CLI_VARS = {
    "service_principal": "8a1b2c3d-0000-4000-8000-00000000aaaa",
    "webhook_principal": "8a1b2c3d-0000-4000-8000-00000000bbbb",
    "warehouse_id": "1234567890abcdef",
    "alert_destination_id": "0f9e8d7c-0000-4000-8000-00000000cccc",
}
USER = "first.last@example.com"
SHORT_NAME = "first_last"
_REF = re.compile(r"\$\{([A-Za-z0-9_.\-\[\]]+)\}")


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _merge(into: dict, other: dict) -> dict:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def merged_resources() -> dict:
    resources: dict = {}
    for path in BUNDLE_FILES:
        _merge(resources, load_yaml(path).get("resources") or {})
    return resources


def _normalized_prefix(prefix: str) -> str:
    """UC names cannot hold "[dev x] ": the CLI lower-cases it and turns the rest into underscores."""
    return re.sub(r"[^a-z0-9]+", "_", prefix.lower()).strip("_") + "_"


def _development_presets(resources: dict) -> None:
    prefix = f"[dev {SHORT_NAME}] "
    for job in resources.get("jobs", {}).values():
        job["name"] = prefix + job["name"]
        for key in ("schedule", "continuous", "trigger"):
            if key in job and not job[key].get("pause_status"):
                job[key]["pause_status"] = "PAUSED"
    for exp in resources.get("experiments", {}).values():
        head, _, base = exp["name"].rpartition("/")
        exp["name"] = f"{head}/{prefix}{base}" if head else prefix + base
    for model in resources.get("registered_models", {}).values():
        model["name"] = _normalized_prefix(prefix) + model["name"]
    for monitor in resources.get("quality_monitors", {}).values():
        if monitor.get("schedule", {}).get("pause_status") != "UNPAUSED":
            monitor.pop("schedule", None)
    for alert in resources.get("alerts", {}).values():
        alert["display_name"] = prefix + alert["display_name"]
        if alert.get("schedule", {}).get("quartz_cron_schedule") and not alert["schedule"].get("pause_status"):
            alert["schedule"]["pause_status"] = "PAUSED"


def configured(target: str, cli_vars: dict[str, Any] | None = None) -> dict:
    """The bundle for ``target`` before presets and reference resolution (what the files say)."""
    root = load_yaml(REPO / "databricks.yml")
    tgt = root["targets"][target]
    doc = {"bundle": {**root["bundle"], "target": target, "mode": tgt.get("mode")},
           "variables": root["variables"], "resources": merged_resources(),
           "run_as": tgt.get("run_as"), "permissions": tgt.get("permissions", root.get("permissions"))}
    _merge(doc["resources"], tgt.get("resources") or {})
    values = {k: v["default"] for k, v in root["variables"].items() if "default" in v}
    values.update(tgt.get("variables") or {})
    values.update(CLI_VARS if cli_vars is None else cli_vars)
    missing = sorted(set(root["variables"]) - set(values))
    if missing:
        raise KeyError(f"variables without a value (pass --var): {missing}")
    doc["values"] = values
    root_path = (tgt.get("workspace") or {}).get("root_path") or f"/Workspace/Users/{USER}/.bundle/${{bundle.name}}/{target}"
    doc["workspace"] = {"root_path": root_path, "file_path": f"{root_path}/files",
                        "current_user": {"userName": USER, "short_name": SHORT_NAME}}
    return doc


def resolve_target(target: str, cli_vars: dict[str, Any] | None = None) -> dict:
    """The bundle as deployed to ``target``: presets applied, every reference resolved."""
    doc = configured(target, cli_vars)
    if doc["bundle"]["mode"] == "development":
        # resolve first so prefixes apply to final names (the CLI resolves variables before presets)
        doc = _resolved(doc, resources_too=False)
        _development_presets(doc["resources"])
    return _resolved(doc, resources_too=True)


def _lookup(doc: dict, ref: str, resources_too: bool):
    head, _, rest = ref.partition(".")
    if head == "var":
        return doc["values"][rest]
    if head == "resources" and not resources_too:
        return None
    node: Any = {"bundle": doc["bundle"], "workspace": doc["workspace"], "resources": doc["resources"]}[head]
    for part in rest.split("."):
        node = node[part]
    return node


def _resolved(doc: dict, *, resources_too: bool) -> dict:
    def walk(node):
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            whole = _REF.fullmatch(node)
            if whole:
                found = _lookup(doc, whole[1], resources_too)
                return node if found is None else copy.deepcopy(found)

            def sub(m):
                found = _lookup(doc, m[1], resources_too)
                return m[0] if found is None else str(found)

            return _REF.sub(sub, node)
        return node

    for _ in range(10):  # references to references (complex variable defaults, resource names)
        new = walk(doc)
        if new == doc:
            break
        doc = new
    if resources_too:
        left = _REF.findall(repr(doc["resources"]))
        assert not left, f"unresolved references: {left}"
    return doc
