"""Issue 26's serving figure: `ecomlab serve` at 1,000 concurrent keep-alive connections with a few
slow-loris clients, the bounded queue (`--max-queue 256`, the default) against an effectively
unbounded one (`--max-queue 100000`, what the service did before).

    python bench/serve_load.py [--connections 1000] [--rounds 3] [--slow 10]

The model is bench/serve_throughput.py's (`tiny` BERT 2x64 trained on 2,000 women's clothing reviews,
exported). Each side: a fresh server (`--max-batch 32 --max-wait-ms 5 --request-timeout 5`), all
connections opened first, then `--rounds` requests on each, all at once (asyncio, one process on the
same 2 cores), while `--slow` clients trickle header bytes (half of them) or a body (the other half).
Prints requests/s (answered), p50/p99 of the 200s, the number of 503s, the server's peak RSS
(VmHWM), and how many slow clients were cut off and after how long; then the two sides' ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from serve_throughput import free_port, train_and_export  # noqa: E402

ECOMLAB = str(Path(sys.executable).parent / "ecomlab")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def request(reader, writer, text: str) -> tuple[int, float]:
    body = json.dumps({"texts": [text]}).encode()
    start = time.perf_counter()
    writer.write(
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")
    )
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1]), time.perf_counter() - start


async def slow_client(port: int, body: bool, timeout: float) -> float | None:
    """Seconds until the server cut this slow client off (None: it was not within 3x the timeout)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.perf_counter()
    if body:
        writer.write(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    payload = b" " if body else b"X"
    while time.perf_counter() - start < 3 * timeout:
        try:
            writer.write(payload)
            await writer.drain()
            if await asyncio.wait_for(reader.read(100), 1.0) or reader.at_eof():
                writer.close()
                return time.perf_counter() - start
        except TimeoutError:
            continue
        except (ConnectionError, OSError):
            return time.perf_counter() - start
    writer.close()
    return None


async def load(port: int, connections: int, rounds: int, slow: int, timeout: float, texts: list[str]) -> dict:
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]

    async def one(i: int, reader, writer) -> list[tuple[int, float]]:
        out = [await request(reader, writer, texts[(i * rounds + k) % len(texts)]) for k in range(rounds)]
        writer.close()
        return out

    start = time.perf_counter()
    slow_tasks = [asyncio.create_task(slow_client(port, i % 2 == 1, timeout)) for i in range(slow)]
    answers = await asyncio.gather(*(one(i, r, w) for i, (r, w) in enumerate(conns)))
    wall = time.perf_counter() - start
    cut = await asyncio.gather(*slow_tasks)
    flat = [a for pair in answers for a in pair]
    ok = sorted(t for s, t in flat if s == 200)
    return {
        "answered": len(flat),
        "rps": len(flat) / wall,
        "p50_ms": 1000 * statistics.median(ok),
        "p99_ms": 1000 * ok[int(0.99 * (len(ok) - 1))],
        "busy": sum(s == 503 for s, _ in flat),
        "cut": [c for c in cut if c is not None],
    }


def side(folder: Path, max_queue: int, args: argparse.Namespace, texts: list[str]) -> dict:
    port = free_port()
    cmd = [
        ECOMLAB,
        "serve",
        str(folder),
        "--port",
        str(port),
        "--max-batch",
        "32",
        "--max-wait-ms",
        "5",
        "--max-queue",
        str(max_queue),
        "--request-timeout",
        "5",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            break
        except OSError:
            time.sleep(0.3)
    try:
        r = asyncio.run(load(port, args.connections, args.rounds, args.slow, 5.0, texts))
        r["peak_rss_mb"] = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--slow", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, texts = train_and_export(Path(tmp))
        results = {}
        for name, queue in (("bounded (--max-queue 256)", 256), ("unbounded (--max-queue 100000)", 100000)):
            results[name] = r = side(folder, queue, args, texts)
            cut = r["cut"]
            print(
                f"{name}: {r['answered']} answered, {r['rps']:.1f} requests/s, p50 {r['p50_ms']:.0f} ms, "
                f"p99 {r['p99_ms']:.0f} ms, 503s {r['busy']}, peak RSS {r['peak_rss_mb']:.0f} MB, slow clients "
                f"cut off {len(cut)}/{args.slow} (after {max(cut) if cut else float('nan'):.1f} s at most)",
                flush=True,
            )
        a, b = results.values()
        print(
            f"bounded / unbounded: p99 {a['p99_ms'] / b['p99_ms']:.2f}x, peak RSS {a['peak_rss_mb'] / b['peak_rss_mb']:.2f}x"
        )


if __name__ == "__main__":
    main()
