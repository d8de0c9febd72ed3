"""Optuna plumbing: the storage (with heartbeats, so a killed worker's trial is failed and retried),
samplers, pruners, and reading studies back for `ecomlab study`."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from experiments.core.errors import EcomlabError
from experiments.sweep_config import Sweep

DB_NAME = "optuna.db"


def default_storage_url(runs_root: Path) -> str:
    """An SQLite file under the runs folder: embedded, and shared safely by one machine's workers."""
    runs_root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(runs_root / DB_NAME).resolve()}"


def storage(url: str, heartbeat_interval: int | None = None, grace_period: int | None = None,
            max_retries: int | None = None) -> Any:  # fmt: skip
    """Optuna RDB storage. With a heartbeat, trials of dead workers are marked FAIL after the grace
    period and re-queued (up to `max_retries` times) by RetryHeartbeatStaleTrialCallback."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # several worker processes write to one file: wait for the lock instead of failing at once
        engine_kwargs = {"connect_args": {"timeout": 60}}
    kwargs: dict[str, Any] = {}
    try:
        with warnings.catch_warnings():  # heartbeats are marked experimental in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if heartbeat_interval:
                kwargs = {"heartbeat_interval": heartbeat_interval,
                          "grace_period": grace_period or 3 * heartbeat_interval,
                          "heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(max_retry=max_retries)}  # fmt: skip
            for attempt in range(5):
                try:
                    rdb = RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
                    break
                except Exception as exc:  # noqa: BLE001
                    # machines that open an empty database at the same moment race to create Optuna's
                    # tables; the loser sees a duplicate and finds the tables there on the next try
                    why = str(exc)
                    racing = any(k in why for k in ("IntegrityError", "UNIQUE constraint", "duplicate key",
                                                    "already exists", "Duplicate entry"))  # fmt: skip
                    if not racing or attempt == 4:
                        raise
                    time.sleep(0.5 + attempt)
    except Exception as exc:  # sqlalchemy raises many kinds for a bad URL or an unreachable server
        raise EcomlabError(
            f"storage: cannot open Optuna storage {_redact(url)}: {str(exc).splitlines()[0]}"
        ) from None
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url.startswith("sqlite") and ":memory:" not in url:
        _write_ahead_log(rdb.engine)
    return rdb


STORAGE_ENV = "ECOMLAB_STORAGE"


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


def _write_ahead_log(engine: Any) -> None:
    """SQLite in write-ahead-log mode with synchronous=NORMAL: readers (the live view, other workers)
    no longer block the writer, and a commit appends to the log instead of syncing the database
    file, which cuts the storage's share of every trial. A killed process loses nothing it committed;
    only a power cut or an OS crash may drop the last commits, and the file stays consistent."""
    from sqlalchemy import event

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # kept in the file; a no-op once set
        cursor.execute("PRAGMA synchronous=NORMAL")  # per connection
        cursor.close()

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened while RDBStorage set up the schema get the pragmas too


def _redact(url: str) -> str:
    """Hide a password in a database URL before it is printed."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def sampler(sw: Sweep) -> Any:
    import optuna

    kw: dict[str, Any] = {"seed": sw.sampler_seed}
    if sw.sampler == "tpe":
        if sw.sampler_startup is not None:
            kw["n_startup_trials"] = sw.sampler_startup
        return optuna.samplers.TPESampler(multivariate=True, **kw)
    if sw.sampler == "random":
        return optuna.samplers.RandomSampler(**kw)
    if sw.sampler == "gp":
        if sw.sampler_startup is not None:
            kw["n_startup_trials"] = sw.sampler_startup
        return optuna.samplers.GPSampler(**kw)
    if sw.sampler == "cmaes":
        if sw.sampler_startup is not None:
            kw["n_startup_trials"] = sw.sampler_startup
        return optuna.samplers.CmaEsSampler(**kw)
    if sw.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(**kw)
    if sw.sampler == "grid":
        return optuna.samplers.GridSampler(grid_space(sw), seed=sw.sampler_seed)
    raise AssertionError(sw.sampler)


def grid_space(sw: Sweep) -> dict[str, list[Any]]:
    space: dict[str, list[Any]] = {}
    for p in sw.params:
        if p.kind == "categorical":
            space[p.path] = list(p.choices)
        elif p.kind in ("int", "float"):
            step = p.step or 1
            n = int(round((p.high - p.low) / step)) + 1  # type: ignore[operator]
            vals = [p.low + i * step for i in range(n)]  # type: ignore[operator]
            space[p.path] = [int(v) if p.kind == "int" else float(v) for v in vals]
    return space


def pruner(sw: Sweep, max_epochs: int) -> Any:
    """The sweep's Optuna pruner; `max_epochs` is the most reports a trial makes (its epochs, or its
    folds under `eval.folds`), Hyperband's max_resource when the file says `auto`."""
    import optuna

    pr = sw.pruner
    if sw.pruner_type == "hyperband":
        max_resource = max_epochs if pr.max_resource == "auto" else pr.max_resource
        return optuna.pruners.HyperbandPruner(min_resource=pr.min_resource, max_resource=max_resource,
                                              reduction_factor=pr.reduction_factor)  # fmt: skip
    if sw.pruner_type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=pr.n_startup_trials, n_warmup_steps=pr.n_warmup_steps
        )
    if sw.pruner_type == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=pr.min_resource,
                                                      reduction_factor=pr.reduction_factor)  # fmt: skip
    return optuna.pruners.NopPruner()


def suggest(trial: Any, sw: Sweep) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for p in sw.params:
        if p.kind == "float":
            values[p.path] = trial.suggest_float(p.path, p.low, p.high, log=p.log, step=p.step)
        elif p.kind == "int":
            values[p.path] = trial.suggest_int(
                p.path, int(p.low), int(p.high), step=int(p.step or 1), log=p.log
            )  # type: ignore[arg-type]
        elif p.kind == "categorical":
            values[p.path] = trial.suggest_categorical(p.path, list(p.choices))
    return values


def load_study(name: str, url: str) -> Any:
    import optuna

    st = storage(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(st, include_best_trial=False)]
    if name not in names:
        import difflib

        close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = (
            f" Close matches: {', '.join(close)}."
            if close
            else f" Studies here: {', '.join(names) or 'none'}."
        )
        raise EcomlabError(f"No study named {name!r} in {_redact(url)}.{hint}")
    return optuna.load_study(study_name=name, storage=st)
