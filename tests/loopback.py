"""Helpers for tests that talk HTTP to a real server on 127.0.0.1."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_line(sock: socket.socket) -> str:
    """The first line of the server's answer on `sock` (empty if it closed without one)."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n")[0].decode()


def oversized_request(port: int, method: str, path: str, declared: int, sent: int = 65536) -> str:
    """Declare a `declared`-byte body, send only `sent` bytes of it, and return the status line.

    A server that refuses from the Content-Length may close before a client has written a whole
    large body, so writing all of it (as urllib does) races the answer into a broken pipe.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n\r\n".encode()
            + b"x" * sent
        )
        return status_line(s)
