"""Command-line entry point of the alert webhook receiver."""
from __future__ import annotations

from typing import Annotated

import typer

from driftgate.runtime import ConfOpt, EnvOpt, SetOpt, cli_errors, console, settings_from


def serve(
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    host: Annotated[str, typer.Option("--host", help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on")] = 8787,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="run without credentials (only on a loopback address, for trying it out)")] = False,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="log each request line")] = True,
) -> None:
    """Serve the SQL-alert webhook receiver (FastAPI under uvicorn)."""
    import logging

    import uvicorn

    from driftgate.core.errors import ConfigError
    from driftgate.triggers.webhook.auth import Credentials
    from driftgate.pipeline import run_retraining_job
    from driftgate.triggers.webhook.service import create_app, is_loopback, open_webhook, uvicorn_options

    with cli_errors():
        settings = settings_from(conf, env, set_)
        credentials = Credentials.from_env().check()
        if not credentials.configured:
            if not insecure:
                raise ConfigError(
                    "environment: set DRIFTGATE_WEBHOOK_USER and DRIFTGATE_WEBHOOK_PASSWORD (or "
                    "DRIFTGATE_WEBHOOK_TOKEN / DRIFTGATE_WEBHOOK_HMAC_SECRET); driftgate serve refuses to run "
                    "without credentials (--insecure allows it on a loopback address only)",
                    key="DRIFTGATE_WEBHOOK_USER")
            if not is_loopback(host):
                raise ConfigError(f"--insecure: only allowed with a loopback --host (127.0.0.1, ::1), got {host}",
                                  key="--host")
        ws = None
        if settings.workspace.backend == "local" or settings.webhook.gate == "worker":
            from driftgate.workspace import open_workspace

            ws = open_workspace(settings)
        webhook = open_webhook(settings, ws=ws, insecure=insecure, credentials=credentials,
                               run_job=run_retraining_job)
        auth = ", ".join(credentials.methods) or "NONE (insecure, loopback only)"
        console.print(f"driftgate serve: http://{host}:{port}/v1/alerts/databricks-sql  auth: {auth}  "
                      f"run keys: {webhook.worker.store.where}  queue: {webhook.state_dir}", highlight=False)
    # uvicorn configures only its own loggers; show the receiver's and the worker's too.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    driftgate_log = logging.getLogger("driftgate")
    driftgate_log.addHandler(handler)
    driftgate_log.setLevel(logging.INFO)
    uvicorn.run(create_app(webhook), host=host, port=port, access_log=access_log, log_level="info",
                **uvicorn_options(settings.webhook))
