"""Hostile plan files: each is refused with one located error, never a traceback.

Alias bombs, recursive aliases, deep nesting, huge files, unknown tags and numbers the warehouse
cannot hold. Every case asserts the exact `file:line: path: message` issues and that the
failure is a `PlanError`. Times are not asserted: inputs are sized so that a slow path would
be obvious (an expanded alias bomb, a 50 MB parse, a quadratic number conversion take tens of
seconds or exhaust memory); `bench/plan_load.py` measures time and peak memory of each case.

Parsing cases run on both YAML back ends: libyaml (the default when PyYAML has it) and the
pure-Python parser (the fallback).
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import yaml
from pydantic import Field, ValidationError

from kpi_pipeline.plan import loader
from kpi_pipeline.plan.base import FLOAT_LIMIT, INT_MAX, INT_MIN, StrictModel
from kpi_pipeline.plan.loader import (
    MAX_DEPTH,
    MAX_NUMBER_CHARS,
    MAX_PLAN_BYTES,
    MAX_VALUES,
    LoadedPlan,
    PlanError,
    load_plan,
)

REPO = Path(__file__).resolve().parents[2]

# A small valid plan, independent of the demo plan (which others edit).
BASE = """\
organization: Hostile Tests Ltd
mission: Refuse hostile plans.
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
        min_denominator: 100
"""
MISSION = "mission: Refuse hostile plans.\n"

TAGS_HINT = (
    "a plan may only use the standard tags !!str, !!int, !!float, !!bool, !!null, "
    "!!timestamp on values, !!seq on lists and !!map on mappings"
)
INT_RANGE = "(32-bit: -2147483648 to 2147483647)"


def edit(text: str, old: str, new: str) -> str:
    """Replace `old` by `new`, insisting that `old` occurs exactly once."""
    assert text.count(old) == 1, f"edit must match exactly once: {old!r}"
    return text.replace(old, new)


def line_of(text: str, needle: str) -> int:
    """1-based line on which `needle` starts; `needle` must occur exactly once."""
    assert text.count(needle) == 1, f"anchor must occur exactly once: {needle!r}"
    return text[: text.index(needle)].count("\n") + 1


def write(tmp_path: Path, text: str) -> Path:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(text, encoding="utf-8")
    return plan_file


def issues_of(plan_file: Path) -> list[str]:
    """The issues `load_plan` reports, as printed; anything but a PlanError fails the test."""
    with pytest.raises(PlanError) as caught:
        load_plan(plan_file)
    return [str(issue) for issue in caught.value.issues]


def located(plan_file: Path, line: int, path: str, message: str) -> str:
    where = f"{plan_file}:{line}"
    return f"{where}: {path}: {message}" if path else f"{where}: {message}"


BACKENDS = ["python"]
if hasattr(loader, "_LibyamlComposer"):
    BACKENDS.insert(0, "libyaml")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on each YAML back end."""
    if request.param == "python":
        monkeypatch.setattr(loader, "_Composer", loader._PythonComposer)
    return request.param


def test_base_plan_loads(tmp_path: Path, backend: str):
    """Control: the cases fail because of their edits, not because of the base plan."""
    loaded = load_plan(write(tmp_path, BASE))
    assert isinstance(loaded, LoadedPlan)
    assert loaded.plan.objectives[0].priority == 1


def test_backends_compose_the_same_nodes():
    if "libyaml" not in BACKENDS:
        pytest.skip("PyYAML without libyaml")
    document = BASE + (
        "# comments, anchors, styles and tags\n"
        "extra: &extra\n"
        "  plain: text without colons\n"
        "  quoted: ['single', \"double \\u00e9\", 'it''s']\n"
        "  folded: >-\n    two\n    lines\n"
        "  literal: |\n    kept\n    lines\n"
        "  numbers: [1, -2, 0x1F, 0o17, 1_000, 1.5, -.inf, .nan, 1:30]\n"
        "  others: [yes, No, null, ~, 2025-01-01, 2025-01-01T10:00:00Z, !!str 12]\n"
        "  ? complex key\n"
        "  : value\n"
        "again: *extra\n"
    )

    def shape(node: yaml.Node):
        mark = (node.start_mark.line, node.start_mark.column)
        if isinstance(node, loader._AliasNode):
            return ("alias", node.name, mark, shape(node.value))
        if isinstance(node, yaml.ScalarNode):
            return (node.tag, node.value, mark)
        if isinstance(node, yaml.SequenceNode):
            return (node.tag, mark, [shape(item) for item in node.value])
        return (node.tag, mark, [(shape(k), shape(v)) for k, v in node.value])

    fast = loader._LibyamlComposer(document)
    slow = loader._PythonComposer(document)
    assert shape(fast.get_single_node()) == shape(slow.get_single_node())
    assert sorted(fast.plan_explicit_tags.values()) == ["tag:yaml.org,2002:str"]
    assert sorted(slow.plan_explicit_tags.values()) == ["tag:yaml.org,2002:str"]


