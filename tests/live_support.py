"""Helpers for the live-engine tests: process checks and a stalling HTTP proxy on 127.0.0.1."""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

LIVE_PROCESS_MARKERS = ("sim.live.worker", "moto.server")


def live_processes(mark: str) -> list[str]:
    """Return the command lines of running worker and moto processes whose environment has ``mark``.

    Every process a test starts inherits the test's environment, so the mark separates them
    from processes of anything else running on the machine.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue
        if mark.encode() in environment and any(marker in command for marker in LIVE_PROCESS_MARKERS):
            found.append(command.strip())
    return found


class StallingProxy:
    """Forwards HTTP requests to a server, but stalls and drops the first few requests of an action.

    A dropped request gets no response at all, like a network stall: the client sees it hang.
    The action is matched in the form body (SNS query protocol, "Action=PublishBatch") or in the
    X-Amz-Target header (SQS JSON protocol).
    """

    def __init__(self, target_url: str, action: str, stall_count: int, stall_s: float) -> None:
        target = urlsplit(target_url)
        self._target_host = target.hostname or "127.0.0.1"
        self._target_port = target.port or 80
        self._action = action
        self._remaining = stall_count
        self._stall_s = stall_s
        self._lock = threading.Lock()
        self.stalled = 0
        proxy = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
                proxy._forward(self, "POST")

            def do_GET(self) -> None:  # noqa: N802
                proxy._forward(self, "GET")

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> StallingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _should_stall(self, headers: object, body: bytes) -> bool:
        target = getattr(headers, "get")("X-Amz-Target", "") or ""
        matches = f"Action={self._action}".encode() in body or target.endswith(f".{self._action}")
        with self._lock:
            if matches and self._remaining > 0:
                self._remaining -= 1
                self.stalled += 1
                return True
        return False

    def _forward(self, request: BaseHTTPRequestHandler, method: str) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if self._should_stall(request.headers, body):
            time.sleep(self._stall_s)
            request.close_connection = True
            return
        connection = http.client.HTTPConnection(self._target_host, self._target_port, timeout=60)
        headers = {key: value for key, value in request.headers.items() if key.lower() not in ("host", "connection")}
        connection.request(method, request.path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        request.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                request.send_header(key, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)
        connection.close()
