"""Warehouse users of the embedded server: a YAML file of names, roles and scrypt hashes.

Roles: ``admin`` (read, write, DDL, files), ``writer`` (INSERT and SELECT), ``analyst``
(read-only). The first start creates ``admin`` and ``analyst``; their passwords come from
``MH_WAREHOUSE_ADMIN_PASSWORD`` / ``MH_WAREHOUSE_ANALYST_PASSWORD`` or are generated and printed
once. Only hashes are stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml


class Role(StrEnum):
    ADMIN = "admin"
    WRITER = "writer"
    ANALYST = "analyst"


_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _verify_hash(password: str, stored: str) -> bool:
    scheme, salt_hex, digest_hex = stored.split("$")
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str


class UserStore:
    """Users from the YAML file; verified passwords are remembered (as digests) for speed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._verified: dict[str, bytes] = {}
        self._mtime = 0.0
        self.reload()

    def reload(self) -> None:
        if not self.path.exists():
            self._users, self._mtime = {}, 0.0
            return
        raw = yaml.safe_load(self.path.read_text()) or {}
        users = {
            name: User(name, Role(entry["role"]), entry["password_hash"])
            for name, entry in (raw.get("users") or {}).items()
        }
        with self._lock:
            self._users, self._verified = users, {}
            self._mtime = self.path.stat().st_mtime

    def _reload_if_changed(self) -> None:
        # `meterhouse warehouse user add` edits the file while the server runs. One stat per
        # request: on some file systems each costs ~10 us.
        try:
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError:
            return
        if mtime != self._mtime:
            self.reload()

    def authenticate(self, name: str, password: str) -> User | None:
        self._reload_if_changed()
        user = self._users.get(name)
        if user is None:
            return None
        fast = hashlib.sha256(f"{user.password_hash}:{password}".encode()).digest()
        remembered = self._verified.get(name)
        if remembered is not None and hmac.compare_digest(remembered, fast):
            return user
        if not _verify_hash(password, user.password_hash):
            return None
        self._verified[name] = fast
        return user

    def names(self) -> list[str]:
        return sorted(self._users)

    def set_user(self, name: str, role: Role, password: str) -> None:
        """Add or reset one user; written atomically, readable by the owner only."""
        with self._lock:
            users = dict(self._users)
            users[name] = User(name, role, hash_password(password))
            document = {
                "users": {
                    u.name: {"role": u.role.value, "password_hash": u.password_hash}
                    for u in users.values()
                }
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(yaml.safe_dump(document, sort_keys=True))
            os.chmod(tmp, 0o600)
            tmp.replace(self.path)
        self.reload()


def bootstrap_users(
    store: UserStore, admin_password: str | None, analyst_password: str | None
) -> dict[str, str]:
    """Create admin and analyst on first start; env-provided passwords are (re)applied each start.

    Returns the generated passwords (to print once); empty when nothing was generated.
    """
    generated: dict[str, str] = {}
    for name, role, wanted in (
        ("admin", Role.ADMIN, admin_password),
        ("analyst", Role.ANALYST, analyst_password),
    ):
        if wanted:
            if store.authenticate(name, wanted) is None:
                store.set_user(name, role, wanted)
        elif name not in store.names():
            password = secrets.token_urlsafe(18)
            store.set_user(name, role, password)
            generated[name] = password
    return generated
