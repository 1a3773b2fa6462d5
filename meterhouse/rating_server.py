"""The warm rating process: ``meterhouse rate serve``, and the client that hands it a run.

A new ``meterhouse rate run`` pays ~3 s before dbt's first model: the interpreter, dbt's imports
and dbt's warm-up of a new process (mashumaro building the schemas and decoders its parse needs).
The server pays them once: it imports dbt and parses the project at start, then listens on a unix
socket under the Meterhouse home (``<home>/rating.sock``, mode 0600). Each run it receives is
rated by a child forked from that warm process, so every run starts from the same clean dbt state
(nothing a run leaves in dbt's globals reaches the next), a crash of dbt ends one run, not the
server, and the parent never holds a thread or a connection that a fork would copy half-way. The
child parses again, which re-checks the project's files (dbt's partial parsing), so an edited
model is rated as edited.

Runs are rated one at a time, in the order they arrive: a request that arrives during a run waits
in a queue and is told so. A client whose connection ends mid-run cancels its run (the child gets
SIGINT, as a Ctrl-C in-process would). The protocol is one JSON object per line: the server
greets with who it rates for (warehouse, dbt project and target); the client sends its request;
the server answers with ``queued``, then dbt's log lines, then the exit code.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import multiprocessing.util
import os
import selectors
import signal
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer

from meterhouse.rating import (
    DBT_PROJECT_DIR,
    RatingRequest,
    dbt_process_environment,
    dbt_target_path,
    rate_with_dbt,
)
from warehouse.settings import Settings

SOCKET_NAME = "rating.sock"
# The exit code of a run the server could not finish (it stopped, or its child was killed).
SERVER_FAILED = 2
# How long a command waits for a server's greeting (it greets at once, or once warmed up: seconds)
# before it rates in its own process instead.
GREETING_TIMEOUT_S = 120.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class RatingServerError(RuntimeError):
    """The server cannot start (another one serves this home, the socket path is too long)."""


def socket_path(settings: Settings) -> Path:
    return (settings.home / SOCKET_NAME).resolve()


def identity(settings: Settings) -> dict[str, str]:
    """What a server rates for: a client hands its run over only when all of it matches."""
    return {
        "warehouse": f"{settings.warehouse_url}/{settings.warehouse_database}",
        "user": settings.warehouse_user,
        "project": str(DBT_PROJECT_DIR),
        "target": str(dbt_target_path().resolve()),
    }


def _send(connection: socket.socket, message: dict[str, Any]) -> None:
    connection.sendall(json.dumps(message).encode() + b"\n")


def request_to_json(request: RatingRequest) -> dict[str, Any]:
    values = asdict(request)
    for key, value in values.items():
        if isinstance(value, date | datetime):
            values[key] = value.isoformat()
    return values


def request_from_json(values: dict[str, Any]) -> RatingRequest:
    return RatingRequest(
        rate_from=date.fromisoformat(values["rate_from"]) if values["rate_from"] else None,
        rate_to=date.fromisoformat(values["rate_to"]) if values["rate_to"] else None,
        as_of=datetime.fromisoformat(values["as_of"]) if values["as_of"] else None,
        full_refresh=values["full_refresh"],
        select=tuple(values["select"]),
        run_tests=values["run_tests"],
    )


# --- the client -----------------------------------------------------------------------------------


def _lines(connection: socket.socket) -> Iterator[dict[str, Any]]:
    with connection.makefile("rb") as stream:
        for raw in stream:
            yield json.loads(raw)


@dataclass
class RatingServerClient:
    """A connection to a server that rates for this warehouse, project and target."""

    connection: socket.socket
    path: Path
    pid: int

    def rate(self, request: RatingRequest, on_line: Callable[[str], None]) -> int:
        """Hand the run over, pass each of dbt's log lines to ``on_line``; its exit code."""
        with self.connection:
            try:
                _send(self.connection, {"request": request_to_json(request)})
                for message in _lines(self.connection):
                    if "line" in message:
                        on_line(message["line"])
                    elif "queued" in message:
                        typer.echo(f"rating server: waiting for {message['queued']} run(s) "
                                   "before this one", err=True)  # fmt: skip
                    elif "exit" in message:
                        if message.get("error"):
                            on_line(f"rating server: {message['error']}")
                        return int(message["exit"])
            except OSError as exc:
                on_line(f"rating server: connection lost: {exc}")
        on_line(f"rating server (pid {self.pid}, {self.path}) stopped before the run ended")
        return SERVER_FAILED


