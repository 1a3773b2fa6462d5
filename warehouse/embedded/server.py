"""Run the embedded warehouse: one process that owns the chDB data directory."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from warehouse.embedded.engine import Engine
from warehouse.embedded.http import WarehouseServer
from warehouse.embedded.users import UserStore, bootstrap_users
from warehouse.settings import Settings

log = logging.getLogger("meterhouse.warehouse")


def serve(settings: Settings, *, host: str, port: int, data_dir: Path) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting, finish requests and close the engine."""
    users = UserStore(settings.warehouse_users_file or data_dir / "users.yaml")
    generated = bootstrap_users(
        users,
        _secret(settings.warehouse_admin_password),
        _secret(settings.warehouse_analyst_password),
    )
    engine = Engine(
        data_dir,
        pool_size=settings.warehouse_pool_size,
        readonly_pool_size=max(2, settings.warehouse_pool_size // 2),
        max_result_bytes=settings.warehouse_max_result_bytes,
    )
    server = WarehouseServer((host, port), engine, users)
    for name, password in generated.items():
        print(f"Created warehouse user {name!r} with password: {password}  (shown once)")
    print(f"Warehouse listening on http://{host}:{server.server_port} (data: {data_dir})")

    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        if not stopping.is_set():
            stopping.set()
            log.info("signal %s: shutting down", signum)
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        engine.close()
        print("Warehouse stopped")


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return getter() if getter else None
