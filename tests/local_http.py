"""A WSGI app served on a free 127.0.0.1 port in a thread, for tests that need a real HTTP peer
(a stand-in Alertmanager, a lossy proxy, a listener that must receive nothing)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve `app` until the block ends; its base URL (http://127.0.0.1:<port>)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
