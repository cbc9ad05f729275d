"""A package whose module is run as ``python -m mpmodule.squares N``."""
