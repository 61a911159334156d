"""Experiment runners: the demo, evaluator-filtered chaining on an LM, and the
mode-collapse study. They load data or models and write results; the CLI calls them."""
