"""ecomlab's runner, one subpackage a role, each layer importing only the ones below it
(`lint-imports` checks the contracts in pyproject.toml):

    cli/        the `ecomlab` command line, one module a command group
    sweep/ | ship/ | analysis/
                Optuna studies from sweep files | export, `load_model`, serve | compare, report,
                dashboard, anomaly
    run/        `train(cfg)` and what it composes: one run, folds, the teacher, pruning, the
                baseline, reproduce
    results/    run records, W&B tracking, the Optuna storage, records every machine reads
    config/     the typed config, experiment ids, the registries of data sets, tasks and knobs
    (lightning_modules/ | datamodules/: tasks | data sets, outside this package)
    core/       errors, assets, fingerprints, the token cache, the config-group and knob bases

The public Python API is the `ecomlab` package (`ecomlab.train`, `ecomlab.load_config`,
`ecomlab.load_model`, `ecomlab.reproduce`).
"""
