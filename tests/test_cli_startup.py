"""The command line starts without the heavy libraries: ``--help`` loads no settings, no stage and
no data or ML library; loading the settings (``driftgate config``, every command's first step)
loads none of the libraries only a stage's work needs. Behaviour, not timing:
``benchmarks/cli_bench.py`` measures the time."""
from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("mlflow", "sklearn", "scipy", "pandas", "deltalake", "matplotlib", "plotly", "fastapi", "uvicorn",
         "starlette", "pyspark", "optuna", "databricks", "sqlalchemy", "alembic")
"""Libraries a stage imports where it uses them, never at start-up."""

LOADED = """
import json, sys
{code}
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {roots!r} or m.startswith({prefixes!r}))))
"""


def loaded(code: str, roots: tuple[str, ...], prefixes: tuple[str, ...] = ()) -> list[str]:
    """Modules under ``roots`` (or starting with ``prefixes``) that a fresh interpreter holds after ``code``."""
    out = subprocess.run([sys.executable, "-c", LOADED.format(code=code, roots=roots, prefixes=prefixes or ("\0",))],
                         capture_output=True, text=True, check=True, env={"COLUMNS": "120", "PATH": ""})
    return json.loads(out.stdout.splitlines()[-1])


def test_help_loads_no_settings_no_stage_and_no_heavy_library():
    code = ("sys.argv = ['driftgate', '--help']\nfrom driftgate.cli import app\ntry:\n    app()\n"
            "except SystemExit as exc:\n    assert exc.code == 0, exc.code")
    stages = tuple(f"driftgate.{s}" for s in ("workspace", "monitoring", "gating", "training", "promotion",
                                              "triggers", "core.settings", "tasks", "pipeline"))
    assert loaded(code, (*HEAVY, "pydantic", "numpy", "pyarrow", "yaml"), stages) == []


def test_every_command_module_is_light_to_import():
    code = "import driftgate.cli\n" + "\n".join(f"import driftgate.commands.{m}" for m in (
        "config", "gating", "monitoring", "pipeline", "promotion", "traffic", "training", "triggers", "webhook"))
    assert loaded(code, (*HEAVY, "pydantic", "numpy", "pyarrow")) == []


def test_settings_load_no_heavy_library():
    assert loaded("import driftgate.core.settings", HEAVY, ("scipy.stats",)) == []


def test_opening_a_local_workspace_loads_no_mlflow(tmp_path):
    from pathlib import Path

    conf = Path(__file__).resolve().parents[1] / "conf"
    code = ("from driftgate.core.settings import load_settings\nfrom driftgate.workspace import open_workspace\n"
            f"ws = open_workspace(load_settings({str(conf)!r}, 'local', ('workspace.root={tmp_path}',)))\n"
            "assert ws.registry.tracking_uri.startswith('sqlite:')")
    assert loaded(code, ("mlflow", "sqlalchemy", "alembic", "scipy", "sklearn")) == []
