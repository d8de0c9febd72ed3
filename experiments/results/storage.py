"""The Optuna storage every study lives in: an RDB URL opened with heartbeats (so a killed worker's
trial is failed and retried), SQLite tuned for several processes, passwords kept out of everything
printed, and studies read back by name for `ecomlab study`, `compare` and `report`."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from experiments.core.errors import EcomlabError

DB_NAME = "optuna.db"
STORAGE_ENV = "ECOMLAB_STORAGE"  # what `--storage` sets: workers inherit it, never on a command line


def default_storage_url(runs_root: Path) -> str:
    """An SQLite file under the runs folder: embedded, and shared safely by one machine's workers."""
    runs_root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(runs_root / DB_NAME).resolve()}"


def storage(
    url: str,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retries: int | None = None,
) -> Any:
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
                kwargs = {
                    "heartbeat_interval": heartbeat_interval,
                    "grace_period": grace_period or 3 * heartbeat_interval,
                    "heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(max_retry=max_retries),
                }
            for attempt in range(5):
                try:
                    rdb = RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
                    break
                except Exception as exc:  # noqa: BLE001
                    # machines that open an empty database at the same moment race to create Optuna's
                    # tables; the loser sees a duplicate and finds the tables there on the next try
                    why = str(exc)
                    racing = any(
                        k in why
                        for k in (
                            "IntegrityError",
                            "UNIQUE constraint",
                            "duplicate key",
                            "already exists",
                            "Duplicate entry",
                        )
                    )
                    if not racing or attempt == 4:
                        raise
                    time.sleep(0.5 + attempt)
    except Exception as exc:  # sqlalchemy raises many kinds for a bad URL or an unreachable server
        raise EcomlabError(
            f"storage: cannot open Optuna storage {redact(url)}: {str(exc).splitlines()[0]}"
        ) from None
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url.startswith("sqlite") and ":memory:" not in url:
        write_ahead_log(rdb.engine)
    return rdb


def write_ahead_log(engine: Any) -> None:
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


def redact(url: str) -> str:
    """Hide a password in a database URL before it is printed."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


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
        raise EcomlabError(f"No study named {name!r} in {redact(url)}.{hint}")
    return optuna.load_study(study_name=name, storage=st)
