"""Dagster wiring: thin assets, resources, partitions and schedules over the layers above."""
