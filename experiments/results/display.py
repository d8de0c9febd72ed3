"""How a value looks in every table ecomlab prints or writes (`runs`, `compare`, `study show`, the
report), so that the same number reads the same everywhere."""

from __future__ import annotations

from typing import Any


def fmt_value(v: Any, digits: int = 4) -> str:
    """A table cell: `-` for missing, floats to `digits` places (or significant digits when tiny/huge)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.{digits}f}"
    return str(v)
