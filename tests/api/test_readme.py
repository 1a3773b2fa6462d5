"""The README's curl and Python examples run as written against a live API."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.api.conftest import Tenant

README = Path(__file__).resolve().parents[2] / "api" / "README.md"


def block(language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)```", README.read_text(), re.DOTALL)
    assert match is not None
    return match.group(1).replace("http://127.0.0.1:3000", "{url}")


def test_readme_examples_run(tenant: Tenant, api_url: str) -> None:
    curl = block("bash").replace("{url}", api_url).replace("KEY=mh_...", f"KEY={tenant.api_key}")
    subprocess.run(["bash", "-euo", "pipefail", "-c", curl], check=True, capture_output=True)
    assert tenant.lago.billable_metrics.find("api_calls").aggregation_type == "count_agg"

    python = block("python").replace("{url}", api_url)
    exec(compile(python, str(README), "exec"), {"KEY": tenant.api_key})  # noqa: S102
    subscription = tenant.lago.subscriptions.find("acme_main")
    assert (subscription.plan_code, subscription.status) == ("startup", "active")
