"""Background processes that `dev up` owns: started detached, remembered by pid file.

A pid file is trusted only while its process still runs a command line containing the marker we
started it with, so `down` never signals an unrelated process that reused the pid.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bigbrotr.errors import StackError


@dataclass(frozen=True)
class ManagedProcess:
    """A daemon of the dev stack: its pid file, log file and the marker in its command line."""

    name: str
    pid_file: Path
    log_file: Path
    marker: str

    def running_pid(self) -> int | None:
        """The pid if our process is alive, else None; a dead process's pid file is removed."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not alive(pid):
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid if _cmdline_contains(pid, self.marker) else None

    def start(self, argv: Sequence[str], env: dict[str, str] | None = None) -> int:
        """Start detached in its own session so a terminal's Ctrl-C does not reach it."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            child = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        self.pid_file.write_text(str(child.pid))
        return child.pid

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM, wait, then SIGKILL; True if something was stopped."""
        pid = self.running_pid()
        if pid is None:
            return False
        _signal(pid, signal.SIGTERM)
        if not wait_for(lambda: not alive(pid), timeout_s):
            _signal(pid, signal.SIGKILL)
            wait_for(lambda: not alive(pid), 5.0)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 5) -> str:
        try:
            content = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(content[-lines:])


def _cmdline_contains(pid: int, marker: str) -> bool:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return marker in raw.replace(b"\0", b" ").decode(errors="replace")


def alive(pid: int) -> bool:
    """True unless the process is gone or a zombie; its command line may be mid-exec."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1]
    except (OSError, IndexError):
        return False
    return not status.startswith("Z")


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return


def port_open(host: str, port: int) -> bool:
    """True if something accepts TCP connections there."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A loopback TCP port nothing listens on now, for a process started next (tests, demos)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval_s)
    return condition()


def ensure_port_free(host: str, port: int, setting: str) -> None:
    if port_open(host, port):
        raise StackError(
            f"port {port} on {host} is already in use by another process; stop it, "
            f"or choose another port with {setting}"
        )


def run_checked(argv: Sequence[str], what: str, log_file: Path, cwd: Path | None = None) -> None:
    """Run a short setup command, appending its output to the log; fail with the log's path."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        result = subprocess.run(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=cwd
        )
    if result.returncode != 0:
        raise StackError(f"{what} failed (exit {result.returncode}); see {log_file}")
