"""The ``driftgate`` console script. Each command lives in :mod:`driftgate.commands`, one module per stage."""
from __future__ import annotations

import warnings

import typer

from driftgate.commands import backtest as backtest_cmds
from driftgate.commands import config as config_cmds
from driftgate.commands import dashboard as dashboard_cmds
from driftgate.commands import gating as gating_cmds
from driftgate.commands import monitoring as monitoring_cmds
from driftgate.commands import pipeline as pipeline_commands
from driftgate.commands import promotion as promotion_cmds
from driftgate.commands import traffic as traffic_cmds
from driftgate.commands import training as training_cmds
from driftgate.commands import triggers as trigger_cmds
from driftgate.commands import webhook as webhook_cmds

app = typer.Typer(
    name="driftgate",
    help="Drift- and quality-gated retraining for MLflow models, locally and on Databricks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# MLflow repeats this hint for every logged model with integer inputs; it is advice
# for authors of signatures, not something an operator can act on.
warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)

app.command("init")(pipeline_commands.init)
app.command("demo")(pipeline_commands.demo)
app.command("run")(pipeline_commands.run)
app.command("backtest")(backtest_cmds.backtest)
app.command("config")(config_cmds.config)
app.command("log-traffic")(traffic_cmds.log_traffic)
app.command("log-labels")(traffic_cmds.log_labels)
app.command("monitor")(monitoring_cmds.monitor)
app.command("gate")(gating_cmds.gate)
app.command("train")(training_cmds.train)
app.command("tune")(training_cmds.tune)
app.command("shadow")(promotion_cmds.shadow)
app.command("promote")(promotion_cmds.promote)
app.command("rollback")(promotion_cmds.rollback)
app.command("status")(promotion_cmds.status)
app.command("dashboard")(dashboard_cmds.dashboard)
app.command("watch")(trigger_cmds.watch)
app.command("serve")(webhook_cmds.serve)



@app.callback()
def _main() -> None:
    """Drift- and quality-gated retraining for MLflow models, locally and on Databricks."""
    from driftgate.runtime import show_stage_warnings

    show_stage_warnings()


if __name__ == "__main__":
    app()
