"""Debian packages some tests need (docker-compose, chromium, poppler-utils), on demand."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

_apt_lock = threading.Lock()
# Test workers run in parallel processes: one installs at a time, the others then find it.
_APT_LOCK_FILE = Path(tempfile.gettempdir()) / "meterhouse-tests-apt.lock"
_updated = False


def ensure_command(command: str, package: str) -> str:
    """Path of ``command``, installing the Debian ``package`` that provides it when missing."""
    global _updated
    found = shutil.which(command)
    if found:
        return found
    with _apt_lock, _APT_LOCK_FILE.open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        found = shutil.which(command)
        if found:
            return found
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        if not _updated:
            subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
            _updated = True
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
            check=True, env=env, timeout=1200, capture_output=True,
        )  # fmt: skip
    found = shutil.which(command)
    if not found:
        raise RuntimeError(f"installing {package} did not provide {command}")
    return found
