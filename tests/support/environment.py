"""One trail's SEALTRAIL_* environment on a shared stack: its own topics, bucket prefix and consumer groups.

Workers are configured the way an operator configures them, through the
environment, so a test or benchmark that runs several trails on one stack
gives each a tag and hands the same variables to the `sealtrail stream` and
`sealtrail sink` processes it starts and to its own reading side. The
integration tests' Trail (tests/support/trail.py) and the restart benchmark's
synthetic trail (bench/synthetic_trail.py, which puts the repository root on
sys.path for this) build it here, so both name a trail's parts alike.
"""

from __future__ import annotations

import os
from pathlib import Path

from sealtrail.config import Settings, load_settings


def trail_environment(home: Path | str, tag: str) -> dict[str, str]:
    """The variables that give the trail `tag` its own topics, prefix and groups (metrics on any free port)."""
    return {
        "SEALTRAIL_HOME": str(home),
        "SEALTRAIL_KAFKA__TOPICS__EVENTS": f"{tag}.events",
        "SEALTRAIL_KAFKA__TOPICS__CHAINED": f"{tag}.chained",
        "SEALTRAIL_KAFKA__TOPICS__DLQ": f"{tag}.dlq",
        "SEALTRAIL_KAFKA__TOPICS__QUARANTINE": f"{tag}.quarantine",
        "SEALTRAIL_S3__PREFIX": f"{tag}/",
        "SEALTRAIL_STREAM__GROUP": f"{tag}-stream",
        "SEALTRAIL_SINK__GROUP": f"{tag}-sink",
        "SEALTRAIL_STREAM__METRICS_PORT": "0",
        "SEALTRAIL_SINK__METRICS_PORT": "0",
    }


def settings_from(env: dict[str, str]) -> Settings:
    """The settings a worker started with `env` would load (os.environ as it was, plus env; restored after)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def known_setting(name: str) -> bool:
    """Whether SEALTRAIL_A__B names a field of Settings; a misspelt variable would be ignored silently.

    SEALTRAIL_HEALTH_URL is the container image's own (its HEALTHCHECK), not a setting.
    """
    from pydantic import BaseModel

    if name == "SEALTRAIL_HEALTH_URL":
        return True
    model: type[BaseModel] = Settings
    parts = name.removeprefix("SEALTRAIL_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        kind = field.annotation
        if i < len(parts) - 1:
            if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
                return False
            model = kind
    return True
