"""Versioned SQL migrations: ``warehouse/migrations/NNNN_name.sql``, applied in order, once.

A file may hold several statements separated by ``;`` at the end of a line. ``{database}`` in a
file is replaced by the target database name, so the same files serve every deployment.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self, database: str) -> list[str]:
        text = self.sql.replace("{database}", database)
        lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
        parts = "\n".join(lines).split(";\n")
        return [part.strip().rstrip(";").strip() for part in parts if part.strip().rstrip(";")]


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        version, _, name = path.stem.partition("_")
        if not version.isdigit():
            raise ValueError(f"migration file {path.name} must start with a number: NNNN_name.sql")
        migrations.append(Migration(version=version, name=name, sql=path.read_text()))
    versions = [m.version for m in migrations]
    if len(versions) != len(set(versions)):
        raise ValueError(f"duplicate migration versions in {directory}")
    return migrations


def applied_versions(client: Client, database: str) -> set[str]:
    rows = client.query(f"SELECT version FROM `{database}`.schema_migrations FINAL").result_rows
    return {row[0] for row in rows}


def migrate(client: Client, database: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Create the database if needed and apply every pending migration; return those applied."""
    client.command(f"CREATE DATABASE IF NOT EXISTS `{database}` ENGINE = Atomic")
    client.command(
        f"""CREATE TABLE IF NOT EXISTS `{database}`.schema_migrations (
            version String,
            name String,
            checksum String,
            applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"""
    )
    done = applied_versions(client, database)
    applied = []
    for migration in discover(directory):
        if migration.version in done:
            continue
        for statement in migration.statements(database):
            client.command(statement)
        client.insert(
            f"`{database}`.schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        applied.append(migration)
    return applied