# ---- Size: refused before parsing ----


def test_fifty_megabyte_plan_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    plan_file = tmp_path / "plan.yaml"
    with plan_file.open("wb") as handle:
        handle.truncate(50_000_000)  # sparse: 50 MB of NUL bytes, instantly
    monkeypatch.setattr(loader, "_parse_yaml", lambda *_: pytest.fail("parsed a 50 MB plan"))
    assert issues_of(plan_file) == [
        located(
            plan_file,
            1,
            "",
            "the plan is 50 MB, more than the 1 MB limit (a plan is a few KB: is this the "
            "right file?)",
        )
    ]


def test_plan_just_over_the_limit_is_refused(tmp_path: Path):
    padding = "#" * 99 + "\n"
    text = BASE + padding * ((MAX_PLAN_BYTES - len(BASE)) // len(padding) + 1)
    assert MAX_PLAN_BYTES < len(text) < MAX_PLAN_BYTES + 100
    plan_file = write(tmp_path, text)
    assert issues_of(plan_file) == [
        located(
            plan_file,
            1,
            "",
            "the plan is 1.1 MB, more than the 1 MB limit (a plan is a few KB: is this the "
            "right file?)",
        )
    ]


def test_plan_at_the_limit_loads(tmp_path: Path):
    text = BASE + "#" * (MAX_PLAN_BYTES - len(BASE) - 1) + "\n"
    assert len(text.encode()) == MAX_PLAN_BYTES
    assert isinstance(load_plan(write(tmp_path, text)), LoadedPlan)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_endless_special_file_is_read_only_up_to_the_limit():
    assert issues_of(Path("/dev/zero")) == [
        "/dev/zero:1: the plan is over 1 MB, more than the 1 MB limit (a plan is a few KB: "
        "is this the right file?)"
    ]


# ---- Aliases: expansion budget, recursion ----


def billion_laughs(levels: int = 10) -> str:
    """9 ** levels strings from a 1 KB file (levels=10: 3.5 billion)."""
    lines = ['lol0: &lol0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n" + BASE


def test_alias_bomb_is_refused_at_the_alias(tmp_path: Path, backend: str):
    text = billion_laughs()
    plan_file = write(tmp_path, text)
    # lol0..lol4 expand to 74,733 values: the first *lol4 of lol5 crosses the budget.
    assert issues_of(plan_file) == [
        located(
            plan_file,
            line_of(text, "lol5: "),
            "lol5[0]",
            "alias *lol4 expands the plan past 100,000 values (aliases must not multiply the plan)",
        )
    ]


def test_alias_bomb_stays_in_bounded_memory(tmp_path: Path):
    plan_file = write(tmp_path, billion_laughs())
    tracemalloc.start()
    try:
        with pytest.raises(PlanError):
            load_plan(plan_file)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # ~17 MB: the budget's 100,000 values, not billions.
    assert peak < 64_000_000


def test_aliases_within_the_budget_are_expanded(tmp_path: Path, backend: str):
    text = edit(
        BASE,
        "        baseline: {value: 0.02, as_of: 2025-06-01}\n",
        "        baseline: &start {value: 0.02, as_of: 2025-06-01}\n",
    )
    text += "  - id: sell_more_again\n    title: Again\n    priority: 2\n"
    text += "    deadline: 2026-12-31\n    kpis:\n      - id: conversion_again\n"
    text += "        label: Again\n        kind: conversion_rate\n        baseline: *start\n"
    text += "        target: {value: 0.04, by: 2026-12-31}\n"
    plan = load_plan(write(tmp_path, text)).plan
    assert plan.objectives[1].kpis[0].baseline == plan.objectives[0].kpis[0].baseline


@pytest.mark.parametrize(
    ("old", "new", "at"),
    [
        pytest.param(
            "sources:\n",
            "sources: &loop\n  again: *loop\n",
            "*loop",
            id="mapping-holds-itself",
        ),
        pytest.param(
            MISSION,
            "mission: &loop [a, *loop]\n",
            "mission",
            id="list-holds-itself",
        ),
        pytest.param(
            MISSION,
            "mission: &loop\n  - a: [{b: *loop}]\n",
            "  - a: [{b: *loop",
            id="deeply-inside-itself",
        ),
    ],
)
def test_self_referencing_alias_is_refused_at_the_alias(
    tmp_path: Path, backend: str, old: str, new: str, at: str
):
    text = edit(BASE, old, new)
    plan_file = write(tmp_path, text)
    assert issues_of(plan_file) == [
        located(
            plan_file,
            line_of(text, at),
            "",
            "alias *loop is used inside the value it names (a recursive alias would be infinite)",
        )
    ]


def test_alias_chain_nesting_too_deep_is_refused_at_the_alias(tmp_path: Path, backend: str):
    # Each anchor is 10 levels deep and holds the previous one: 100 levels once expanded.
    lines = ["l0: &l0 x"] + [f"l{i}: &l{i} {'[' * 10}*l{i - 1}{']' * 10}" for i in range(1, 11)]
    text = "\n".join(lines) + "\n" + BASE
    plan_file = write(tmp_path, text)
    # l7 holds 70 levels of lists, in the root mapping.
    assert issues_of(plan_file) == [
        located(
            plan_file,
            line_of(text, "l7: "),
            "l7" + "[0]" * 10,
            "alias *l6 nests the plan deeper than 64 levels",
        )
    ]


def test_too_many_values_are_refused(tmp_path: Path, backend: str):
    text = edit(BASE, MISSION, "mission: [" + "1, " * 150_000 + "1]\n")
    plan_file = write(tmp_path, text)
    assert len(text) < MAX_PLAN_BYTES
    assert issues_of(plan_file) == [
        located(plan_file, line_of(text, "mission:"), "", "the plan has more than 100,000 values")
    ]


# ---- Nesting depth ----


@pytest.mark.parametrize(
    "nesting",
    [
        pytest.param("mission: " + "[" * 10_000 + "]" * 10_000 + "\n", id="flow-lists"),
        pytest.param("mission: " + "{a: " * 10_000 + "x" + "}" * 10_000 + "\n", id="flow-maps"),
        pytest.param("mission:\n  " + "- " * 10_000 + "x\n", id="block-lists"),
    ],
)
def test_ten_thousand_levels_are_refused(tmp_path: Path, backend: str, nesting: str):
    text = edit(BASE, MISSION, nesting)
    plan_file = write(tmp_path, text)
    line = line_of(text, "mission:") + nesting.count("\n") - 1
    assert issues_of(plan_file) == [located(plan_file, line, "", "nested deeper than 64 levels")]


def test_nesting_deeper_on_many_lines_is_refused_where_it_gets_too_deep(
    tmp_path: Path, backend: str
):
    # One level per line: the 65th level (the mission list's 64th) is on its own line.
    nesting = "".join(f"{'  ' * (level + 1)}-\n" for level in range(100))
    text = edit(BASE, MISSION, "mission:\n" + nesting + "  " * 101 + "x\n")
    plan_file = write(tmp_path, text)
    line = line_of(text, "mission:") + MAX_DEPTH
    assert issues_of(plan_file) == [located(plan_file, line, "", "nested deeper than 64 levels")]


def test_nesting_at_the_limit_reaches_the_model(tmp_path: Path, backend: str):
    # The root mapping is level 1: 63 nested lists make 64 levels, accepted by the parser.
    text = edit(BASE, MISSION, "mission: " + "[" * 63 + "x" + "]" * 63 + "\n")
    plan_file = write(tmp_path, text)
    assert issues_of(plan_file) == [
        located(plan_file, line_of(text, "mission:"), "mission", "Input should be a valid string")
    ]
    text = edit(BASE, MISSION, "mission: " + "[" * 64 + "x" + "]" * 64 + "\n")
    plan_file = write(tmp_path, text)
    assert issues_of(plan_file) == [
        located(plan_file, line_of(text, "mission:"), "", "nested deeper than 64 levels")
    ]


def test_recursion_error_while_composing_is_a_located_error(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
):
    """Without the depth limit, PyYAML's composer recurses until Python's limit: the
    RecursionError must still become a located PlanError (and quickly)."""
    monkeypatch.setattr(loader, "MAX_DEPTH", 1_000_000)
    text = edit(BASE, MISSION, "mission:\n  " + "- " * 10_000 + "x\n")
    plan_file = write(tmp_path, text)
    assert issues_of(plan_file) == [
        located(plan_file, line_of(text, "mission:") + 1, "", "nested deeper than 1000000 levels")
    ]


# ---- Tags ----


@pytest.mark.parametrize(
    ("old", "new", "path", "tag"),
    [
        pytest.param(
            "organization: Hostile Tests Ltd",
            "organization: !!python/name:os.system ''",
            "organization",
            "!!python/name:os.system",
            id="python-name",
        ),
        pytest.param(
            MISSION,
            "mission: !!python/object/apply:os.system [echo hacked]\n",
            "mission",
            "!!python/object/apply:os.system",
            id="python-apply",
        ),
        pytest.param(
            "organization: Hostile Tests Ltd",
            "organization: !vault secret/organization",
            "organization",
            "!vault",
            id="local-tag",
        ),
        pytest.param(
            "organization: Hostile Tests Ltd",
            "organization: !!binary SG9zdGlsZQ==",
            "organization",
            "!!binary",
            id="binary",
        ),
        pytest.param(
            "  csv_exports:\n",
            "  csv_exports: !!set\n",
            "sources.csv_exports",
            "!!set",
            id="set",
        ),
        pytest.param(
            "    priority: 1\n",
            "    priority: !!seq 1\n",
            "objectives[0].priority",
            "!!seq",
            id="core-tag-on-wrong-kind",
        ),
        pytest.param(
            "organization: Hostile Tests Ltd",
            "!!python/name:os.system organization: Hostile Tests Ltd",
            "",
            "!!python/name:os.system",
            id="tag-on-a-key",
        ),
    ],
)
def test_unknown_tag_is_refused(
    tmp_path: Path, backend: str, old: str, new: str, path: str, tag: str
):
    text = edit(BASE, old, new)
    plan_file = write(tmp_path, text)
    assert issues_of(plan_file) == [
        located(plan_file, line_of(text, tag), path, f"YAML tag {tag} is not allowed: {TAGS_HINT}")
    ]


def test_every_unknown_tag_is_reported(tmp_path: Path, backend: str):
    text = edit(BASE, "organization: Hostile Tests Ltd", "organization: !!python/name:os.system")
    text = edit(text, MISSION, "mission: !include mission.txt\n")
    plan_file = write(tmp_path, text)
    assert issues_of(plan_file) == [
        located(
            plan_file,
            1,
            "organization",
            f"YAML tag !!python/name:os.system is not allowed: {TAGS_HINT}",
        ),
        located(plan_file, 2, "mission", f"YAML tag !include is not allowed: {TAGS_HINT}"),
    ]


def test_standard_tags_are_accepted(tmp_path: Path, backend: str):
    text = edit(BASE, "organization: Hostile Tests Ltd", "organization: !!str 1234")
    text = edit(text, "    priority: 1\n", '    priority: !!int "2"\n')
    text = edit(text, "history_start: 2025-01-01", "history_start: !!timestamp 2025-01-02")
    text = edit(text, "min_denominator: 100", "min_denominator: !!float 100")
    text = edit(text, "sources:\n", "sources: !!map\n")
    text = edit(text, MISSION, "mission: ! Refuse hostile plans.\n")  # `!`: a plain string
    plan = load_plan(write(tmp_path, text)).plan
    assert plan.organization == "1234"
    assert plan.objectives[0].priority == 2
    assert str(plan.history_start) == "2025-01-02"
    assert plan.mission == "Refuse hostile plans."


def test_value_that_does_not_fit_its_explicit_tag(tmp_path: Path, backend: str):
    text = edit(BASE, "history_start: 2025-01-01", "history_start: !!timestamp soon")
    plan_file = write(tmp_path, text)
    assert issues_of(plan_file) == [
        located(plan_file, 5, "history_start", "'soon' is not a valid !!timestamp value")
    ]


# ---- Syntax errors read alike on both back ends ----


def test_character_that_cannot_start_a_token_is_named(tmp_path: Path, backend: str):
    text = edit(BASE, MISSION, "mission: @everyone\n")
    plan_file = write(tmp_path, text)
    assert issues_of(plan_file) == [
        located(
            plan_file,
            line_of(text, "@everyone"),
            "",
            "YAML syntax error: found character '@' that cannot start any token",
        )
    ]


def test_error_at_the_end_of_the_file_is_on_its_last_line(tmp_path: Path, backend: str):
    text = BASE + "extra: [a, b"
    plan_file = write(tmp_path, text)
    [issue] = issues_of(plan_file)
    assert issue.startswith(f"{plan_file}:{line_of(text, 'extra:')}: YAML syntax error: ")


# ---- Numbers the warehouse cannot hold ----


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        pytest.param(
            "priority: 1",
            "priority: 100000000000000000000000000000",
            "objectives[0].priority",
            f"100000000000000000000000000000 is outside the range of a warehouse integer "
            f"column {INT_RANGE}",
            id="priority-10e29",
        ),
        pytest.param(
            "priority: 1",
            f"priority: {INT_MAX + 1}",
            "objectives[0].priority",
            f"2147483648 is outside the range of a warehouse integer column {INT_RANGE}",
            id="priority-just-over-int32",
        ),
        pytest.param(
            "priority: 1",
            "priority: '100000000000000000000000000000'",
            "objectives[0].priority",
            f"100000000000000000000000000000 is outside the range of a warehouse integer "
            f"column {INT_RANGE}",
            id="priority-quoted",
        ),
        pytest.param(
            "priority: 1",
            "priority: 0x" + "f" * 90,
            "objectives[0].priority",
            f"a 109-digit number is outside the range of a warehouse integer column {INT_RANGE}",
            id="priority-hex-360-bits",
        ),
        pytest.param(
            "min_denominator: 100",
            "min_denominator: .inf",
            "objectives[0].kpis[0].min_denominator",
            "inf is not a finite number: a warehouse number column holds finite numbers "
            "within ±1e15",
            id="infinity",
        ),
        pytest.param(
            "min_denominator: 100",
            "min_denominator: 1.0e+400",
            "objectives[0].kpis[0].min_denominator",
            "inf is not a finite number: a warehouse number column holds finite numbers "
            "within ±1e15",
            id="overflows-to-infinity",
        ),
        pytest.param(
            "value: 0.02",
            "value: .nan",
            "objectives[0].kpis[0].baseline.value",
            "nan is not a finite number: a warehouse number column holds finite numbers "
            "within ±1e15",
            id="nan",
        ),
        pytest.param(
            "min_denominator: 100",
            "min_denominator: 1.0e+16",
            "objectives[0].kpis[0].min_denominator",
            "1e+16 is outside the range of a warehouse number column (±1e15)",
            id="float-over-1e15",
        ),
        pytest.param(
            "value: 0.03",
            "value: 100000000000000000000",
            "objectives[0].kpis[0].target.value",
            "1e+20 is outside the range of a warehouse number column (±1e15)",
            id="integer-in-a-float-field",
        ),
    ],
)
def test_number_out_of_warehouse_range(tmp_path: Path, old: str, new: str, path: str, message: str):
    text = edit(BASE, old, new)
    plan_file = write(tmp_path, text)
    assert issues_of(plan_file) == [located(plan_file, line_of(text, new), path, message)]


