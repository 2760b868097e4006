"""The import layers point one way: core ← stages and adapters ← application.

Every ``import`` in every module (at module level or inside a function; ``TYPE_CHECKING``
blocks excepted, they never run) is classified by layer; a stage or adapter that imports
the application, or core that imports a stage, fails here with the line that does it.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STAGES = ("workspace", "monitoring", "gating", "training", "promotion", "triggers")
CORE, STAGE, APP = 0, 1, 2


def module_files() -> dict[str, Path]:
    """Installed module name → source file, from the same folders setup.py maps."""
    out = {}
    roots = {"driftgate": REPO / "driftgate", **{f"driftgate.{s}": REPO / s for s in STAGES}}
    for prefix, root in roots.items():
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([prefix, *parts])
            if prefix == "driftgate" and len(parts) > 0 and parts[0] in STAGES:
                continue
            out[name] = path
    return out


def layer_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] == "core":
        return CORE
    if len(parts) >= 2 and parts[1] in STAGES:
        return STAGE
    return APP


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):  # TYPE_CHECKING blocks never run
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            subs = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]
            found += [(node.lineno, name) for name in subs] if len(subs) == len(node.names) else [(node.lineno, base)]
    return found


MODULES = module_files()


def test_the_walk_sees_every_layer():
    layers = {layer_of(m) for m in MODULES}
    assert layers == {CORE, STAGE, APP}
    assert len(MODULES) > 60


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    here = layer_of(module)
    bad = []
    for line, target in imports_of(MODULES[module], module):
        if target.split(".")[0] in STAGES:
            bad.append(f"{MODULES[module].relative_to(REPO)}:{line}: bare stage import {target!r}")
            continue
        if not target.startswith("driftgate") or target not in MODULES and target.rsplit(".", 1)[0] not in MODULES:
            continue
        if target not in MODULES:
            target = target.rsplit(".", 1)[0]
        there = layer_of(target)
        if module == "driftgate.core.settings" and there == STAGE and target.endswith(".config"):
            continue  # settings composition: the section models live beside their stages
        if there > here:
            bad.append(f"{MODULES[module].relative_to(REPO)}:{line}: imports {target} (a higher layer)")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.endswith(".config") and layer_of(m) == STAGE))
def test_section_models_import_only_core(module):
    for line, target in imports_of(MODULES[module], module):
        if target.startswith("driftgate.") and target not in ("driftgate.core",):
            assert layer_of(target) == CORE or target.startswith(module.rsplit(".", 1)[0]), \
                f"{MODULES[module].relative_to(REPO)}:{line}: {target}"


def test_a_bare_stage_import_from_the_repository_root_is_refused():
    import subprocess

    for stage in STAGES:
        proc = subprocess.run([sys.executable, "-c", f"import {stage}"], cwd=REPO, capture_output=True, text=True)
        assert proc.returncode != 0 and f"import driftgate.{stage}" in proc.stderr, stage
