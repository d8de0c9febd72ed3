"""`ecomlab serve`: a REST service over an exported folder, with dynamic batching.

FastAPI on uvicorn, with the model in the server's own process: requests wait in one asyncio queue,
the batcher takes up to `max_batch` rows that arrive within `max_wait_ms` of the first and runs
them as one forward pass in a single worker thread (so the event loop keeps accepting while the
model computes). LitServe would give batching too, but it runs the model in separate worker
processes fed through queues; on a CPU box with a small model that hop costs more than the forward
pass, and one process keeps `/metadata`'s counters and a graceful shutdown simple.

Endpoints: `POST /predict` (`{"texts": [...]}` for text tasks, `{"rows": [{field: value}]}` for
any task), `GET /health`, `GET /metadata`. Bad input gets a 4xx with a one-line `detail`: malformed
JSON 400, a body over `max_body_mb` 413 (refused from its Content-Length before it is read, or as
soon as a chunked body passes the limit), a missing, empty or wrongly typed field 422.

Under load and abuse every loop is bounded: requests beyond `max_queue` waiting for the model are
answered 503 at once (with Retry-After) instead of queuing without bound; connections beyond
`max_connections` get 503 from uvicorn; a client that sends its headers or its body slower than
`request_timeout` seconds allows (slow loris) is cut off (408 for a body, the connection closed for
headers: uvicorn itself has no deadline on headers, so `SlowClientProtocol` adds one). With an API
key (`experiments.core.access`), /predict and /metadata need it; /health answers anyone.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from experiments.core import access
from experiments.ship.predictor import Predictor
from lightning_modules.served import InputError


@dataclass
class Stats:
    requests: int = 0
    rows: int = 0
    forward_passes: int = 0
    largest_batch: int = 0
    busy: int = 0  # answered 503: the queue was full
    slow_bodies: int = 0  # answered 408: the body came slower than the timeout allows


class Busy(Exception):
    """The queue of requests waiting for the model is full."""


@dataclass
class _Pending:
    rows: list[dict[str, Any]]
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


class Batcher:
    """Gathers concurrent requests into forward passes of at most `max_batch` rows.

    A request larger than `max_batch` runs alone, in chunks of `max_batch`. A request whose rows the
    model cannot read fails alone: the group it was in is re-run request by request.
    """

    def __init__(
        self, predictor: Predictor, max_batch: int, max_wait_ms: float, max_queue: int = 256
    ) -> None:
        self.predictor = predictor
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.stats = Stats()
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=max_queue)
        self._carry: _Pending | None = None  # a request that did not fit into the last batch
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")

    async def submit(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The answers for `rows`; `Busy` at once when `max_queue` requests are already waiting."""
        item = _Pending(rows, asyncio.get_running_loop().create_future())
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.stats.busy += 1
            raise Busy from None
        return await item.future

    def _predict(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(0, len(rows), self.max_batch):
            chunk = rows[i : i + self.max_batch]
            out.extend(self.predictor.predict(chunk))
            self.stats.forward_passes += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(chunk))
        return out

    async def _next(self) -> _Pending:
        if self._carry is not None:
            item, self._carry = self._carry, None
            return item
        return await self.queue.get()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next()
            group, n = [first], len(first.rows)
            deadline = first.queued + self.max_wait
            while n < self.max_batch:
                timeout = deadline - time.perf_counter()
                try:
                    item = (
                        self.queue.get_nowait()
                        if timeout <= 0
                        else await asyncio.wait_for(self.queue.get(), timeout)
                    )
                except (asyncio.QueueEmpty, TimeoutError):
                    break
                if n + len(item.rows) > self.max_batch:
                    self._carry = item
                    break
                group.append(item)
                n += len(item.rows)
            await self._run(loop, group)

    async def _run(self, loop: asyncio.AbstractEventLoop, group: list[_Pending]) -> None:
        rows = [r for item in group for r in item.rows]
        try:
            answers = await loop.run_in_executor(self._pool, self._predict, rows)
        except Exception as exc:  # noqa: BLE001 - the server keeps serving; the request gets a 4xx/500
            if isinstance(exc, InputError) and len(group) > 1:
                for item in group:  # find the request at fault; the others still get their answers
                    await self._run(loop, [item])
                return
            for item in group:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        start = 0
        for item in group:
            if not item.future.done():
                item.future.set_result(answers[start : start + len(item.rows)])
            start += len(item.rows)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


@dataclass(frozen=True)
class Limits:
    """What bounds the service under load and abuse (each a `ecomlab serve` option)."""

    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_body_mb: float = 10.0
    max_queue: int = 256  # requests waiting for the model; more get 503 at once
    max_connections: int = 4096  # open connections; more get 503 (uvicorn's limit_concurrency)
    request_timeout: float = 10.0  # seconds for a request's headers, and for its body
    api_key: str | None = None


