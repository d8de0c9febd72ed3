"""How a value looks in every table ecomlab prints or writes (`runs`, `compare`, `study show`, the
report), so that the same number reads the same everywhere."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def fmt_value(v: Any, digits: int = 4) -> str:
    """A table cell: `-` for missing, floats to `digits` places (or significant digits when tiny/huge)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.{digits}f}"
    return str(v)


TERMINAL_COLUMNS = 120  # what every text table is laid out for when it is not printed to a terminal

UNITS = {"time/total_s": "s", "time/fit_s": "s", "duration_s": "s", "model/size_mb": "MB"}


def fmt_param(v: Any) -> str:
    """A configuration value: floats keep four significant digits (a learning rate of 6.7e-4 stays
    0.00067, not 0.0007)."""
    if isinstance(v, float) and not isinstance(v, bool):
        return f"{v:.4g}"
    return fmt_value(v)


def fmt_seconds(s: Any) -> str:
    """A duration with its unit: `48.3 s`, `2 min 43 s`, `1 h 02 min`."""
    if not isinstance(s, (int, float)):
        return "-"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def fmt_count(n: Any) -> str:
    """A count for reading: 892930 -> `893k`, 1234567 -> `1.23M`."""
    if not isinstance(n, (int, float)) or isinstance(n, bool):
        return fmt_value(n)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suffix}"
    return str(int(n)) if float(n).is_integer() else f"{n:.4g}"


def fmt_cell(column: str, v: Any) -> str:
    """A cell of any table by its column: durations with units, counts readable, parameters with
    their significant digits, metrics to four places."""
    if column.startswith("time/") or column == "duration_s":
        return fmt_seconds(v)
    if column in ("model/trainable_params", "model/total_params", "model/params"):
        return fmt_count(v)
    if column.endswith(("_mb", "_ms", "_ms_b32")) and isinstance(v, float):  # sizes and latencies
        return f"{v:.1f}"
    if "." in column and "/" not in column:  # a config dot-path
        return fmt_param(v)
    return fmt_value(v)


def fit_columns(widths: list[int], width: int = TERMINAL_COLUMNS, fixed: int = 1) -> int:
    """How many of the columns (in order; each `widths[i]` characters, padding included) fit in
    `width` characters of a table with borders; the first `fixed` always count."""
    used = 1  # the left border
    for i, w in enumerate(widths):
        if i >= fixed and used + w + 1 > width:
            return i
        used += w + 1
    return len(widths)


def column_width(header: str, cells: list[str]) -> int:
    """A column's width: its longest cell or its header, plus padding."""
    return max([len(header), *(len(c) for c in cells)]) + 2


def fitted_table(
    console: Console,
    title: str,
    columns: list[str],
    headers: dict[str, str],
    rows: list[dict],
    fixed: int = 1,
    row_styles: list[str | None] | None = None,
) -> tuple[Table, list[str]]:
    """A table of `rows` laid out for 120 columns (or the terminal's width): every cell on one line,
    no value cut or wrapped inside a word; columns past the first `fixed` that do not fit are left
    out, and returned so the caller can say where to see them."""
    width = console.width if console.is_terminal else TERMINAL_COLUMNS
    cells = {c: [fmt_cell(c, r.get(c)) for r in rows] for c in columns}
    widths = [column_width(headers.get(c, c), cells[c]) for c in columns]
    n = fit_columns(widths, width, fixed)
    table = Table(title=title, padding=(0, 1), title_justify="left")
    for c in columns[:n]:
        table.add_column(headers.get(c, c), no_wrap=True)
    for i in range(len(rows)):
        table.add_row(*(cells[c][i] for c in columns[:n]), style=(row_styles or [None] * len(rows))[i])
    return table, columns[n:]


def print_fitted(console: Console, table: Table) -> None:
    """Print a fitted table without rich re-wrapping it to a narrower default width."""
    (console if console.is_terminal else Console(width=TERMINAL_COLUMNS, file=console.file)).print(table)


def transposed_tables(
    console: Console, title: str, columns: list[str], headers: dict[str, str], rows: list[dict]
) -> list[Table]:
    """`rows` turned on their side, one table row per column and one table column per row (headed by
    its first column, the experiment id), in as many tables as it takes to fit the width."""
    width = console.width if console.is_terminal else TERMINAL_COLUMNS
    key, rest = columns[0], columns[1:]
    names = [headers.get(c, c) for c in rest]
    runs = [(fmt_cell(key, r.get(key)), [fmt_cell(c, r.get(c)) for c in rest]) for r in rows]
    first = column_width("", names)
    tables, start = [], 0
    while start < len(runs) or not tables:
        widths = [first, *(column_width(head, cells) for head, cells in runs[start:])]
        n = max(1, fit_columns(widths, width, fixed=2) - 1)
        chunk = runs[start : start + n]
        part = f" ({start + 1}-{start + len(chunk)} of {len(runs)})" if len(runs) > n or start else ""
        table = Table(title=title + part, padding=(0, 1), title_justify="left")
        table.add_column("", no_wrap=True)
        for head, _ in chunk:
            table.add_column(head, no_wrap=True, justify="right")
        for i, name in enumerate(names):
            table.add_row(name, *(cells[i] for _, cells in chunk))
        tables.append(table)
        start += max(1, len(chunk))
    return tables


def state_text(r: dict[str, Any], unit: str = "epoch") -> str:
    """A trial's state as every table shows it: a pruned trial says when and at what value it was
    stopped (naming the metric when its reports are the sweep's `pruner.metric`, not the objective:
    `-val/loss` is shown as val/loss), a failed one why, an infeasible one which constraint it broke."""
    state = r["state"]
    if state == "FAIL" and (why := r["user_attrs"].get("error")):
        state += f" ({why[:40]})"
    if state == "PRUNED":
        if r["user_attrs"].get("pruned_reason"):
            state += f" ({r['user_attrs']['pruned_reason']})"
        elif reports := r.get("intermediate_values"):
            last = reports[max(reports)]
            shown = fmt_value(last)
            if reported := r["user_attrs"].get("reported"):
                flip = reported.startswith("-")
                shown = f"{reported.lstrip('-')} {fmt_value(-last if flip else last)}"
            state += f" after {len(reports)} {unit}{'s' if len(reports) > 1 else ''} ({shown})"
    if "failed_trial" in r["system_attrs"]:
        state += f" retry of {r['system_attrs']['failed_trial']}"
    if broken := [k for k, v in (r["constraints"] or {}).items() if v > 0]:
        state += f" infeasible: {', '.join(broken)}"
    return state
