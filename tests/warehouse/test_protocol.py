"""clickhouse-connect's HTTP client against the warehouse: the protocol features we rely on."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
import uuid
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from clickhouse_connect.driver.external import ExternalData

from tests.conftest import Warehouse


@pytest.fixture()
def table(warehouse: Warehouse) -> str:
    name = f"`{warehouse.database}`.proto_{uuid.uuid4().hex[:8]}"
    warehouse.client().command(
        f"""CREATE TABLE {name} (
            id UInt64, name String, amount Decimal(38, 12), at DateTime64(3, 'UTC')
        ) ENGINE = MergeTree ORDER BY id"""
    )
    return name


ROWS = [
    [1, "one", Decimal("1.100000000001"), dt.datetime(2024, 2, 29, 23, 59, 59, 999000)],
    [2, "two", Decimal("-2.5"), dt.datetime(2024, 3, 1)],
]


@pytest.mark.parametrize("compress", [True, False, "gzip", "zstd"])
def test_insert_and_query_rows(warehouse: Warehouse, table: str, compress: object) -> None:
    client = warehouse.client(compress=compress)
    summary = client.insert(table, ROWS, column_names=["id", "name", "amount", "at"])
    assert summary.written_rows == 2
    result = client.query(f"SELECT id, name, amount, at FROM {table} ORDER BY id")
    assert [list(row) for row in result.result_rows] == ROWS
    assert client.command(f"SELECT sum(amount) FROM {table}") == "-1.399999999999"


def test_dataframe_and_arrow_round_trip(warehouse: Warehouse, table: str) -> None:
    client = warehouse.client()
    frame = pd.DataFrame(
        {"id": [10, 11], "name": ["a", "b"], "amount": [Decimal("3"), Decimal("4.25")],
         "at": [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02")]}
    )  # fmt: skip
    client.insert_df(table, frame)
    arrow = pa.table(
        {
            "id": pa.array([12], pa.uint64()),
            "name": ["c"],
            "amount": pa.array([Decimal("5.5")], pa.decimal128(38, 12)),
            "at": pa.array([dt.datetime(2024, 1, 3)], pa.timestamp("ms", tz="UTC")),
        }
    )
    client.insert_arrow(table, arrow)
    df = client.query_df(f"SELECT id, name FROM {table} ORDER BY id")
    assert df["id"].tolist() == [10, 11, 12]
    assert df["name"].tolist() == ["a", "b", "c"]
    table_arrow = client.query_arrow(f"SELECT sum(amount) AS total FROM {table}")
    assert table_arrow.column("total")[0].as_py() == Decimal("12.75")


def test_parameter_binding(warehouse: Warehouse, table: str) -> None:
    client = warehouse.client()
    client.insert(table, ROWS, column_names=["id", "name", "amount", "at"])
    server_side = client.query(
        f"SELECT name FROM {table} WHERE id = {{id:UInt64}} AND name != {{skip:String}}",
        parameters={"id": 2, "skip": "it's"},
    )
    assert server_side.result_rows == [("two",)]
    client_side = client.query(f"SELECT count() FROM {table} WHERE name = %(n)s", {"n": "one"})
    assert client_side.result_rows == [(1,)]


def test_parameters_too_large_for_a_url_go_as_form_fields(warehouse: Warehouse) -> None:
    # Beyond 4 KiB of values clickhouse-connect sends the query and its parameters as
    # multipart/form-data fields (a long id, a page of customers' ids, a text with accents).
    client = warehouse.client()
    ids = [f"customer-{n:05d}" for n in range(2_000)]
    found = client.query(
        "SELECT length({ids:Array(String)}), {ids:Array(String)}[2000], {n:UInt32}, {text:String}",
        parameters={"ids": ids, "n": 7, "text": "é" * 3_000},
    )
    assert found.result_rows == [(2_000, "customer-01999", 7, "é" * 3_000)]
    assert client.command("SELECT length({id:String})", parameters={"id": "x" * 50_000}) == 50_000


@pytest.mark.embedded
def test_external_data_is_refused_by_name(warehouse: Warehouse) -> None:
    data = ExternalData(file_name="ids.csv", data=b"1\n2\n", fmt="CSV", structure=["id UInt8"])
    with pytest.raises(DatabaseError, match="External data .*not supported"):
        warehouse.client().query("SELECT count() FROM ids", external_data=data)


def test_sessions_keep_temporary_tables_and_settings(warehouse: Warehouse) -> None:
    client = warehouse.client()
    client.command("CREATE TEMPORARY TABLE scratch (x Int32)")
    client.command("INSERT INTO scratch VALUES (1), (2)")
    client.command("SET max_threads = 3")
    assert client.command("SELECT sum(x) FROM scratch") == 3
    assert client.command("SELECT getSetting('max_threads')") == 3
    other = warehouse.client()
    with pytest.raises(DatabaseError):
        other.command("SELECT sum(x) FROM scratch")
    # A plain request never inherits a session's settings.
    plain = warehouse.client(autogenerate_session_id=False)
    assert plain.command("SELECT getSetting('max_threads')") != 3


def test_concurrent_use_of_one_session_is_refused(warehouse: Warehouse) -> None:
    session = str(uuid.uuid4())
    first = warehouse.client(session_id=session)
    second = warehouse.client(session_id=session)
    thread = threading.Thread(target=first.command, args=("SELECT sleep(2)",))
    thread.start()
    try:
        threading.Event().wait(0.7)  # the first client's query is running by now
        with pytest.raises(DatabaseError, match="code: 373"):
            second.command("SELECT 1")
    finally:
        thread.join()
    assert second.command("SELECT 1") == 1  # free again once the first query ended


def test_request_settings_do_not_leak_between_requests(warehouse: Warehouse) -> None:
    client = warehouse.client(autogenerate_session_id=False)
    default = client.command("SELECT getSetting('max_block_size')")
    assert (
        client.command("SELECT getSetting('max_block_size')", settings={"max_block_size": 77}) == 77
    )
    for _ in range(20):  # every pooled connection answers with the default again
        assert client.command("SELECT getSetting('max_block_size')") == default


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("SELECT * FROM no_such_table_anywhere", 60),
        ("SELECT no_such_function(1)", 46),
        ("SELEC 1", 62),
        ("SELECT 1; SELECT 2", 62),
        ("SELECT throwIf(1, 'boom')", 395),
    ],
)
def test_errors_raise_database_error_with_code(warehouse: Warehouse, sql: str, code: int) -> None:
    with pytest.raises(DatabaseError) as raised:
        warehouse.client().command(sql)
    assert f"code: {code}" in str(raised.value)


def test_unknown_setting_is_refused(warehouse: Warehouse) -> None:
    with pytest.raises(DatabaseError, match="code: 115"):
        warehouse.client().command("SELECT 1", settings={"no_such_setting_x": 1})


def test_format_clause_is_found_by_a_lexer_not_a_search(warehouse: Warehouse) -> None:
    client = warehouse.client()
    text = client.raw_query("SELECT 'FORMAT JSON' AS format /* FORMAT CSV */ FORMAT JSONEachRow")
    assert text == b'{"format":"FORMAT JSON"}\n'


def _insert_and_count(url: str, user: str, password: str, database: str, table: str) -> None:
    from warehouse.client import get_client
    from warehouse.settings import Settings

    settings = Settings(
        warehouse_url=url, warehouse_user=user, warehouse_password=password,
        warehouse_database=database,
    )  # fmt: skip
    client = get_client(settings)
    for batch in range(20):
        rows = [[batch * 1000 + i, "p", Decimal(1), dt.datetime(2024, 1, 1)] for i in range(1000)]
        client.insert(table, rows, column_names=["id", "name", "amount", "at"])
        client.query(f"SELECT count() FROM {table}")


def test_concurrent_clients_threads_and_processes(warehouse: Warehouse, table: str) -> None:
    errors: list[BaseException] = []

    def thread_work(offset: int) -> None:
        try:
            client = warehouse.client()
            for batch in range(20):
                rows = [
                    [offset + batch * 1000 + i, "t", Decimal("0.5"), dt.datetime(2024, 1, 1)]
                    for i in range(1000)
                ]
                client.insert(table, rows, column_names=["id", "name", "amount", "at"])
                client.query(f"SELECT count(), sum(amount) FROM {table}")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=thread_work, args=(1_000_000 * (n + 1),)) for n in range(4)]
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=_insert_and_count,
            args=(warehouse.url, warehouse.user, warehouse.password, warehouse.database, table),
        )
        for _ in range(2)
    ]
    for worker in [*threads, *processes]:
        worker.start()
    for thread in threads:
        thread.join()
    for process in processes:
        process.join(timeout=120)
    assert errors == []
    assert [p.exitcode for p in processes] == [0, 0]
    assert warehouse.client().command(f"SELECT count() FROM {table}") == 4 * 20_000 + 2 * 20_000


def test_insert_errors_raised_in_materialized_views_reach_the_client(warehouse: Warehouse) -> None:
    client = warehouse.client()
    suffix = uuid.uuid4().hex[:8]
    source, target = f"mv_src_{suffix}", f"mv_dst_{suffix}"
    client.command(f"CREATE TABLE {source} (a Int32) ENGINE = Null")
    client.command(f"CREATE TABLE {target} (a Int32) ENGINE = MergeTree ORDER BY a")
    client.command(
        f"CREATE MATERIALIZED VIEW {target}_mv TO {target} "
        f"AS SELECT a + throwIf(a = 2, 'two is refused') AS a FROM {source}"
    )
    client.insert(source, [[1], [3]], column_names=["a"])
    with pytest.raises(DatabaseError, match="code: 395"):
        client.insert(source, [[4], [2]], column_names=["a"])
    rows = client.query(f"SELECT a FROM {target} ORDER BY a").result_rows
    assert rows == [(1,), (3,)]


def test_large_insert_into_a_table_with_views_arrives_whole(warehouse: Warehouse) -> None:
    client = warehouse.client()
    suffix = uuid.uuid4().hex[:8]
    source, target = f"big_src_{suffix}", f"big_dst_{suffix}"
    client.command(
        f"CREATE TABLE {source} (id UInt64, note String, label String DEFAULT 'n' || note) "
        "ENGINE = Null"
    )
    client.command(
        f"CREATE TABLE {target} (id UInt64, note String, label String) "
        "ENGINE = MergeTree ORDER BY id"
    )
    client.command(f"CREATE MATERIALIZED VIEW {target}_mv TO {target} AS SELECT * FROM {source}")
    rows = [[n, "x" * 200] for n in range(20_000)]  # ~4 MB: far past one query's inline data
    summary = client.insert(source, rows, column_names=["id", "note"])
    assert summary.written_rows == 20_000
    counts = client.query(f"SELECT count(), uniqExact(id), any(label) FROM {target}").result_rows
    assert counts == [(20_000, 20_000, "n" + "x" * 200)]
