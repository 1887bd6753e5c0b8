"""Relay fetchers (finder, monitor, synchronizer) and the PostgreSQL sink: the edges of the pipeline."""
