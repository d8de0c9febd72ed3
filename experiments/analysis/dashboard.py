"""optuna-dashboard over the study storage, on 127.0.0.1 by default, with a bound on request size."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

MAX_REQUEST_BYTES = 1 << 20  # the dashboard's own requests (notes, filters) are a few KiB


def limit_request_size(
    app: Callable[..., Iterable[bytes]], limit: int = MAX_REQUEST_BYTES
) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware: refuse bodies over `limit` bytes with 413 before the app reads them."""

    def limited(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            size = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = limit + 1
        if size > limit:
            start_response("413 Payload Too Large", [("Content-Type", "text/plain")])
            return [f"request body over {limit} bytes\n".encode()]
        return app(environ, start_response)

    return limited


def serve(storage: Any, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve optuna-dashboard's WSGI app until interrupted."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from optuna_dashboard import wsgi

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - wsgiref's signature
            pass

    with make_server(host, port, limit_request_size(wsgi(storage)), handler_class=QuietHandler) as server:
        server.serve_forever()
