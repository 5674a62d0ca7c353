"""The SQL models, shipped inside the wheel as `kpi_pipeline.dbt_like_sql` (see setup.py)."""
