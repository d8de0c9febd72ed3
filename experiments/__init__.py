"""ecomlab's runner: typed config, assets, the `train(cfg)` entry, run records, tracking and the CLI."""
