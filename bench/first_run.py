"""`meterhouse up`'s first run, phase by phase, as a newcomer gets it after `make up`.

Run: .venv/bin/python bench/first_run.py [--customers 200 --days 90 --events-per-day 35000]
     [--keep DIR] [--watch-after 0]
Starts `meterhouse up` in a fresh directory with free ports and the full demo (by default),
prints the supervisor's phase table (wall and CPU seconds, load average) once it says it is up,
then what "ready" holds: invoices, billing days still pending for the invoicing sensor, and the
revenue marts. With --watch-after S it keeps watching S more seconds for invoices that appear
after "ready". Figures on a shared machine are noisy: read the CPU column next to the wall one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from meterhouse.supervisor import read_env_file  # noqa: E402
from tests.support.processes import meterhouse_command, up_environment, up_ports  # noqa: E402

READY = "Meterhouse is up."
# Billing days with fees no invoice holds yet (the late_billing_days sensor's query, without the
# drafts whose grace period is over).
PENDING_SQL = """
SELECT count(DISTINCT billing_date) FROM meterhouse.fct_fees
WHERE invoiceable = 1 AND billing_date <= today() + 1
  AND (organization_id, fee_id) NOT IN (SELECT organization_id, id FROM meterhouse.invoice_fees)
"""


def query(port: int, password: str, sql: str) -> str:
    response = httpx.post(
        f"http://127.0.0.1:{port}/",
        params={"user": "analyst", "password": password},
        content=sql,
        timeout=120.0,
    )
    response.raise_for_status()
    return response.text.strip()


def state(port: int, password: str) -> str:
    invoices = query(port, password, "SELECT count() FROM meterhouse.invoices FINAL")
    pending = query(port, password, PENDING_SQL)
    mrr_days = query(port, password, "SELECT count() FROM meterhouse.fct_mrr_daily_by_plan")
    return f"invoices {invoices}, billing days pending {pending}, MRR rows {mrr_days}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--events-per-day", type=int, default=35_000)
    parser.add_argument("--keep", type=Path, help="Run in this (empty) directory and keep it.")
    parser.add_argument("--watch-after", type=float, default=0.0)
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args()

    directory = args.keep or Path(tempfile.mkdtemp(prefix="meterhouse-first-run-"))
    directory.mkdir(parents=True, exist_ok=True)
    ports = up_ports()
    log_path = directory / "up.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            meterhouse_command("up"),
            cwd=directory,
            env=up_environment(
                ports,
                MH_DEMO_CUSTOMERS=str(args.customers),
                MH_DEMO_DAYS=str(args.days),
                MH_DEMO_EVENTS_PER_DAY=str(args.events_per_day),
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while READY not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() - started > args.timeout:
                print(log_path.read_text(errors="replace")[-5000:])
                raise SystemExit(f"meterhouse up did not get ready (exit {process.poll()})")
            time.sleep(1.0)
        ready_s = time.monotonic() - started
        output = log_path.read_text(errors="replace")
        print(output[output.index("Start, phase by phase:") : output.index(READY)].rstrip())
        print(f"\nready after {ready_s:.1f} s (from launching `meterhouse up`)")
        password = read_env_file(directory / ".meterhouse" / "local.env")[
            "MH_WAREHOUSE_ANALYST_PASSWORD"
        ]
        print(f"at ready: {state(ports['warehouse'], password)}")
        watch_until = time.monotonic() + args.watch_after
        while time.monotonic() < watch_until:
            time.sleep(min(60.0, max(0.0, watch_until - time.monotonic())))
            since = time.monotonic() - started - ready_s
            print(f"ready + {since:.0f} s: {state(ports['warehouse'], password)}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=120)
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            print(f"kept: {directory} (its log: {log_path})")


if __name__ == "__main__":
    main()