def _greet(path: Path, timeout: float | None = None) -> tuple[socket.socket, dict[str, Any]] | None:
    """A connection to the server on ``path`` and its greeting; None when none answers (no
    socket, one left by a server that is gone, or no greeting within ``timeout``)."""
    if not path.exists():
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.settimeout(timeout)
        connection.connect(str(path))
        with connection.makefile("rb") as stream:
            greeting = json.loads(stream.readline() or b"{}")
        connection.settimeout(None)
    except (OSError, ValueError):
        connection.close()
        return None
    return connection, greeting


def answers(path: Path, timeout: float = 2.0) -> bool:
    """Whether a rating server listening on ``path`` has warmed up and greets."""
    greeted = _greet(path, timeout)
    if greeted is None:
        return False
    greeted[0].close()
    return "serves" in greeted[1]


def connect(settings: Settings) -> RatingServerClient | None:
    """The server that rates for these settings, or None (then the run is rated in-process):
    none listens on this home's socket, or the one there rates for another warehouse, project
    or dbt target. A server still warming up is waited for: that is shorter than a cold start."""
    path = socket_path(settings)
    greeted = _greet(path, GREETING_TIMEOUT_S)
    if greeted is None:
        return None
    connection, greeting = greeted
    if greeting.get("serves") != identity(settings):
        connection.close()
        return None
    return RatingServerClient(connection, path, int(greeting["pid"]))


# --- the server -----------------------------------------------------------------------------------


@dataclass
class Pending:
    connection: socket.socket
    received: bytearray = field(default_factory=bytearray)
    request: RatingRequest | None = None


@dataclass
class Running:
    pending: Pending
    pid: int
    pidfd: int


class RatingServer:
    """Accepts runs on the socket, rates them one at a time in forked children."""

    def __init__(self, settings: Settings, path: Path) -> None:
        self.settings = settings
        self.path = path
        self.greeting = {"serves": identity(settings), "pid": os.getpid()}
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.queue: deque[Pending] = deque()
        self.running: Running | None = None

    def bind(self) -> None:
        if len(str(self.path).encode()) >= 104:  # sun_path's size, less than that on some systems
            raise RatingServerError(f"socket path too long for a unix socket: {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with probe:
                try:
                    probe.connect(str(self.path))
                except ConnectionRefusedError:
                    self.path.unlink()  # left by a server that is gone
                else:
                    raise RatingServerError(f"a rating server already listens on {self.path}")
        previous = os.umask(0o177)
        try:
            self.listener.bind(str(self.path))
        finally:
            os.umask(previous)
        self.listener.listen(16)
        self.selector.register(self.listener, selectors.EVENT_READ, self._accept)

    def serve_forever(self) -> None:
        while True:
            for key, _ in self.selector.select():
                key.data(key.fileobj)
            self._start_next()

    def close(self) -> None:
        if self.running is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.running.pid, signal.SIGTERM)
            os.waitpid(self.running.pid, 0)
        for pending in [*self.queue, *([self.running.pending] if self.running else [])]:
            pending.connection.close()
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _accept(self, listener: Any) -> None:
        connection, _ = self.listener.accept()
        try:
            _send(connection, self.greeting)
        except OSError:
            connection.close()
            return
        pending = Pending(connection)
        self.selector.register(connection, selectors.EVENT_READ, lambda _: self._read(pending))

    def _read(self, pending: Pending) -> None:
        try:
            chunk = pending.connection.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            self._hang_up(pending)
            return
        pending.received += chunk
        if pending.request is not None or b"\n" not in pending.received:
            return
        try:
            pending.request = request_from_json(json.loads(pending.received)["request"])
        except (ValueError, KeyError, TypeError) as exc:
            self._finish(pending, {"exit": SERVER_FAILED, "error": f"bad request: {exc}"})
            return
        ahead = len(self.queue) + (self.running is not None)
        if ahead:
            with contextlib.suppress(OSError):
                _send(pending.connection, {"queued": ahead})
        self.queue.append(pending)

    def _hang_up(self, pending: Pending) -> None:
        """The client went away: a waiting run is dropped, the running one cancelled."""
        if self.running is not None and self.running.pending is pending:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.running.pid, signal.SIGINT)
            self.selector.unregister(pending.connection)
            return  # closed once the child has exited
        if pending in self.queue:
            self.queue.remove(pending)
        self.selector.unregister(pending.connection)
        pending.connection.close()

    def _finish(self, pending: Pending, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            _send(pending.connection, message)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(pending.connection)
        pending.connection.close()

    def _start_next(self) -> None:
        if self.running is not None or not self.queue:
            return
        pending = self.queue.popleft()
        assert pending.request is not None
        # A fork copies no thread but the caller's: Python's and native ones (a library's
        # thread pool) alike, counted by the kernel.
        if len(os.listdir("/proc/self/task")) != 1:
            raise RuntimeError("the rating server started a thread: forking is no longer safe")
        parent = os.getpid()
        # The child's garbage collector would otherwise walk the warm process's objects (dbt's
        # modules, the parsed project), writing to each one's header and so copying nearly every
        # page the fork shares: ~0.2 s of a run's parse. Frozen, it leaves them alone.
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            self._rate_in_child(pending, parent)
        gc.unfreeze()
        pidfd = os.pidfd_open(pid)
        self.running = Running(pending, pid, pidfd)
        self.selector.register(pidfd, selectors.EVENT_READ, self._child_exited)

    def _child_exited(self, pidfd: Any) -> None:
        assert self.running is not None
        running, self.running = self.running, None
        self.selector.unregister(running.pidfd)
        os.close(running.pidfd)
        _, status = os.waitpid(running.pid, 0)
        if os.WIFSIGNALED(status):
            signal_name = signal.Signals(os.WTERMSIG(status)).name
            message = {"exit": SERVER_FAILED, "error": f"the run's process died of {signal_name}"}
        else:
            message = {"exit": os.WEXITSTATUS(status)}
        self._finish(running.pending, message)

    def _rate_in_child(self, pending: Pending, parent: int) -> None:
        """The forked child: rate the request, stream dbt's lines, exit with dbt's code."""
        code = SERVER_FAILED
        try:
            _die_with_parent(parent)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)  # dbt cancels its queries
            for key in list(self.selector.get_map().values()):
                if key.fileobj is not pending.connection:
                    key.fileobj.close()  # type: ignore[union-attr]
            self.selector.close()
            assert pending.request is not None
            code = rate_with_dbt(pending.request, self.settings, _line_sender(pending.connection))
        except BaseException as exc:  # noqa: BLE001 - the child must never return to the loop
            with contextlib.suppress(BaseException):
                _send(pending.connection, {"line": f"rating failed: {exc!r}"})
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            _unlink_own_semaphores()
            os._exit(code)


