"""Faust agents that validate, dedupe and aggregate the raw event stream."""
