"""The claim: how workers on any number of machines start exactly the budgeted number of trials.

A worker takes the study's `ClaimLock`, fails the trials of dead workers, counts finished and running
trials, and either stops (budget, target or deadline reached), waits (the rest of the budget runs
elsewhere) or creates its trial while still holding the lock.
"""

from __future__ import annotations

import math
import time
from typing import Any

from experiments.core.errors import EcomlabError
from experiments.sweep.file import Sweep
from experiments.sweep.space import grid_space

FINISHED = ("COMPLETE", "PRUNED")


class ClaimLock:
    """The lock a worker holds from "count the study's trials" until its new trial is RUNNING in
    storage, so that workers on any number of machines start no more trials than the budget.

    It lives in the storage itself: a PostgreSQL advisory lock or a MySQL/MariaDB named lock, held
    by one database session (the server drops it when that session ends, so a killed worker cannot
    keep it). An SQLite storage is one file on one machine's disk: there the lock is an OS file lock
    beside that file (`optuna.db.claim`), the same kind of lock SQLite itself relies on, so every
    process that can open the database shares it whatever its working directory.

    Why it cannot overshoot: every claimer counts finished + running trials and creates its trial
    under the lock, and the trial is committed as RUNNING before the lock is released, so the next
    holder counts it; a trial that fails gives its slot back.
    """

    def __init__(self, rdb: Any, study_name: str) -> None:
        import hashlib

        self.engine = rdb.engine
        self.dialect = self.engine.dialect.name
        self.name = f"ecomlab-claim:{study_name}"
        self.key = int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:8], "big", signed=True)
        self._held: Any = None

    def acquire(self) -> None:
        from sqlalchemy import text

        if self._held is not None:
            return
        if self.dialect == "sqlite":
            import fcntl

            db = self.engine.url.database
            f = open(f"{db}.claim" if db and db != ":memory:" else "/dev/null", "a")
            fcntl.flock(f, fcntl.LOCK_EX)
            self._held = f
            return
        conn = self.engine.connect()
        if self.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
        elif self.dialect in ("mysql", "mariadb"):
            got = conn.execute(text("SELECT GET_LOCK(:n, 600)"), {"n": self.name[:64]}).scalar()
            if got != 1:
                conn.close()
                raise EcomlabError(f"storage: could not take the study's claim lock {self.name} in 600 s.")
        else:
            conn.close()
            raise EcomlabError(
                f"storage: {self.dialect} has no lock ecomlab knows; use PostgreSQL, MySQL or SQLite."
            )
        conn.commit()  # session-level lock: it outlives the transaction, not the session
        self._held = conn

    def release(self) -> None:
        from sqlalchemy import text

        held, self._held = self._held, None
        if held is None:
            return
        if self.dialect == "sqlite":
            import fcntl

            fcntl.flock(held, fcntl.LOCK_UN)
            held.close()
            return
        try:
            if self.dialect == "postgresql":
                held.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            else:
                held.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": self.name[:64]})
            held.commit()
        except Exception:
            held.invalidate()  # drop the session (and with it the lock) rather than pool it
            raise
        finally:
            held.close()


def counts(study: Any) -> dict[str, int]:
    """How many trials of the study are in each state (`COMPLETE`, `PRUNED`, `RUNNING`, ...)."""
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def finished(study: Any) -> int:
    c = counts(study)
    return sum(c.get(s, 0) for s in FINISHED)


def effective_budget(sw: Sweep, n_trials: int | None = None) -> int | None:
    """Finished trials to reach; a grid has no more points than its size."""
    budget = n_trials or sw.spec.budget.n_trials
    if sw.spec.sampler.type == "grid":
        size = math.prod(len(v) for v in grid_space(sw.params).values())
        budget = min(budget, size) if budget else size
    return budget


def target_reached(study: Any, sw: Sweep) -> bool:
    """Whether a complete trial reached the single objective's `target` (W&B's metric.target)."""
    target = sw.objectives[0].target
    if target is None or sw.multi_objective:
        return False
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    maximize = sw.objectives[0].goal == "maximize"
    return any(t.value is not None and (t.value >= target if maximize else t.value <= target) for t in done)


def next_order(study: Any, sw: Sweep, budget: int | None, deadline: float | None, claim: ClaimLock) -> str:
    """Under the claim lock: "stop" (budget, target or time reached), "wait" (the rest of the budget is
    running elsewhere) or "run" (and the lock stays held until the new trial is RUNNING)."""
    import optuna

    if deadline is not None and time.time() >= deadline:
        return "stop"
    claim.acquire()
    optuna.storages.fail_stale_trials(study)  # a dead worker's trial: FAIL, and re-queued
    c = counts(study)
    done = sum(c.get(s, 0) for s in FINISHED)
    running = c.get("RUNNING", 0)
    order = "run"
    if budget is not None and done >= budget:
        order = "stop"
    elif target_reached(study, sw):  # W&B's metric.target: no new trial once one reached it
        order = "stop"
    elif budget is not None and done + running >= budget:
        order = "wait"
    if order != "run":
        claim.release()
    return order
