"""Dagster's home: an absolute, existing directory under the settings' home, telemetry off."""

from __future__ import annotations

from pathlib import Path

from warehouse.settings import Settings

# Invoicing runs one at a time (the "invoicing" pool): invoice numbers are sequential.
DAGSTER_YAML = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""


def dagster_home(settings: Settings) -> Path:
    home = settings.home.resolve() / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() != DAGSTER_YAML:
        config.write_text(DAGSTER_YAML)
    return home
