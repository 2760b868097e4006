"""A pre-warmed parent for the fault-injection cases of ``tests/test_faults.py``.

It imports driftgate, MLflow and deltalake once, then for each case read from stdin (one JSON
line: ``{"op", "root", "fault", ...}``) forks a child that opens the workspace at ``root``,
sets ``DRIFTGATE_FAULT`` and runs the operation; the child's output goes to ``<root>/child.log``.
The parent answers one JSON line: ``{"signal": <n or null>, "code": <exit code or null>}``.
Forking a warm process takes milliseconds where a cold ``python -c`` start takes seconds; the
child is still a separate process that SIGKILL ends with nothing flushed or cleaned up. The
parent never opens a table or a database, so no runtime or connection is shared across a fork.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))


def open_ws(root: str):
    """The local workspace at ``root`` (MLflow on SQLite, Delta tables)."""
    from driftgate.core.settings import load_settings
    from driftgate.workspace import open_workspace

    return open_workspace(load_settings(REPO / "conf", "local", (f"workspace.root={root}",)))


def passed_shadow(ws, metrics: dict[str, float]):
    """A PASS shadow result for the current challenger against the current champion."""
    from driftgate.promotion import ShadowResult, aliases

    now = aliases(ws)
    return ShadowResult(status="PASS", model_name=ws.settings.project.model_name, champion_version=now["champion"],
                        challenger_version=now["challenger"], metrics=metrics, reasons=("criteria met",))


class FailingTags:
    """The registry, except that the first ``set_tag`` fails: the promotion reverts in-process."""

    def __init__(self, inner):
        self.inner = inner
        self.failed = False

    def __getattr__(self, attr):
        return getattr(self.inner, attr)

    def set_tag(self, name, version, key, value):
        from driftgate.core.errors import RegistryError

        if not self.failed:
            self.failed = True
            raise RegistryError(f"{name} version {version}: injected tag failure", model=name, version=version)
        return self.inner.set_tag(name, version, key, value)


def run(case: dict) -> object:
    import dataclasses

    from driftgate import promotion

    op = case["op"]
    if op == "refresh":
        import monitor_world as mw

        from driftgate import monitoring

        ws = mw.light_workspace(case["root"])
        return monitoring.refresh(ws, ws.settings.monitor).to_dict()
    ws = open_ws(case["root"])
    if op == "promote":
        return promotion.promote(ws, passed_shadow(ws, case["metrics"])).status
    if op == "promote_failing_tags":
        shadow = passed_shadow(ws, case["metrics"])
        try:
            promotion.promote(dataclasses.replace(ws, registry=FailingTags(ws.registry)), shadow)
        except Exception as exc:  # noqa: BLE001 - the refusal is what this op produces
            return f"{type(exc).__name__}: {exc}"
        return "promoted"
    if op == "rollback":
        return promotion.rollback(ws, reason=case["reason"]).status
    if op == "recover":
        result = promotion.recover(ws)
        return result.to_dict() if result else None
    raise ValueError(f"unknown op {op!r}")


def child(case: dict) -> None:
    log = os.open(Path(case["root"]) / "child.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.environ["DRIFTGATE_FAULT"] = case.get("fault") or ""
    if case.get("trace"):
        os.environ["DRIFTGATE_FAULT_TRACE"] = case["trace"]
    code = 0
    try:
        out = run(case)
        (Path(case["root"]) / "result.json").write_text(json.dumps(out, default=str))
    except BaseException:  # noqa: BLE001 - reported through the exit code and the log
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    # warm: everything the children import, without opening any table or database
    import deltalake  # noqa: F401
    import mlflow  # noqa: F401
    import sqlalchemy  # noqa: F401

    import driftgate.monitoring.refresh  # noqa: F401
    import driftgate.promotion  # noqa: F401
    import driftgate.workspace  # noqa: F401
    import monitor_world  # noqa: F401
    from mlflow import MlflowClient  # noqa: F401

    print("ready", flush=True)
    for line in sys.stdin:
        case = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(case)
        _, status = os.waitpid(pid, 0)
        answer = {"signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                  "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
