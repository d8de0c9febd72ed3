"""The knobs of a model's training, one module each: its keys, its documentation line, the tasks it
applies to and its hook into the training step (see `experiments.core.knob`).

Torch-free (pydantic only), so the config and `ecomlab config` read them without importing torch;
a hook imports its torch implementation (`lightning_modules/adversarial.py`, `distillation.py`,
`optimization.py`) when a run attaches it. The registry `experiments.config.registry.KNOBS` lists them.
"""