def test_numbers_at_the_bounds_load(tmp_path: Path):
    text = edit(BASE, "priority: 1", f"priority: {INT_MAX}")
    text = edit(text, "min_denominator: 100", "min_denominator: 1.0e+15")
    plan = load_plan(write(tmp_path, text)).plan
    assert plan.objectives[0].priority == INT_MAX
    assert plan.objectives[0].kpis[0].min_denominator == FLOAT_LIMIT


def test_overlong_number_is_refused_before_conversion(tmp_path: Path, backend: str):
    # A 900 KB YAML 1.1 base-60 integer: converting it is quadratic (tens of seconds).
    text = edit(BASE, "priority: 1", "priority: " + ":".join(["59"] * 300_000))
    plan_file = write(tmp_path, text)
    assert issues_of(plan_file) == [
        located(
            plan_file,
            line_of(text, "priority:"),
            "objectives[0].priority",
            f"a number written with 899,999 characters: plan numbers have at most "
            f"{MAX_NUMBER_CHARS}",
        )
    ]


class _Numbers(StrictModel):
    count: int = 0
    share: float = 0.0
    weights: list[float] = Field(default_factory=list)
    limits: dict[str, int] = Field(default_factory=dict)
    flag: bool = False


@pytest.mark.parametrize(
    ("values", "errors"),
    [
        pytest.param(
            {"count": INT_MIN - 1},
            [
                (
                    ("count",),
                    f"-2147483649 is outside the range of a warehouse integer column {INT_RANGE}",
                )
            ],
            id="int-below",
        ),
        pytest.param(
            {"share": -2e15},
            [(("share",), "-2e+15 is outside the range of a warehouse number column (±1e15)")],
            id="float-below",
        ),
        pytest.param(
            {"weights": [1.0, float("-inf"), 3e15]},
            [
                (
                    ("weights", 1),
                    "-inf is not a finite number: a warehouse number column holds finite "
                    "numbers within ±1e15",
                ),
                (
                    ("weights", 2),
                    "3e+15 is outside the range of a warehouse number column (±1e15)",
                ),
            ],
            id="inside-a-list",
        ),
        pytest.param(
            {"limits": {"daily": 2**40}},
            [
                (
                    ("limits", "daily"),
                    f"1099511627776 is outside the range of a warehouse integer column {INT_RANGE}",
                )
            ],
            id="inside-a-mapping",
        ),
    ],
)
def test_strict_model_bounds_every_number(values: dict, errors: list[tuple[tuple, str]]):
    with pytest.raises(ValidationError) as caught:
        _Numbers(**values)
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == errors


