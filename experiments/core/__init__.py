"""The bottom layer: errors, assets, fingerprints, the token cache and the config-group base.

Nothing here imports any other part of ecomlab (an import-linter contract in pyproject.toml checks
it), so data sets, tasks, the runner and the CLI can all build on it without import circles.
"""
