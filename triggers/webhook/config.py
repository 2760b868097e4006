"""Settings of the alert webhook receiver (credentials come from the environment)."""
from __future__ import annotations

from pydantic import Field

from driftgate.types import StrictModel


class WebhookConfig(StrictModel):
    max_body_bytes: int = Field(65536, ge=1024)
    min_time_between_triggers_seconds: int = Field(3600, ge=0)
