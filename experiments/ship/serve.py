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

from experiments.ship.predictor import Predictor
from lightning_modules.served import InputError


@dataclass
class Stats:
    requests: int = 0
    rows: int = 0
    forward_passes: int = 0
    largest_batch: int = 0


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

    def __init__(self, predictor: Predictor, max_batch: int, max_wait_ms: float) -> None:
        self.predictor = predictor
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.stats = Stats()
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._carry: _Pending | None = None  # a request that did not fit into the last batch
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")

    async def submit(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        item = _Pending(rows, asyncio.get_running_loop().create_future())
        await self.queue.put(item)
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


def create_app(
    predictor: Predictor, *, max_batch: int = 32, max_wait_ms: float = 5.0, max_body_mb: float = 10.0
) -> Any:
    """The FastAPI application over `predictor` (see the module docstring for its endpoints)."""
    limit = int(max_body_mb * 1024 * 1024)
    batcher = Batcher(predictor, max_batch, max_wait_ms)
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

    def error(status: int, detail: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status)

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _TooLarge
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

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
            return error(413, f"request body over the limit of {max_body_mb:g} MB (--max-body-mb)")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return error(400, f"malformed JSON: {exc}")
        try:
            rows = rows_of(body)
            answers = await batcher.submit(rows)
        except InputError as exc:
            return error(422, str(exc))
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
            "batching": {"max_batch": max_batch, "max_wait_ms": max_wait_ms},
            "stats": vars(batcher.stats),
        }

    return app


def serve(predictor: Predictor, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Run the service until SIGINT/SIGTERM; in-flight requests finish first (up to 30 s)."""
    import uvicorn

    uvicorn.run(
        create_app(predictor, **options),
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=30,
    )
