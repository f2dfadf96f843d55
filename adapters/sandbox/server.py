"""Serve a sandbox over HTTP: in a background thread for tests, or in the foreground for the CLI."""

from __future__ import annotations

import threading
from types import TracebackType

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from adapters.sandbox.app import create_sandbox_app
from adapters.sandbox.core import REST_URL_PATH, SOAP_URL_PATH, Sandbox

#: How often the serving loop checks for stop(); stop() waits up to this long (default 0.5 s).
POLL_INTERVAL = 0.05


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not print an access-log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class _AccessLogHandler(WSGIRequestHandler):
    """Werkzeug's access log line per request, its query string replaced by "?<redacted>": a
    token or a search put in a URL stays out of the log (issue 15)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Werkzeug writes `path` (`requestline` when the line was bad): both lose the query. The
        # response has been started, and the connection's next request parses its own.
        if hasattr(self, "path"):
            self.path = without_query(self.path)
        self.requestline = " ".join(without_query(part) for part in self.requestline.split(" "))
        super().log_request(code, size)


def without_query(target: str) -> str:
    """ "/a?token=x" → "/a?<redacted>"; a target without a query as it is."""
    if "?" not in target:
        return target
    return target.split("?", 1)[0] + "?<redacted>"


class SandboxServer:
    """A threaded HTTP server around one Sandbox; `url` is its base address once started."""

    #: The API flavours the sandbox serves.
    FLAVOURS = ("rest", "soap")

    def __init__(
        self,
        sandbox: Sandbox | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        access_log: bool = False,
    ) -> None:
        self.sandbox = sandbox or Sandbox()
        self.app = create_sandbox_app(self.sandbox)
        handler = _AccessLogHandler if access_log else _QuietHandler
        self._server: BaseWSGIServer = make_server(
            host, port, self.app, threaded=True, request_handler=handler
        )
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:8081/."""
        return f"http://{self._server.host}:{self.port}/"

    @property
    def rest_url(self) -> str:
        """The REST base a zone lookup gives, e.g. http://127.0.0.1:8081/atservicesrest/."""
        return f"{self.url}{REST_URL_PATH}"

    @property
    def soap_url(self) -> str:
        """The SOAP endpoint, e.g. http://127.0.0.1:8081/ATServices/1.6/atws.asmx."""
        return f"{self.url}{SOAP_URL_PATH}"

    def zone_lookup_url(self, flavour: str) -> str:
        """Where an integration of `flavour` (one of FLAVOURS) looks its zone up here."""
        return {"rest": self.rest_url, "soap": self.soap_url}[flavour]

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> SandboxServer:
        """Serve in a daemon thread and return self."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name="autotask-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sandbox.state.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
