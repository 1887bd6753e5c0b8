"""The HTTP endpoint of a process: `/metrics` (Prometheus), `/health` (alive), `/ready`.

It runs in a daemon thread with its own sockets, so a busy or stuck event loop still answers
`/health`, and `/ready` probes the dependencies afresh on each request.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from bigbrotr.observability.ready import Check, failures

log = logging.getLogger("bigbrotr.metrics")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._answer(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        elif path == "/health":
            self._json(200, {"status": "alive", "process": self.server.process})
        elif path == "/ready":
            failed = failures(self.server.checks)
            body = {"status": "not ready" if failed else "ready", "failed": failed}
            self._json(503 if failed else 200, {**body, "checked": sorted(self.server.checks)})
        else:
            self._json(404, {"error": "not found; try /metrics, /health or /ready"})

    def _json(self, status: int, body: object) -> None:
        self._answer(status, json.dumps(body).encode(), "application/json")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, process: str, checks: dict[str, Check]) -> None:
        super().__init__((host, port), _Handler)
        self.process = process
        self.checks = checks


class MetricsServer:
    """Serving from construction until `close()`; `port` is the one actually bound."""

    def __init__(self, host: str, port: int, process: str, checks: dict[str, Check]) -> None:
        try:
            self._server = _Server(host, port, process, checks)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or port == 0:
                raise
            self._server = _Server(host, 0, process, checks)
            log.warning(
                "metrics port %d is taken (another %s on this machine?); serving on %d instead; "
                "set metrics.ports.%s to choose one",
                port,
                process,
                self._server.server_address[1],
                process,
            )
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"{process} metrics", daemon=True
        )
        self._thread.start()
        log.info("%s: metrics, health and readiness on http://%s:%d", process, host, self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