def create_app(predictor: Predictor, limits: Limits | None = None) -> Any:
    """The FastAPI application over `predictor` (see the module docstring for its endpoints)."""
    lim = limits or Limits()
    limit = int(lim.max_body_mb * 1024 * 1024)
    batcher = Batcher(predictor, lim.max_batch, lim.max_wait_ms, lim.max_queue)
    info = predictor.info
    text_task = set(predictor.fields) == {"text"}

    @asynccontextmanager
    async def lifespan(app: Any):
        task = asyncio.create_task(batcher.run())
        yield
        # uvicorn has already let every in-flight request finish (graceful shutdown) before this
        task.cancel()
        batcher.close()

    app = FastAPI(title=f"ecomlab {info['task']} {info['experiment_id']}", lifespan=lifespan)
    app.state.batcher = batcher

    def error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    @app.middleware("http")
    async def need_the_key(request: Request, call_next: Any) -> Any:
        if request.url.path != "/health" and not access.authorized(
            request.headers.get("authorization"), lim.api_key
        ):
            return error(
                401,
                "missing or wrong API key: send 'Authorization: Bearer KEY'",
                {"WWW-Authenticate": "Bearer"},
            )
        return await call_next(request)

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _TooLarge
        chunks, size = [], 0
        deadline = time.monotonic() + lim.request_timeout
        stream = request.stream().__aiter__()
        while True:
            try:
                chunk = await asyncio.wait_for(stream.__anext__(), max(0.0, deadline - time.monotonic()))
            except StopAsyncIteration:
                return b"".join(chunks)
            except TimeoutError:
                raise _TooSlow from None
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)

    def rows_of(body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, dict):
            raise InputError("the body must be a JSON object")
        if "texts" in body and text_task:
            texts = body["texts"]
            if not isinstance(texts, list) or not texts:
                raise InputError("'texts' must be a non-empty list of strings")
            return [{"text": t} for t in texts]
        if "rows" in body:
            rows = body["rows"]
            if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
                raise InputError("'rows' must be a non-empty list of objects")
            return rows
        want = "'texts' (a list of strings) or 'rows'" if text_task else "'rows'"
        raise InputError(f"missing field: the body needs {want}; each row has {', '.join(predictor.fields)}")

    @app.post("/predict")
    async def predict(request: Request) -> Any:
        try:
            raw = await read_body(request)
        except _TooLarge:
            return error(413, f"request body over the limit of {lim.max_body_mb:g} MB (--max-body-mb)")
        except _TooSlow:
            batcher.stats.slow_bodies += 1
            return error(
                408,
                f"the body did not arrive within {lim.request_timeout:g} s (--request-timeout)",
                {"Connection": "close"},
            )
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return error(400, f"malformed JSON: {exc}")
        try:
            rows = rows_of(body)
            answers = await batcher.submit(rows)
        except InputError as exc:
            return error(422, str(exc))
        except Busy:
            busy = f"{lim.max_queue} requests are waiting for the model (--max-queue); try again shortly"
            return error(503, busy, {"Retry-After": "1"})
        batcher.stats.requests += 1
        batcher.stats.rows += len(rows)
        return {"experiment_id": info["experiment_id"], "predictions": answers}

    @app.get("/health")
    async def health() -> Any:
        return {"status": "ok"}

    @app.get("/metadata")
    async def metadata() -> Any:
        m = info.get("metrics") or {}
        return {
            "experiment_id": info["experiment_id"],
            "task": info["task"],
            "dataset": info["dataset"],
            "labels": info["serving"].get("labels"),
            "fields": predictor.fields,
            "threshold": info.get("threshold"),
            "max_length": info["serving"].get("max_length"),
            "runtime": predictor.runtime,
            "metrics": {k: v for k, v in m.items() if k.startswith(("val/", "test/"))},
            "model": {k: v for k, v in m.items() if k.startswith("model/")},
            "batching": {
                "max_batch": lim.max_batch,
                "max_wait_ms": lim.max_wait_ms,
                "max_queue": lim.max_queue,
            },
            "stats": vars(batcher.stats),
        }

    return app


def slow_client_protocol(timeout: float) -> type:
    """uvicorn's HTTP protocol with a deadline on request headers: a connection whose request has not
    sent its whole header block `timeout` seconds after its first byte (or after the connection
    opened) is closed. uvicorn times only idle keep-alive connections, so without this a client that
    trickles header bytes holds its connection, and a place under `max_connections`, for ever."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class SlowClientProtocol(HttpToolsProtocol):
        cut_off = 0  # connections closed for slow headers, in this process

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._header_timer = self.loop.call_later(timeout, self._too_slow)

        def data_received(self, data: bytes) -> None:
            between = self.cycle is None or self.cycle.response_complete
            if between and self._header_timer is None:  # a new request on a kept-alive connection
                self._header_timer = self.loop.call_later(timeout, self._too_slow)
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._stop_header_timer()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_timer()
            super().connection_lost(exc)

        def _stop_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                SlowClientProtocol.cut_off += 1
                self.transport.close()

    return SlowClientProtocol


def serve(
    predictor: Predictor, host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None
) -> None:
    """Run the service until SIGINT/SIGTERM; in-flight requests finish first (up to 30 s)."""
    import uvicorn

    lim = limits or Limits()
    uvicorn.run(
        create_app(predictor, lim),
        host=host,
        port=port,
        http=slow_client_protocol(lim.request_timeout),
        log_level="warning",
        timeout_graceful_shutdown=30,
        limit_concurrency=lim.max_connections,
        timeout_keep_alive=5,
        backlog=max(2048, lim.max_connections),
    )
