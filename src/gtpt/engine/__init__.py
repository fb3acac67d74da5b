"""Training and evaluation engine: loss, metrics, loops."""
