"""Datasets, metrics and reports. Uses the vision engine, never the store."""
