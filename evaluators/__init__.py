"""Retraining and scorers. Each module registers itself by name."""
