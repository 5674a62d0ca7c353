from kpi_pipeline.cli import entry

raise SystemExit(entry())
