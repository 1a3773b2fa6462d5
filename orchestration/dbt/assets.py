"""The dbt project as Dagster assets: models as assets, dbt tests as asset checks.

dbt's own sources (raw ``events`` and the catalog tables) appear as their upstream assets. The
manifest is parsed into Dagster's home, not ``dbt_project/target``, so the UI never races a
developer's own dbt runs.
"""

# No "from __future__ import annotations": Dagster reads the resource annotations.

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetsDefinition
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

from warehouse.settings import Settings, get_settings

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
DBT_EXECUTABLE = Path(sys.executable).parent / "dbt"


def dbt_environment(settings: Settings) -> dict[str, str]:
    """What dbt's profile reads: the same warehouse as every other process."""
    return {
        "WAREHOUSE_URL": settings.warehouse_url,
        "MH_WAREHOUSE_USER": settings.warehouse_user,
        "MH_WAREHOUSE_PASSWORD": settings.effective_warehouse_password(),
        "MH_WAREHOUSE_DATABASE": settings.warehouse_database,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def dbt_target_dir(settings: Settings) -> Path:
    return settings.home.resolve() / "dagster" / "dbt_target"


def ensure_manifest(settings: Settings) -> Path:
    """``dbt parse`` (offline) into Dagster's target dir when no manifest is there yet."""
    target = dbt_target_dir(settings)
    manifest = target / "manifest.json"
    if not manifest.exists():
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [str(DBT_EXECUTABLE), "parse", "--project-dir", str(DBT_PROJECT_DIR),
             "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(target), "--quiet"],
            env={**os.environ, **dbt_environment(settings)},
            check=True,
        )  # fmt: skip
    return manifest


def dbt_resource(settings: Settings) -> DbtCliResource:
    return DbtCliResource(
        project_dir=str(DBT_PROJECT_DIR),
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=str(DBT_EXECUTABLE),
    )


def build_dbt_assets(settings: Settings) -> AssetsDefinition:
    manifest = ensure_manifest(settings)
    project = DbtProject(
        DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=dbt_target_dir(settings)
    )

    @dbt_assets(manifest=manifest, project=project, name="rating")
    def rating(context: AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        # dbt runs as a child process and reads its profile from the environment.
        os.environ.update(dbt_environment(get_settings()))
        target = ["--target-path", str(dbt_target_dir(get_settings()))]
        yield from dbt.cli(["build", *target], context=context).stream()

    return rating
