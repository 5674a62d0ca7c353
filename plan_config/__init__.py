"""Example plans, shipped inside the wheel as `kpi_pipeline.plan_config` (see setup.py)."""
