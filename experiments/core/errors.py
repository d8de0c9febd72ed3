"""Errors that the CLI prints as one paragraph instead of a traceback."""

from __future__ import annotations


class EcomlabError(Exception):
    """A problem the user can fix; its message names the file, key or row."""


class ConfigError(EcomlabError):
    """A config that does not validate; carries every problem at once."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = problems
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{len(problems)} config problem(s){where}:\n{lines}")


class DataError(EcomlabError):
    """A data set that cannot be read, or that is empty after cleaning."""


class AssetError(EcomlabError):
    """An asset that cannot be downloaded or fails its checksum."""


class RunRecordError(EcomlabError):
    """A run id that is invalid or has no record."""


class OutOfMemory(EcomlabError):
    """A run that cannot fit: its memory estimate is over what the device has, or training ran out
    of memory. In a sweep the trial ends PRUNED with the reason `oom` (a fact about the search space,
    not a crash to retry)."""
