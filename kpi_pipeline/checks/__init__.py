"""Data-quality checks: suites declared as data (`suites.py`), run by Great Expectations
(`gx_runner.py`) against the warehouse, recorded in `marts.check_results` (`results.py`)."""
