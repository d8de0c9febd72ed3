"""ecomlab's public Python API: the same functions the `ecomlab` command line calls.

    import ecomlab

    cfg = ecomlab.load_config("configs/womens_clothing_reviews.yaml", ["optim.lr=3e-5"])
    metrics = ecomlab.train(cfg)                 # a run record under runs/<experiment id>/
    ecomlab.reproduce(ecomlab.experiment_id(cfg))  # re-run it and compare metrics and weights
    model = ecomlab.load_model("exports/<id>")   # what `ecomlab export` wrote
    model.predict([{"text": "Runs small, lovely fabric"}])

Importing it is light (pydantic and yaml); torch and Lightning load when a run starts.
"""

from __future__ import annotations

from experiments.config.files import load_config
from experiments.config.ids import experiment_id
from experiments.config.schema import ExperimentConfig, validate
from experiments.run.reproduce import Reproduction, reproduce
from experiments.run.train import train
from experiments.ship.predictor import Predictor, load_model

__all__ = [
    "ExperimentConfig",
    "Predictor",
    "Reproduction",
    "experiment_id",
    "load_config",
    "load_model",
    "reproduce",
    "train",
    "validate",
]
