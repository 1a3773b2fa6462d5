"""The README's quick start says only what exists: every command, option, Make target, port,
route and secret it names is checked against the code."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

from meterhouse.supervisor import GENERATED_SECRETS
from tests.support.processes import REPO_ROOT, meterhouse_command
from warehouse.settings import Settings

README = REPO_ROOT / "README.md"


def quick_start_commands() -> list[str]:
    text = README.read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    lines = [line.split("  #", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


COMMANDS = quick_start_commands()


def commands_starting_with(*prefixes: str) -> list[str]:
    return [c for c in COMMANDS if c.split()[0] in prefixes]


def test_the_quick_start_has_each_kind_of_command() -> None:
    assert commands_starting_with("make") == ["make up"]
    assert len(commands_starting_with("curl")) == 3
    assert len(commands_starting_with("meterhouse")) >= 4


@pytest.mark.parametrize("command", commands_starting_with("make"))
def test_make_targets_exist(command: str) -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    for target in command.split()[1:]:
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.MULTILINE), target


@pytest.mark.parametrize("command", commands_starting_with("meterhouse"))
def test_meterhouse_commands_and_options_exist(command: str) -> None:
    words = shlex.split(command)[1:]
    path = [w for w in words[: next((i for i, w in enumerate(words) if w.startswith("-")), None)]]
    result = subprocess.run(
        meterhouse_command(*path, "--help"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    for option in (w for w in words if w.startswith("--")):
        assert option in result.stdout, f"{option} is not an option of meterhouse {' '.join(path)}"


def served_paths(app_factory: str) -> set[str]:
    module_name, _, attr = app_factory.partition(":")
    module = __import__(module_name, fromlist=[attr])
    paths: dict[str, object] = getattr(module, attr)().openapi()["paths"]
    return set(paths)


def test_curl_commands_use_the_default_ports_and_served_routes() -> None:
    defaults = Settings(_env_file=None)
    services = {
        defaults.ingest_port: "ingestion.main:create_app",
        defaults.billing_api_port: "api.main:create_app",
    }
    missing = []
    for command in commands_starting_with("curl"):
        url = next(w for w in shlex.split(command) if w.startswith("http"))
        parsed = urlparse(url)
        assert parsed.hostname == "127.0.0.1"
        if parsed.port == defaults.warehouse_port:
            assert "user=analyst" in url
            continue
        assert parsed.port in services, url
        paths = served_paths(services[parsed.port])
        pattern = {re.sub(r"\{[^}]+\}", "[^/]+", p): p for p in paths}
        if not any(re.fullmatch(regex, parsed.path) for regex in pattern):
            missing.append(parsed.path)
    assert not missing


def test_variables_read_from_local_env_are_the_generated_secrets() -> None:
    used = {name for c in COMMANDS for name in re.findall(r"\$(MH_[A-Z_]+)", c)}
    assert used and used <= set(GENERATED_SECRETS)
    assert "source .meterhouse/local.env" in COMMANDS
    assert Path(".meterhouse/local.env") == Path(str(Settings.model_config["env_file"]))
