"""`python -m experiments.cli ...`: the same as `ecomlab ...`."""

from experiments.cli import main

main()
