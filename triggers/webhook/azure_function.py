"""Azure Functions handler (Python v2 programming model, HTTP trigger).

Deploy: in the function app's ``function_app.py`` write
``from driftgate.triggers.webhook.azure_function import app`` and publish with
``func azure functionapp publish <app>``; set the environment described in
:mod:`driftgate.triggers.webhook.serverless` as application settings.
"""
from __future__ import annotations

import json

import azure.functions as func

from driftgate.triggers.webhook.serverless import handle_invocation

__all__ = ["app", "handle_request"]

# The receiver does its own authentication; a function key would be a second, unsupported secret.
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def handle_request(req: func.HttpRequest) -> func.HttpResponse:
    """Answer one HTTP-triggered delivery with the receiver core."""
    status, answer = handle_invocation(dict(req.headers), req.get_body())
    return func.HttpResponse(json.dumps(answer), status_code=status, mimetype="application/json")


@app.route(route="v1/alerts/databricks-sql", methods=["POST"])
def databricks_sql_alert(req: func.HttpRequest) -> func.HttpResponse:
    return handle_request(req)
