from kpi_pipeline.cli import main

raise SystemExit(main())