def _unlink_own_semaphores() -> None:
    """dbt's locks are named semaphores (its multiprocessing context is spawn's), which
    multiprocessing unlinks in its exit hook; ``os._exit`` skips the hook, so the run's would stay
    under /dev/shm until the server stops, or for good if it is killed. Run the hook's finalizers
    (those of this process only: a finalizer ignores a call from another process)."""
    with contextlib.suppress(BaseException):  # the child must still reach os._exit
        multiprocessing.util._run_finalizers(0)  # type: ignore[attr-defined]


def _line_sender(connection: socket.socket) -> Callable[[str], None]:
    """Send dbt's log lines to the client; dbt calls back from its worker threads too."""
    lock = threading.Lock()
    lost = threading.Event()

    def send(line: str) -> None:
        if lost.is_set():
            return
        try:
            with lock:
                _send(connection, {"line": line})
        except OSError:
            lost.set()  # the client is gone: cancel the run, as its Ctrl-C would in-process
            os.kill(os.getpid(), signal.SIGINT)

    return send


def _die_with_parent(parent: int) -> None:
    """A run must not outlive its server: the client then sees its connection end, not a run
    that goes on without anyone to report to (Linux's parent-death signal)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the server died before the signal was set
        os._exit(SERVER_FAILED)


def warm_up(settings: Settings) -> None:
    """Import dbt, parse the project and compile the Jinja templates of its macros once, so that
    every forked run finds dbt's modules, the adapter, the decoders of its parse and the macros it
    calls built. dbt caches a macro's template under the macro's text, so an edited macro is
    compiled again by the run that finds it."""
    import dbt.task.build  # noqa: F401 - imported by every build; once here instead
    from dbt.cli.main import dbtRunner
    from dbt.contracts.graph.manifest import Manifest
    from dbt_common.clients.jinja import template_cache

    project = ["--project-dir", str(DBT_PROJECT_DIR), "--log-level", "none"]
    with dbt_process_environment(settings):
        parsed = dbtRunner().invoke(["parse", "--no-write-json", *project])
    if not isinstance(parsed.result, Manifest):
        raise RatingServerError(f"dbt could not parse the project: {parsed.exception}")
    for macro in parsed.result.macros.values():
        template_cache.get_node_template(macro)


def serve(settings: Settings) -> None:
    path = socket_path(settings)
    server = RatingServer(settings, path)
    server.bind()  # first: a second server stops here, before the seconds of dbt's warm-up

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        warm_up(settings)
        typer.echo(f"rating server ready on {path} (pid {os.getpid()})", err=True)
        server.serve_forever()
    finally:
        server.close()
