"""Roles of the embedded warehouse: who may read, write, change the schema, touch files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.conftest import Warehouse
from tests.support.processes import meterhouse_command

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def facts_table(warehouse: Warehouse) -> str:
    name = f"`{warehouse.database}`.role_facts"
    admin = warehouse.client()
    admin.command(f"CREATE TABLE IF NOT EXISTS {name} (k UInt32) ENGINE = MergeTree ORDER BY k")
    admin.command(f"INSERT INTO {name} VALUES (1), (2), (3)")
    return name


def analyst(warehouse: Warehouse):  # type: ignore[no-untyped-def]
    assert warehouse.analyst_user and warehouse.analyst_password
    return warehouse.client(user=warehouse.analyst_user, password=warehouse.analyst_password)


def test_analyst_reads(warehouse: Warehouse, facts_table: str) -> None:
    assert analyst(warehouse).command(f"SELECT sum(k) FROM {facts_table}") == 6


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("INSERT INTO {t} VALUES (4)", 164),
        ("ALTER TABLE {t} DELETE WHERE 1", 164),
        ("DROP TABLE {t}", 164),
        ("CREATE TABLE {t}_copy (k UInt32) ENGINE = Memory", 164),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", 497),
        ("SELECT * FROM url('http://127.0.0.1:1/x', 'CSV', 'a String')", 497),
        ("SELECT 1 INTO OUTFILE '/tmp/meterhouse-analyst-leak.csv'", 497),
        (
            "INSERT INTO FUNCTION file('/tmp/mh-analyst.csv', 'CSV', 'k UInt32') VALUES (1)",
            497,
        ),
        ("SET readonly = 0", 164),
        ("SYSTEM DROP MARK CACHE", 164),
    ],
)
def test_analyst_cannot_write_or_reach_files(
    warehouse: Warehouse, facts_table: str, sql: str, code: int
) -> None:
    with pytest.raises(DatabaseError) as raised:
        analyst(warehouse).command(sql.format(t=facts_table))
    assert f"code: {code}" in str(raised.value)
    assert warehouse.client().command(f"SELECT count() FROM {facts_table}") == 3


def test_writer_inserts_and_reads_but_no_ddl(warehouse: Warehouse, facts_table: str) -> None:
    data_dir = warehouse.data_dir
    assert data_dir is not None
    subprocess.run(
        meterhouse_command(
            "warehouse", "user", "add", "loader", "--role", "writer", "--password", "load-pw",
            "--data-dir", str(data_dir),
        ),
        check=True,
        capture_output=True,
    )  # fmt: skip
    writer = warehouse.client(user="loader", password="load-pw")
    writer.command(f"INSERT INTO {facts_table} VALUES (10)")
    assert writer.command(f"SELECT max(k) FROM {facts_table}") == 10
    with pytest.raises(DatabaseError, match="code: 497"):
        writer.command(f"TRUNCATE TABLE {facts_table}")
    warehouse.client().command(f"ALTER TABLE {facts_table} DELETE WHERE k = 10")


@pytest.mark.parametrize("name", ["", "x:y", "two words"])
def test_a_user_name_no_client_could_log_in_with_is_refused(name: str, tmp_path: Path) -> None:
    refused = subprocess.run(
        meterhouse_command("warehouse", "user", "add", name, "--data-dir", str(tmp_path)),
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert "Invalid value for NAME" in refused.stderr
    assert not (tmp_path / "users.yaml").exists()


@pytest.mark.parametrize(
    "auth",
    [("admin", "wrong-password"), ("nobody", "x"), None],
)
def test_wrong_credentials_get_401_with_clickhouse_error(
    warehouse: Warehouse, auth: tuple[str, str] | None
) -> None:
    response = httpx.post(warehouse.url, content=b"SELECT 1", auth=auth)
    assert response.status_code == 401
    assert response.headers["X-ClickHouse-Exception-Code"] == "516"
    assert response.text.startswith("Code: 516. DB::Exception:")


def test_get_requests_are_read_only(warehouse: Warehouse, facts_table: str) -> None:
    auth = (warehouse.user, warehouse.password)
    read = httpx.get(
        warehouse.url, params={"query": f"SELECT count() FROM {facts_table}"}, auth=auth
    )
    assert read.status_code == 200
    write = httpx.get(
        warehouse.url, params={"query": f"INSERT INTO {facts_table} VALUES (9)"}, auth=auth
    )
    assert write.status_code == 403
    assert write.headers["X-ClickHouse-Exception-Code"] == "164"
