"""Google Cloud Functions handler (functions-framework, HTTP).

Deploy: in ``main.py`` write ``from driftgate.triggers.webhook.gcp_function import databricks_sql_alert``
and run ``gcloud functions deploy driftgate-alerts --gen2 --runtime python311 --trigger-http
--allow-unauthenticated --entry-point databricks_sql_alert``; the receiver authenticates.
"""
from __future__ import annotations

import json

import functions_framework

from driftgate.triggers.webhook.serverless import handle_invocation

__all__ = ["databricks_sql_alert"]


@functions_framework.http
def databricks_sql_alert(request):
    """Answer one delivery (a Flask request) with the receiver core."""
    if request.method != "POST":
        return json.dumps({"error": f"method: must be POST, got {request.method}"}), 405, {
            "Content-Type": "application/json"}
    status, answer = handle_invocation(list(request.headers.items()), request.get_data(cache=False))
    return json.dumps(answer), status, {"Content-Type": "application/json"}
