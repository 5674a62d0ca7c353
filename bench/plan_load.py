"""Hostile plan files: time and peak memory of `load_plan` refusing each one.

    .venv/bin/python bench/plan_load.py              # libyaml parser (the default)
    .venv/bin/python bench/plan_load.py --python     # PyYAML's pure-Python parser (fallback)

Each case is written to a scratch folder and loaded in a fresh process (capped at 2 GB of
address space and 60 s, so a regression cannot take the machine down), which reports the load's
wall time, its peak RSS and the first line of the outcome. Prints a markdown table. Not a test:
the tests in tests/plan/test_hostile_plans.py check the messages; this shows the cost.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

BASE = """\
organization: Bench Outfitters
mission: Refuse hostile plans quickly.
timezone: UTC
currency: EUR
history_start: 2025-01-01
sources:
  csv_exports:
    - id: web
      path: exports/*.csv
objectives:
  - id: sell_more
    title: Sell more
    priority: 1
    deadline: 2026-12-31
    kpis:
      - id: conversion
        label: Conversion rate
        kind: conversion_rate
        baseline: {value: 0.02, as_of: 2025-06-01}
        target: {value: 0.03, by: 2026-12-31}
"""

MISSION = "mission: Refuse hostile plans quickly.\n"


def _with_mission(value: str) -> str:
    return BASE.replace(MISSION, f"mission: {value}\n")


def alias_bomb() -> str:
    # "Billion laughs": 9 ** 10 strings from a 1 KB file.
    lines = ['lol0: &lol0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]" for i in range(1, 11)]
    return "\n".join(lines) + "\n" + BASE


def self_alias() -> str:
    return BASE.replace("sources:\n", "sources: &loop\n  again: *loop\n")


def alias_chain_depth() -> str:
    # Each anchor is 10 levels deep and holds the previous one: 100 levels once expanded.
    lines = ["l0: &l0 x"]
    lines += [f"l{i}: &l{i} {'[' * 10}*l{i - 1}{']' * 10}" for i in range(1, 11)]
    return "\n".join(lines) + "\n" + BASE


def deep_flow() -> str:
    return _with_mission("[" * 10_000 + "]" * 10_000)


def deep_block() -> str:
    return BASE.replace(MISSION, "mission:\n  " + "- " * 10_000 + "x\n")


def deep_1mb() -> str:
    return _with_mission("[" * 499_000 + "]" * 499_000)


def fifty_mb() -> str:
    return BASE + ("# " + "x" * 98 + "\n") * 500_000


def unknown_tag() -> str:
    return BASE.replace(
        "organization: Bench Outfitters", "organization: !!python/name:os.system ''"
    )


def huge_priority() -> str:
    return BASE.replace("priority: 1", "priority: 100000000000000000000000000000")


def infinite_target() -> str:
    return BASE.replace("value: 0.03", "value: .inf")


def long_number() -> str:
    # A YAML 1.1 base-60 integer: converting it is quadratic in its length.
    return BASE.replace("priority: 1", "priority: " + ":".join(["59"] * 300_000))


def wide_list() -> str:
    return _with_mission("[" + "1," * 480_000 + "1]")


def many_keys() -> str:
    keys = "".join(f"  k{i:06d}: 1\n" for i in range(49_000))
    return BASE.replace("sources:\n", f"extra:\n{keys}sources:\n")


def long_string() -> str:
    return _with_mission('"' + "x" * 990_000 + '"')


def many_comments() -> str:
    return BASE + ("# " + "x" * 98 + "\n") * 9_800


CASES: list[tuple[str, Callable[[], str]]] = [
    ("valid plan (control)", lambda: BASE),
    ("alias bomb, 9^10 strings", alias_bomb),
    ("self-referencing alias", self_alias),
    ("alias chain, 100 levels expanded", alias_chain_depth),
    ("10,000 nested flow lists", deep_flow),
    ("10,000 nested block lists", deep_block),
    ("499,000 nested flow lists (1 MB)", deep_1mb),
    ("50 MB plan", fifty_mb),
    ("unknown tag !!python/name", unknown_tag),
    ("priority: 10**29", huge_priority),
    ("target value: .inf", infinite_target),
    ("900 KB base-60 number", long_number),
    ("1 MB flow list, 480,000 values", wide_list),
    ("49,000 unknown keys (error flood)", many_keys),
    ("990 KB string (valid)", long_string),
    ("990 KB of comments (valid)", many_comments),
]

CHILD = """
import json, resource, sys, time
from kpi_pipeline.plan import loader
from kpi_pipeline.plan.loader import PlanError, load_plan
if sys.argv[2] == "python":
    loader._Composer = loader._PythonComposer
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    loaded = load_plan(sys.argv[1])
    outcome = f"valid: {loaded.plan.organization}"
except PlanError as exc:
    issues = exc.issues
    more = f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""
    outcome = str(issues[0]).split(": ", 1)[1] + more
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "before_kb": before, "peak_kb": peak, "outcome": outcome}))
"""


def _limit_child() -> None:
    two_gb = 2 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (two_gb, two_gb))


def run_case(plan_file: Path, parser: str) -> dict[str, object]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(plan_file), parser],
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=_limit_child,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": None, "outcome": "TIMEOUT after 60 s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"seconds": None, "outcome": f"CRASH (exit {done.returncode}): {last}"}
    return json.loads(done.stdout.splitlines()[-1])


def main() -> int:
    parser = "python" if "--python" in sys.argv[1:] else "default"
    rows = ["| case | file | seconds | peak RSS (MB) | outcome |", "|---|---:|---:|---:|---|"]
    baseline = None
    with tempfile.TemporaryDirectory(prefix="plan_bench_") as folder:
        for name, make in CASES:
            plan_file = Path(folder) / "plan.yaml"
            plan_file.write_text(make(), encoding="utf-8")
            size = plan_file.stat().st_size
            shown = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} KB"
            result = run_case(plan_file, parser)
            if result["seconds"] is None:
                rows.append(f"| {name} | {shown} | - | - | {result['outcome']} |")
                continue
            baseline = baseline or result["before_kb"] / 1024
            outcome = str(result["outcome"]).replace("|", "\\|")
            if len(outcome) > 110:
                outcome = outcome[:107] + "..."
            rows.append(
                f"| {name} | {shown} | {result['seconds']:.3f} | "
                f"{result['peak_kb'] / 1024:.0f} | {outcome} |"
            )
    print("\n".join(rows))
    if baseline:
        print(
            f"\nPeak RSS includes the interpreter and imports (~{baseline:.0f} MB before loading)."
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
