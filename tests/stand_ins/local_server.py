"""The HTTP server under the stand-ins: 127.0.0.1, a free port, a thread per request, a context manager."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    """Subclasses define ``start()`` (build their handler, then ``self.serve(handler)``)."""

    port = 0  # 0: any free port
    _server: ThreadingHTTPServer | None = None

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> str:
        """Start serving ``handler`` in a daemon thread; returns the base URL."""
        server_class = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 128})  # the default 5
        self._server = server_class(("127.0.0.1", self.port), handler)  # drops connects when a crawl is busy
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://{host}:{port}"

    def start(self):  # pragma: no cover - each stand-in defines it
        raise NotImplementedError

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
