"""optuna-dashboard over the study storage, on 127.0.0.1 by default, with a bound on request size and,
with an API key, HTTP basic authentication (the browser asks; the key is the password)."""

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


def study_url(storage: Any, name: str | None, host: str, port: int) -> str:
    """The page optuna-dashboard shows a study on: it routes studies by their numeric id."""
    base = f"http://{host}:{port}/dashboard"
    return base if name is None else f"{base}/studies/{storage.get_study_id_from_name(name)}"


def name_the_metrics(storage: Any, name: str) -> None:
    """Set a study's metric names from the sweep's objectives when it has none (studies made before
    ecomlab set them), so the dashboard's plots say val/f1 instead of "Objective 0"."""
    import optuna

    study = optuna.load_study(study_name=name, storage=storage)
    metrics = study.user_attrs.get("metrics")
    if study.metric_names is None and metrics and len(metrics) == len(study.directions):
        study.set_metric_names([m["name"] for m in metrics])


def require_key(app: Callable[..., Iterable[bytes]], api_key: str | None) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware: 401 (asking the browser for basic auth) unless the request carries the key."""
    from experiments.core import access

    if api_key is None:
        return app

    def keyed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if access.authorized(environ.get("HTTP_AUTHORIZATION"), api_key):
            return app(environ, start_response)
        start_response(
            "401 Unauthorized",
            [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Basic realm="ecomlab"')],
        )
        return [b"the API key is missing or wrong\n"]

    return keyed


def serve(storage: Any, host: str = "127.0.0.1", port: int = 8080, api_key: str | None = None) -> None:
    """Serve optuna-dashboard's WSGI app until interrupted."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from optuna_dashboard import wsgi

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - wsgiref's signature
            pass

    with make_server(
        host, port, require_key(limit_request_size(wsgi(storage)), api_key), handler_class=QuietHandler
    ) as server:
        server.serve_forever()
