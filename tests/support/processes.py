"""Start the real servers the tests need on 127.0.0.1 with free ports, and stop them."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SHARED_MEMORY = Path("/dev/shm")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def up_ports() -> dict[str, int]:
    """Distinct free ports for every service ``meterhouse up`` starts."""
    names = ("warehouse", "ingest", "api", "dagster", "dashboards", "docs", "localstripe")
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(names):
        ports = {name: free_port() for name in names}
    return ports


def up_environment(ports: Mapping[str, int], **extra: str) -> dict[str, str]:
    """The environment of a ``meterhouse up`` on these ports, with nothing from the caller's
    Meterhouse settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MH_") and k != "WAREHOUSE_URL"}
    env.update(
        WAREHOUSE_URL=f"http://127.0.0.1:{ports['warehouse']}",
        MH_INGEST_PORT=str(ports["ingest"]),
        MH_BILLING_API_PORT=str(ports["api"]),
        MH_DAGSTER_PORT=str(ports["dagster"]),
        MH_DASHBOARDS_PORT=str(ports["dashboards"]),
        MH_DOCS_PORT=str(ports["docs"]),
        MH_LOCALSTRIPE_PORT=str(ports["localstripe"]),
        **extra,
    )
    return env


def meterhouse_command(*args: str) -> list[str]:
    """The ``meterhouse`` console command of this environment, as a user runs it."""
    return [str(VENV_BIN / "meterhouse"), *args]


def mapped_semaphores(pids: set[int]) -> set[str]:
    """The named POSIX semaphores (multiprocessing's, under /dev/shm) these processes map: the
    ones they must unlink, or have their resource tracker unlink, before they all end."""
    names: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):  # a process that ended meanwhile
            names.update(re.findall(r"/dev/shm/(sem\.\S+)", Path(f"/proc/{pid}/maps").read_text()))
    return names


def still_linked(names: set[str]) -> set[str]:
    return {name for name in names if (SHARED_MEMORY / name).exists()}


class ServiceProcess:
    """A server started as a user starts it, waited for over HTTP (or by ``ready``, for one on
    a unix socket), stopped with SIGTERM."""

    def __init__(
        self,
        command: Sequence[str],
        health_url: str,
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path,
        cwd: Path = REPO_ROOT,
        startup_timeout: float = 60.0,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        self.command = list(command)
        self.health_url = health_url
        self.ready = ready or self._answers_http
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_path
        self.cwd = cwd
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_healthy()
        return self

    def wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.command} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self.ready():
                return
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"{self.health_url} did not answer in time:\n{self.log_tail()}")

    def _answers_http(self) -> bool:
        try:
            return httpx.get(self.health_url, timeout=1.0).status_code < 500
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """Hard kill (SIGKILL), as a crash would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=10)

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def failed_in_one_line(command: tuple[str, ...], env: dict[str, str], home: Path) -> str:
    """The command's error output, once it has exited 1 without a traceback."""
    done = subprocess.run(
        meterhouse_command(*command),
        env={**os.environ, **env, "MH_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr
