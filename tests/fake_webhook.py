"""A local receiver for the generic JSON webhook (standard library only): it verifies each request's
HMAC-SHA256 signature over the raw body exactly as a real receiver would, and answers 401 when it is wrong.

Helpers: `requests` (raw body, headers, whether the signature was valid), `responses` (queued answers:
status, headers, text), `stall_next(seconds)` (handle the next request, answer late: a client timeout that
did deliver), `texts` (the alert texts received, one per distinct Idempotency-Key — what a de-duplicating
receiver keeps) and `port` (restart on the port of an earlier receiver).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_SECRET = "webhook-shared-secret-XYZ"


class WebhookReceiver:
    def __init__(self, secret: str = DEFAULT_SECRET, port: int = 0) -> None:
        self.secret = secret.encode()
        self.requests: list[dict[str, Any]] = []
        self.responses: list[tuple[int, dict[str, str], str]] = []
        self._stall = 0.0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hooks/yuqing"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def stall_next(self, seconds: float) -> None:
        with self._lock:
            self._stall = seconds

    def take(self, raw: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], str, float]:
        expected = "sha256=" + hmac.new(self.secret, raw, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(expected, headers.get("X-Yuqing-Signature", ""))
        with self._lock:
            status, extra, text = self.responses.pop(0) if self.responses else (200, {}, "ok")
            status = status if valid else 401
            self.requests.append({"raw": raw, "headers": headers, "valid": valid, "status": status})
            stall, self._stall = self._stall, 0.0
        return status, extra, text, stall

    @property
    def texts(self) -> list[str]:
        """Texts of accepted (2xx) requests, de-duplicated by Idempotency-Key (first copy kept)."""
        seen: set[str] = set()
        out: list[str] = []
        for req in list(self.requests):
            key = req["headers"].get("Idempotency-Key", "")
            if 200 <= req["status"] < 300 and key not in seen:
                seen.add(key)
                out.append(json.loads(req["raw"])["text"])
        return out


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            status, headers, text, stall = receiver.take(raw, dict(self.headers))
            if stall:
                time.sleep(stall)  # the fake answers late; the test itself never sleeps
            try:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                data = text.encode()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler
