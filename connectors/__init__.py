"""Relay fetchers (finder, monitor, synchronizer) and the PostgreSQL sink: the pipeline's edges."""
