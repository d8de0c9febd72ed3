"""The user's own CSV / JSONL / Parquet file: text column(s), a label column, optional label list."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from datamodules.cleaning import RawExamples
from datamodules.dataset import DatasetConfig
from experiments.core.errors import DataError

csv.field_size_limit(16 * 1024 * 1024)


def _has_surrogates(s: str) -> bool:
    # bytes that are not UTF-8 come back as lone surrogates under errors="surrogateescape"
    return any("\udc80" <= ch <= "\udcff" for ch in s)


def _cell(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


class TextFileData(DatasetConfig):
    """The user's own CSV / JSONL / Parquet file with one example per row. Malformed rows (wrong
    field count, bad JSON), undecodable bytes, empty texts and labels outside `labels` are reported
    with their line numbers and dropped."""

    tasks: ClassVar = ("text_classification",)
    targets: ClassVar = "your label column"
    size: ClassVar = "your CSV / JSONL / Parquet file"
    language: ClassVar = "any"

    dataset: Literal["text_file"] = "text_file"
    path: str = Field(..., description="CSV, JSONL or Parquet file with one example per row.")
    format: Literal["auto", "csv", "jsonl", "parquet"] = Field(
        "auto", description="File format (auto: by suffix)."
    )
    text_columns: list[str] = Field(["text"], min_length=1, description="Columns joined into the input text.")
    label_column: str = Field("label", description="Column with the class label.")
    labels: list[str] | None = Field(
        None, description="Allowed labels, in order; rows with others are dropped."
    )
    split_column: str | None = Field(
        None, description="Column with train/val/test (or validation) to use the file's own split."
    )

    @property
    def file(self) -> Path:
        return Path(self.path).expanduser()

    @property
    def source_name(self) -> str:
        return str(self.file)

    def source_files(self) -> list[Path]:
        if not self.file.is_file():
            raise DataError(f"data.path: file not found: {self.file}")
        return [self.file]

    def allowed_labels(self) -> list[str] | None:
        return list(self.labels) if self.labels is not None else None

    @property
    def file_format(self) -> str:
        if self.format != "auto":
            return self.format
        suffixes = "".join(self.file.suffixes).lower()
        for fmt, ends in (
            ("csv", (".csv", ".tsv")),
            ("jsonl", (".jsonl", ".ndjson", ".json")),
            ("parquet", (".parquet", ".pq")),
        ):
            if any(e in suffixes for e in ends):
                return fmt
        raise DataError(
            f"data.format: cannot tell the format of {self.file} from its suffix; set csv, jsonl or parquet."
        )

    def _columns(self) -> list[str]:
        cols = [*self.text_columns, self.label_column]
        return cols + ([self.split_column] if self.split_column else [])

    def _check_columns(self, available: list[str]) -> None:
        if missing := [c for c in self._columns() if c not in available]:
            raise DataError(
                f"{self.file}: missing column(s) {missing} (from data.text_columns / data.label_column / "
                f"data.split_column); the file has {available}."
            )

    def read(self, files: list[Path]) -> RawExamples:
        raw = RawExamples()
        reader = {"csv": self._read_csv, "jsonl": self._read_jsonl, "parquet": self._read_parquet}[
            self.file_format
        ]
        for where, row in reader(raw):
            if any(isinstance(v, str) and _has_surrogates(v) for v in row.values()):
                raw.reject("undecodable", where)
                continue
            parts = [t.strip() for t in (_cell(row.get(c)) for c in self.text_columns) if t and t.strip()]
            label = _cell(row.get(self.label_column))
            split = _cell(row.get(self.split_column)) if self.split_column else None
            if self.split_column:
                split = split or ""  # a missing split value is reported when splitting
            raw.add(" ".join(parts) if parts else None, label.strip() if label else None, where, split)
        if self.split_column and raw.split is None:
            raw.split = []
        return raw

    def _read_csv(self, raw: RawExamples) -> Iterator[tuple[str, dict[str, Any]]]:
        delimiter = "\t" if self.file.suffix.lower() == ".tsv" else ","
        with open(self.file, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{self.file}: the file is empty (no header row).")
            self._check_columns(header)
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error:
                    raw.reject("malformed", f"{self.file.name} line {reader.line_num}")
                    continue
                if not fields:
                    continue  # blank line
                where = f"{self.file.name} line {reader.line_num}"
                if len(fields) != len(header):
                    raw.reject("malformed", f"{where} ({len(fields)} fields, header has {len(header)})")
                    continue
                yield where, dict(zip(header, fields))

    def _read_jsonl(self, raw: RawExamples) -> Iterator[tuple[str, dict[str, Any]]]:
        checked = False
        with open(self.file, "rb") as f:
            for lineno, line in enumerate(f, start=1):
                where = f"{self.file.name} line {lineno}"
                if not line.strip():
                    continue
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError:
                    raw.reject("undecodable", where)
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError:
                    raw.reject("malformed", where)
                    continue
                if not isinstance(row, dict):
                    raw.reject("malformed", f"{where} (not a JSON object)")
                    continue
                if not checked:
                    self._check_columns(list(row))
                    checked = True
                if any(c not in row for c in self._columns()):
                    raw.reject("malformed", f"{where} (missing keys)")
                    continue
                yield where, row

    def _read_parquet(self, raw: RawExamples) -> Iterator[tuple[str, dict[str, Any]]]:
        import pandas as pd

        try:
            df = pd.read_parquet(self.file)
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise DataError(f"{self.file}: not a readable Parquet file ({exc}).") from None
        self._check_columns(list(df.columns))
        for i, row in enumerate(df[self._columns()].to_dict("records"), start=1):
            yield f"{self.file.name} row {i}", row
