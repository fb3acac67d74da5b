"""GTPT network and its parts."""
from .gtpt import GTPT, build_model, check_keep_rates

__all__ = ["GTPT", "build_model", "check_keep_rates"]