def test_strict_model_accepts_numbers_in_range():
    model = _Numbers(count=INT_MIN, share=-FLOAT_LIMIT, weights=[FLOAT_LIMIT], flag=True)
    assert (model.count, model.share, model.weights, model.flag) == (
        INT_MIN,
        -FLOAT_LIMIT,
        [FLOAT_LIMIT],
        True,
    )


# ---- Through the command line ----


@pytest.mark.parametrize(
    ("make", "at", "problem"),
    [
        pytest.param(
            billion_laughs,
            "lol5: ",
            "lol5[0]: alias *lol4 expands the plan past 100,000 values (aliases must not "
            "multiply the plan)",
            id="alias-bomb",
        ),
        pytest.param(
            lambda: edit(BASE, "priority: 1", "priority: 100000000000000000000000000000"),
            "priority: 1000",
            "objectives[0].priority: 100000000000000000000000000000 is outside the range of a "
            f"warehouse integer column {INT_RANGE}",
            id="huge-priority",
        ),
    ],
)
def test_cli_validate_prints_one_line_per_problem(tmp_path: Path, make, at: str, problem: str):
    text = make()
    plan_file = write(tmp_path, text)
    done = subprocess.run(
        [sys.executable, "-m", "kpi_pipeline.cli", "validate", str(plan_file)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr == (
        f"kpi-pipeline: invalid plan: {plan_file}:{line_of(text, at)}: {problem}\n"
    )


def test_limits_are_what_the_messages_say():
    assert (MAX_PLAN_BYTES, MAX_DEPTH, MAX_VALUES) == (1_000_000, 64, 100_000)
    assert (INT_MIN, INT_MAX, FLOAT_LIMIT) == (-(2**31), 2**31 - 1, 1e15)
