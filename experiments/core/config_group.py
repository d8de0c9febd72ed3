"""The base of every config group: unknown keys are errors and assignments are validated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Group(BaseModel):
    """A group of config keys (`data`, `model`, `optim`, ...); one `Field(description=...)` per key
    doubles as its `ecomlab config` help text."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
