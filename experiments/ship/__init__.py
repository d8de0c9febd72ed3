"""The ship room: `ecomlab export` (`export`), an exported folder read back by `load_model`
(`predictor`), and the REST service (`serve`)."""
