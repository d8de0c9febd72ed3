"""The config room: the typed experiment config (`schema`), experiment ids (`ids`), the registries of
data sets, tasks and knobs (`registry`) and config files with `--set` overrides (`files`).

The public names are re-exported here; code inside ecomlab imports them from their modules.
"""

from experiments.config.files import apply_overrides, load_config, load_yaml, set_values
from experiments.config.ids import experiment_id
from experiments.config.schema import ExperimentConfig, TrackingConfig, field_help, resolved, validate

__all__ = [
    "ExperimentConfig",
    "TrackingConfig",
    "apply_overrides",
    "experiment_id",
    "field_help",
    "load_config",
    "load_yaml",
    "resolved",
    "set_values",
    "validate",
]
