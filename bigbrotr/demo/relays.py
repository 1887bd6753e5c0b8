"""Real relay servers written by others, run as subprocesses on loopback ports (the demo's and
the tests' relays; both come with the `demo` extra).

- `nostr-relay` (PyPI, Python, SQLite storage) with its `is_recent` validator dropped so that
  old events are accepted;
- rust-nostr's `LocalRelay` (nostr-sdk) through `local_relay_main`, with its rate limit lifted
  and its per-REQ cap (`max_limit`) chosen by the caller.
"""

from __future__ import annotations

import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from bigbrotr.devstack.process import free_port
from bigbrotr.errors import RelayStartError

_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class RunningRelay:
    url: str
    log: Path

    @property
    def host_port(self) -> str:
        """The `host:port` allow-list entry the SSRF guard needs for this loopback relay."""
        return self.url.removeprefix("ws://").rstrip("/")


@contextmanager
def nostr_relay(
    workdir: Path,
    *,
    max_limit: int = 100_000,
    check_signatures: bool = True,
    name: str = "bigbrotr test relay",
) -> Iterator[RunningRelay]:
    """A fresh `nostr-relay` with its SQLite database in `workdir`; without `check_signatures`
    it stores events whatever their id and signature, as a broken or hostile relay would."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "nostr-relay.yaml"
    settings = _nostr_relay_config(workdir, port, max_limit, check_signatures, name)
    config.write_text(yaml.safe_dump(settings))
    log = workdir / "nostr-relay.log"
    command = [_console_script("nostr-relay"), "-c", str(config), "serve", "--use-uvicorn"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir
        )
    try:
        url = f"ws://127.0.0.1:{port}"
        _wait_serving(url, process, log)
        yield RunningRelay(url, log)
    finally:
        _stop(process)


@contextmanager
def local_relay(
    workdir: Path, *, max_limit: int = 100_000, nip42: bool = False
) -> Iterator[RunningRelay]:
    """rust-nostr's LocalRelay (in-memory) answering at most `max_limit` events per REQ.

    nostr-sdk 0.45 never answers more than 500 events per REQ, whatever `max_limit` says; with
    `nip42` it wants authentication before it answers a REQ (writes stay open).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "local-relay.log"
    command = [sys.executable, "-m", "bigbrotr.demo.local_relay_main"]
    command += ["--max-limit", str(max_limit)] + (["--nip42"] if nip42 else [])
    with log.open("wb") as err:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, cwd=workdir
        )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], _START_TIMEOUT)
        line = process.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("READY "):
            raise RelayStartError(f"LocalRelay did not start: {_tail(log)}")
        url = line.removeprefix("READY ")
        _wait_serving(url, process, log)
        yield RunningRelay(url, log)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        _stop(process)


def _nostr_relay_config(
    workdir: Path, port: int, max_limit: int, check_signatures: bool, name: str
) -> dict[str, object]:
    return {
        "DEBUG": False,
        "relay_name": name,
        "storage": {
            "sqlalchemy.url": f"sqlite+aiosqlite:///{workdir / 'relay.sqlite3'}",
            "num_concurrent_reqs": 4,
            "num_concurrent_adds": 2,
            "validators": ["nostr_relay.validators.is_signed"] if check_signatures else [],
        },
        "gunicorn": {"bind": f"127.0.0.1:{port}", "workers": 1, "loglevel": "warning"},
        "authentication": {"enabled": False},
        "verification": {"nip05_verification": "disabled"},
        "max_limit": max_limit,
        "max_event_size": 65_536,
        "subscription_limit": 32,
        "message_timeout": 1800,
        "logging": {
            "version": 1,
            "handlers": {"console": {"class": "logging.StreamHandler", "level": "WARNING"}},
            "root": {"level": "WARNING", "handlers": ["console"]},
        },
    }


def _console_script(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        raise RelayStartError(
            f"{name} is not installed; install the demo extra: pip install 'bigbrotr[demo]'"
        )
    return found


def _wait_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the relay answers a REQ with EOSE over a websocket."""
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RelayStartError(f"relay at {url} exited with {process.returncode}: {_tail(log)}")
        try:
            if _answers_req(url):
                return
        except (OSError, TimeoutError, WebSocketException):
            pass
        time.sleep(0.2)
    raise RelayStartError(f"relay at {url} did not answer in {_START_TIMEOUT}s: {_tail(log)}")


def _answers_req(url: str) -> bool:
    """Whether the relay ends a REQ (EOSE, or CLOSED when it wants NIP-42 auth first)."""
    with connect(url, open_timeout=2, close_timeout=1) as ws:
        ws.send('["REQ","ready",{"limit":0}]')
        for _ in range(3):
            reply = str(ws.recv(timeout=5))
            if reply.startswith(('["EOSE"', '["CLOSED"')):
                return True
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_TIMEOUT)
    if process.stdout is not None:
        process.stdout.close()


def _tail(log: Path) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return text[-2000:] or "(empty log)"
