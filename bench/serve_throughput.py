"""(c) of the export/serve issue: `ecomlab serve` with dynamic batching vs `--max-batch 1`.

    python bench/serve_throughput.py [--clients 64] [--requests 1920] [--seconds 60]

Trains the small real-data text model of bench/sweep_common.py (`tiny` BERT 2x64, 2,000 women's
clothing reviews, max_length 64, 2 epochs), exports it, and serves it twice on loopback: dynamic
batching (`--max-batch 32 --max-wait-ms 5`) and one row a forward pass (`--max-batch 1
--max-wait-ms 0`). Each side gets the same load: `--clients` concurrent keep-alive connections
(asyncio, one process), each sending one real review a request until `--requests` answers or
`--seconds` have passed, after a warm-up. Prints requests/s, p50 and p99 latency, forward passes,
and the throughput ratio. Client and server share this machine's cores, as on a laptop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import sweep_common  # noqa: E402

ECOMLAB = str(Path(sys.executable).parent / "ecomlab")


def train_and_export(folder: Path) -> tuple[Path, list[str]]:
    import yaml

    cfg = json.loads(json.dumps(sweep_common.BASE))
    cfg["trainer"].update(max_epochs=2, patience=2)
    cfg["optim"] = {"lr": 3e-3, "warmup": 0.0}
    (folder / "model.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "ECOMLAB_RUNS": str(folder / "runs")}
    out = subprocess.run(
        [ECOMLAB, "run", str(folder / "model.yaml"), "--print-config"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    exp_id = out.split("experiment id: ")[1].split()[0]
    subprocess.run([ECOMLAB, "run", str(folder / "model.yaml")], env=env, check=True, capture_output=True)
    subprocess.run(
        [ECOMLAB, "export", exp_id, "--out", str(folder / "model")], env=env, check=True, capture_output=True
    )
    from datamodules.womens_clothing_reviews import WomensClothingReviewsData

    data = WomensClothingReviewsData(target="recommended")
    raw = data.read(data.source_files())
    texts = [t for t in raw.texts if t and t.strip()][:5000]
    return folder / "model", texts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def client(port: int, texts: list[str], offset: int, stop: dict, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    while not stop["done"]:
        body = json.dumps({"texts": [texts[i % len(texts)]]}).encode()
        i += 97
        start = time.perf_counter()
        writer.write(
            b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
        )
        payload = await reader.readexactly(length)
        assert head.startswith(b"HTTP/1.1 200"), head + payload
        latencies.append(time.perf_counter() - start)
        if len(latencies) >= stop["requests"] or time.perf_counter() > stop["deadline"]:
            stop["done"] = True
    writer.close()


async def load(
    port: int, texts: list[str], clients: int, requests: int, seconds: float, stats: Any
) -> tuple[float, list[float], dict]:
    """Warm up (two requests a client), then the measured load; returns its wall time, latencies and
    the server's counters over the measured part only."""
    warm: list[float] = []
    await asyncio.gather(
        *(
            client(
                port,
                texts,
                c,
                {"done": False, "requests": clients * 2, "deadline": time.perf_counter() + 30},
                warm,
            )
            for c in range(clients)
        )
    )
    before = stats()
    latencies: list[float] = []
    stop = {"done": False, "requests": requests, "deadline": time.perf_counter() + seconds}
    start = time.perf_counter()
    await asyncio.gather(*(client(port, texts, c * 13, stop, latencies) for c in range(clients)))
    wall = time.perf_counter() - start
    after = stats()
    return wall, latencies, {k: after[k] - before[k] for k in ("rows", "forward_passes")}


def side(model: Path, texts: list[str], args: argparse.Namespace, max_batch: int, max_wait_ms: float) -> dict:
    port = free_port()
    proc = subprocess.Popen(
        [
            ECOMLAB,
            "serve",
            str(model),
            "--port",
            str(port),
            "--max-batch",
            str(max_batch),
            *args.serve_args,
            "--max-wait-ms",
            str(max_wait_ms),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)

        def stats() -> dict:
            return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/metadata").read())["stats"]

        wall, lat, counted = asyncio.run(load(port, texts, args.clients, args.requests, args.seconds, stats))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lat.sort()
    return {
        "rps": len(lat) / wall,
        "p50": statistics.median(lat) * 1000,
        "p99": lat[int(0.99 * (len(lat) - 1))] * 1000,
        "max": lat[-1] * 1000,
        "n": len(lat),
        "wall": wall,
        "passes": counted["forward_passes"],
        "rows": counted["rows"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--requests", type=int, default=1920)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--max-batch", type=int, default=32, help="the batched side's --max-batch")
    ap.add_argument("--max-wait-ms", type=float, default=5.0, help="the batched side's --max-wait-ms")
    ap.add_argument("--threads", type=int, default=None, help="the server's --threads (both sides)")
    args = ap.parse_args()
    args.serve_args = ["--threads", str(args.threads)] if args.threads else []
    with tempfile.TemporaryDirectory() as tmp:
        model, texts = train_and_export(Path(tmp))
        sides = {
            f"dynamic batching (max-batch {args.max_batch}, max-wait {args.max_wait_ms:g} ms)": side(
                model, texts, args, args.max_batch, args.max_wait_ms
            ),
            "one row a pass (max-batch 1)": side(model, texts, args, 1, 0.0),
        }
    print(
        f"{args.clients} concurrent clients, one review a request, {os.cpu_count()} CPUs shared with the client"
    )
    for name, r in sides.items():
        print(
            f"{name}: {r['rps']:.1f} requests/s ({r['n']} in {r['wall']:.1f} s), p50 {r['p50']:.1f} ms, "
            f"p99 {r['p99']:.1f} ms, max {r['max']:.1f} ms, {r['passes']} forward passes "
            f"({r['rows'] / max(1, r['passes']):.1f} rows a pass)"
        )
    a, b = sides.values()
    print(f"throughput ratio: {a['rps'] / b['rps']:.2f}x")


if __name__ == "__main__":
    main()
