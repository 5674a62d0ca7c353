"""The garbage collector of a `kpi-pipeline` process: set for a command that runs, then exits.

CPython's default thresholds (700, 10, 10) suit a long-lived program. A one-day run imports
Dagster, pandas, Great Expectations and matplotlib and builds their objects (millions of
containers that live until exit): with the defaults it ran about 1,400 collections, the
full ones walking every imported module's objects again (≈ 1.3 s of a ≈ 9 s run), and the
interpreter walked them all once more at exit (≈ 1.2 s). Measured with
`bench/fixed_overhead.py`; figures in the README ("Fixed overhead of a one-day run").

Only the command's own process is tuned (`kpi-pipeline`, `python -m kpi_pipeline.cli`):
`cli.main()` called inside another program (tests, a notebook) leaves its collector alone.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# A young-generation collection every 20,000 net container allocations instead of 700:
# cycles are still found within a step, a full collection comes 29× less often. Peak RSS
# of the demo run is unchanged (≈ 0.5 GB either way).
GC_THRESHOLDS = (20_000, 10, 10)


@contextmanager
def command_process() -> Iterator[None]:
    """Collect less often while the command runs; at its end, collect once (the finalizers
    of garbage held in cycles still run: a connection closed, a temporary folder removed),
    then freeze what is left so the interpreter's exit frees it without walking it again."""
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.collect()
        gc.freeze()
