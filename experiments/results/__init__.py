"""The results room: run records (`run_record`), W&B tracking (`tracking`), the Optuna storage
(`storage`), records every machine reads (`record_store`), how values look in every table
(`display`), and the one adapter to Optuna's private attributes (`optuna_private`)."""
