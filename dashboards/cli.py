"""``meterhouse dashboards serve`` (Streamlit revenue dashboards) and ``meterhouse docs serve``."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from warehouse.settings import get_settings

app = typer.Typer(help="Revenue dashboards (Streamlit).", no_args_is_help=True)
docs_app = typer.Typer(
    help="The dbt docs site: models, columns, tests, lineage.", no_args_is_help=True
)

APP_SCRIPT = Path(__file__).with_name("app.py")
REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT = REPO_ROOT / "dbt_project"


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="TCP port (default: settings).")] = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: settings).")] = None,
) -> None:
    """Serve the dashboards (Streamlit), reading the warehouse of the current settings."""
    settings = get_settings()
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
        "--server.headless", "true",
        "--server.address", host or settings.dashboards_host,
        "--server.port", str(port or settings.dashboards_port),
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    # The repository root on the path: the app imports dashboards.* and warehouse.*.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    raise typer.Exit(subprocess.call(command, env=env))


def _dbt_environment() -> dict[str, str]:
    settings = get_settings()
    return {
        **os.environ,
        "WAREHOUSE_URL": settings.warehouse_url,
        "MH_WAREHOUSE_USER": settings.warehouse_user,
        "MH_WAREHOUSE_PASSWORD": settings.effective_warehouse_password(),
        "MH_WAREHOUSE_DATABASE": settings.warehouse_database,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


@docs_app.command("serve")
def serve_docs(
    port: Annotated[int, typer.Option(help="TCP port.")] = 8580,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    target: Annotated[Path, typer.Option(help="Where the static site is written.")] = Path(
        ".meterhouse/dbt-docs"
    ),
    generate: Annotated[bool, typer.Option(help="Run `dbt docs generate` first.")] = True,
) -> None:
    """Generate the dbt docs (`dbt docs generate`) and serve them as static pages."""
    target = target.resolve()
    if generate:
        dbt = Path(sys.executable).with_name("dbt")
        result = subprocess.call(
            [
                str(dbt), "docs", "generate", "--static",
                "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
                "--target-path", str(target), "--log-path", str(target / "logs"),
            ],
            env=_dbt_environment(),
        )  # fmt: skip
        if result != 0:
            raise typer.Exit(result)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(target))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    typer.echo(f"dbt docs on http://{host}:{port}/static_index.html")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
