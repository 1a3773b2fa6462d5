"""The embedded warehouse: chDB served over the ClickHouse HTTP interface.

This package is the only code that imports chdb. One process owns the data directory and answers
clickhouse-connect, dbt-clickhouse, curl and any other ClickHouse HTTP client unchanged.
"""
