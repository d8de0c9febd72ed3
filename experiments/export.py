"""Kept for exported model cards written before the `ecomlab` package existed, which print
`from experiments.export import load_model`; new code uses `ecomlab.load_model`."""

from experiments.ship.predictor import Predictor, load_model

__all__ = ["Predictor", "load_model"]
