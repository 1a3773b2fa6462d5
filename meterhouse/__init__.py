"""Meterhouse: usage metering and billing on ClickHouse. The ``meterhouse`` command lives here."""
