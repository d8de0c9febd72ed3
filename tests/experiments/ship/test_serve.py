"""`ecomlab serve` over real HTTP on loopback: it answers what the exported model answers, gathers
concurrent requests into one forward pass, gives each bad input its 4xx without breaking, refuses a
120 MB body from its header, and finishes an in-flight request on SIGTERM."""

from __future__ import annotations

import json
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.experiments.ship.conftest import predict, request_json, start_server
from tests.loopback import oversized_request, status_line

MAX_WAIT_MS = 1000  # long enough that requests sent together land in one batch on a loaded CI box


@pytest.fixture(scope="module")
def server(exported: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    port, proc = start_server(exported, "--max-batch", "64", "--max-wait-ms", str(MAX_WAIT_MS))
    yield port, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_predictions_over_http_are_the_exported_models(server, exported: Path) -> None:
    from experiments.ship.predictor import load_model

    port, _ = server
    texts = ["great value, fast delivery", "broke after a day", "ok " * 80]
    status, body = predict(port, {"texts": texts})
    assert status == 200
    expected = load_model(exported).predict([{"text": t} for t in texts])
    assert body["predictions"] == expected
    assert body["predictions"][2]["notes"] == ["truncated to 32 tokens"]
    status, meta = request_json(port, "GET", "/metadata")
    assert (
        status == 200 and meta["labels"] == ["negative", "positive"] and meta["fields"] == {"text": "string"}
    )
    assert meta["experiment_id"] == body["experiment_id"] and "test/f1" in meta["metrics"]


def test_concurrent_requests_share_forward_passes(server) -> None:
    port, _ = server
    before = request_json(port, "GET", "/metadata")[1]["stats"]
    n = 8
    barrier = threading.Barrier(n)
    results: list[tuple[int, dict]] = [None] * n  # type: ignore[list-item]

    def client(i: int) -> None:
        barrier.wait()
        results[i] = predict(port, {"texts": [f"review number {i}"]})

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(status == 200 and len(body["predictions"]) == 1 for status, body in results)
    after = request_json(port, "GET", "/metadata")[1]["stats"]
    assert after["requests"] - before["requests"] == n
    assert after["forward_passes"] - before["forward_passes"] < n / 2  # gathered, not one pass each
    assert after["largest_batch"] >= 2


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b'{"texts": ["unclosed"', 400, "malformed JSON"),
        (b"{}", 422, "missing field"),
        (b'{"texts": []}', 422, "non-empty list"),
        (b'{"texts": ["fine", 3]}', 422, "row 1: field 'text' must be a non-empty string"),
        (b'{"rows": [{"title": "no text field"}]}', 422, "row 0: missing field 'text'"),
        (b"[1, 2]", 422, "JSON object"),
    ],
)
def test_bad_input_gets_its_status_and_nothing_else_breaks(
    server, body: bytes, status: int, says: str
) -> None:
    port, _ = server
    got, answer = request_json(port, "POST", "/predict", body)
    assert got == status and says in answer["detail"]
    assert predict(port, {"texts": ["still serving"]})[0] == 200


def test_a_120_mb_body_is_refused_from_its_header_and_a_chunked_one_midway(server) -> None:
    port, _ = server
    assert " 413 " in oversized_request(port, "POST", "/predict", 120 << 20)  # answered after 64 KB
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * (1 << 20)
        try:
            while sent < 120 << 20 and not select.select([s], [], [], 0)[0]:
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert " 413 " in status_line(s)
    assert sent < 60 << 20  # refused once past the 10 MB limit, not after reading everything
    assert predict(port, {"texts": ["still serving"]})[0] == 200


def test_sigterm_finishes_the_request_in_flight(server) -> None:
    port, proc = server
    body = json.dumps({"texts": ["in flight"]}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body
        )
        time.sleep(0.3)  # the request waits in the batcher (max-wait 1 s) when the signal comes
        proc.send_signal(signal.SIGTERM)
        assert " 200 " in status_line(s)
    # uvicorn re-raises the signal once it has shut down gracefully, so the exit is SIGTERM's
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
