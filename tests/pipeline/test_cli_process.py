"""The `kpi-pipeline` process tunes its garbage collector; `cli.main()` in another program
does not (cli/process.py)."""

from __future__ import annotations

import gc
import importlib.metadata
import subprocess
import sys
import textwrap
from pathlib import Path

from kpi_pipeline.cli import main
from kpi_pipeline.cli.process import GC_THRESHOLDS

DEMO_PLAN = Path(__file__).resolve().parents[2] / "plan_config" / "demo.yaml"


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_console_script_and_python_m_run_the_tuned_entry():
    (script,) = importlib.metadata.entry_points(group="console_scripts", name="kpi-pipeline")
    assert script.value == "kpi_pipeline.cli:entry"
    main_module = Path(__file__).resolve().parents[2] / "kpi_pipeline" / "cli" / "__main__.py"
    assert "entry()" in main_module.read_text()


def test_main_called_in_another_program_leaves_its_collector_alone():
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    assert main(["validate", str(DEMO_PLAN)]) == 0
    assert (gc.get_threshold(), gc.get_freeze_count()) == (thresholds, frozen)


def test_the_command_process_collects_less_often_and_freezes_at_its_end():
    result = _python(
        """
        import gc
        from kpi_pipeline.cli import entry
        import kpi_pipeline.cli as cli

        seen = {}
        def command(argv=None):
            seen["threshold"] = gc.get_threshold()
            seen["frozen"] = gc.get_freeze_count()
            return 3
        cli.main = command
        code = entry()
        print(code, seen["threshold"], seen["frozen"], gc.get_freeze_count() > 0)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(maxsplit=1)[0] == "3"  # the command's exit code
    assert result.stdout.strip().endswith(f"{GC_THRESHOLDS} 0 True")


def test_garbage_left_in_a_cycle_is_still_finalized_before_the_process_exits(tmp_path):
    """The final collection runs the finalizers of cyclic garbage (a connection's close, a
    writer's flush), which the freeze would otherwise keep from running at exit."""
    out = tmp_path / "finalized.txt"
    result = _python(
        f"""
        from pathlib import Path

        from kpi_pipeline.cli.process import command_process

        class Holder:
            def __del__(self):
                Path({str(out)!r}).write_text("finalized")

        with command_process():
            holder = Holder()
            holder.me = holder  # a cycle: only the collector frees it
            del holder
        """
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "finalized"


def test_a_run_imports_the_ga4_client_only_for_a_plan_that_reads_ga4():
    """The GA4 API types and gRPC client (≈ 0.2 s) load when a request is built or a client
    opens, not with the Dagster definitions every run builds."""
    result = _python(
        f"""
        import sys

        from kpi_pipeline.definitions import build_definitions
        import kpi_pipeline.runs

        build_definitions({str(DEMO_PLAN)!r}, warehouse_url="duckdb:///:memory:")
        print(sorted(m for m in ("proto", "grpc._channel", "google.analytics.data_v1beta")
                     if m in sys.modules))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
