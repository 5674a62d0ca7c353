"""Broken plans: every problem is reported with the right file, field path, line and message.

Each case starts from `plan_config/demo.yaml` (which loads cleanly, see
`test_unedited_demo_copy_loads`) and applies small textual edits. Every edit must match exactly
once, so a case cannot silently stop testing anything when the demo plan changes. Expected
lines are not hard-coded: each expected issue names a piece of text (`at`) that occurs exactly
once in the edited document, and the issue must point at the line where that text starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from kpi_pipeline.plan import LoadedPlan, PlanError, PlanIssue, load_plan

DEMO_PATH = Path(__file__).resolve().parents[2] / "plan_config" / "demo.yaml"
DEMO_TEXT = DEMO_PATH.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Expect:
    """One issue the loader must report."""

    path: str  # dotted field path, "" for file-level problems
    at: str  # text occurring exactly once in the edited document; the issue is on its line
    message: str  # substring of the issue's message


def edit(text: str, old: str, new: str) -> str:
    """Replace `old` by `new`, insisting that `old` occurs exactly once."""
    count = text.count(old)
    assert count == 1, f"edit must match exactly once, matched {count} times: {old!r}"
    assert old != new, f"edit changes nothing: {old!r}"
    return text.replace(old, new)


def apply_edits(text: str, edits: list[tuple[str, str]]) -> str:
    for old, new in edits:
        text = edit(text, old, new)
    return text


def line_of(text: str, needle: str) -> int:
    """1-based line on which `needle` starts; `needle` must occur exactly once."""
    count = text.count(needle)
    assert count == 1, f"expected-line anchor must occur exactly once, found {count}: {needle!r}"
    return text[: text.index(needle)].count("\n") + 1


def load_errors(plan_file: Path) -> list[PlanIssue]:
    with pytest.raises(PlanError) as caught:
        load_plan(plan_file)
    return caught.value.issues


def assert_issues(issues: list[PlanIssue], text: str, plan_file: Path, expected: list[Expect]):
    """The issues are exactly the expected ones (any order), each fully checked."""
    shown = "\n".join(f"  {issue}" for issue in issues)
    assert len(issues) == len(expected), f"expected {len(expected)} issues, got:\n{shown}"
    unmatched = list(issues)
    for want in expected:
        line = line_of(text, want.at)
        found = [
            issue
            for issue in unmatched
            if issue.path == want.path and issue.line == line and want.message in issue.message
        ]
        assert found, f"no issue {want.path!r} at line {line} with {want.message!r} in:\n{shown}"
        unmatched.remove(found[0])
    for issue in issues:
        assert issue.file == str(plan_file)
        where = f"{plan_file}:{issue.line}"
        if issue.path:
            assert str(issue) == f"{where}: {issue.path}: {issue.message}"
        else:
            assert str(issue) == f"{where}: {issue.message}"


def case(case_id: str, edits: list[tuple[str, str]], *expected: Expect):
    return pytest.param(edits, list(expected), id=case_id)


CASES = [
    # A misspelt top-level key must be rejected, not silently ignored (month would default to 1).
    case(
        "unknown-top-level-key",
        [("fiscal_year_start_month: 4", "fiscal_year_start: 4")],
        Expect("fiscal_year_start", "fiscal_year_start: 4", "unknown key"),
    ),
    # A misspelt optional KPI field would otherwise silently fall back to the default tolerance.
    case(
        "misspelt-tolerance-in-kpi",
        # engagement_rate's tolerance (bounce_rate has the same line; its segments tell them apart).
        [
            (
                "segments: [tactic, device]\n        tolerance: 0.02",
                "segments: [tactic, device]\n        tolerence: 0.02",
            )
        ],
        Expect("objectives[1].kpis[0].tolerence", "tolerence: 0.02", "unknown key"),
    ),
    # A task_completion_rate numerator must name a declared (or built-in) measure.
    case(
        "dangling-numerator-measure",
        [("numerator: quote_form_submits", "numerator: quote_form_submit")],
        Expect(
            "objectives[2].kpis[0].numerator",
            "numerator: quote_form_submit\n",
            "unknown measure 'quote_form_submit'",
        ),
    ),
    # A KPI restricted to tactics must only name tactics that exist; the path names the item.
    case(
        "dangling-kpi-tactic",
        [
            (
                "segments: [device]",
                "segments: [device]\n        tactics: [paid_quote_keywords, paid_quote_keyword]",
            )
        ],
        Expect(
            "objectives[2].kpis[0].tactics[1]",
            "tactics: [paid_quote_keywords,",
            "unknown tactic 'paid_quote_keyword'",
        ),
    ),
    # An empty tactic list on a KPI segmented by tactic matches no traffic at all.
    case(
        "empty-kpi-tactic-list",
        [("segments: [device]", "segments: [tactic]\n        tactics: []")],
        Expect("objectives[2].kpis[0].tactics", "tactics: []", "matches no traffic"),
    ),
    # A measure counting an event that no source exports would always be zero.
    case(
        "measure-event-not-provided",
        [("event: form_start", "event: form_begin")],
        Expect("measures[0].event", "event: form_begin", "no source provides event 'form_begin'"),
    ),
    # Without event_columns, both declared measures lose their data: both are reported.
    case(
        "source-without-event-columns",
        [
            (
                "      event_columns:\n"
                "        form_start: form_start_events\n"
                "        form_submit: form_submit_events\n",
                "",
            )
        ],
        Expect("measures[0].event", "event: form_start", "no source provides event 'form_start'"),
        Expect("measures[1].event", "event: form_submit", "no source provides event 'form_submit'"),
    ),
    # KPI ids name snapshot rows: they must be unique across the whole plan, not per objective.
    case(
        "duplicate-kpi-id-across-objectives",
        [("- id: engagement_rate", "- id: online_conversion_rate")],
        Expect(
            "objectives[1].kpis[0].id",
            "id: online_conversion_rate\n        label: Engagement rate",
            "duplicate KPI id 'online_conversion_rate' (first declared at objectives[0].kpis[0])",
        ),
    ),
    # Tactic ids attribute traffic: a duplicate in another objective is still ambiguous.
    case(
        "duplicate-tactic-id",
        [("- id: blog_buying_guides", "- id: email_newsletter")],
        Expect(
            "objectives[1].strategies[1].tactics[0].id",
            "id: email_newsletter\n            channel: content",
            "duplicate tactic id 'email_newsletter' "
            "(first declared at objectives[0].strategies[0].tactics[0])",
        ),
    ),
    # Strategy ids must be unique too.
    case(
        "duplicate-strategy-id",
        [("- id: teach_with_guides", "- id: tell_stories_socially")],
        Expect(
            "objectives[1].strategies[1].id",
            "id: tell_stories_socially\n        title: Publish",
            "duplicate strategy id 'tell_stories_socially'",
        ),
    ),
    # Objective ids must be unique; the later one is reported.
    case(
        "duplicate-objective-id",
        [("- id: make_quote_requests_easy", "- id: engage_visitors")],
        Expect(
            "objectives[2].id",
            "id: engage_visitors\n    title: Make group-order",
            "duplicate objective id 'engage_visitors' (first declared at objectives[1])",
        ),
    ),
    # A duplicate measure id also leaves the renamed one dangling: both problems are reported.
    case(
        "duplicate-measure-id",
        [("- id: quote_form_starts", "- id: quote_form_submits")],
        Expect(
            "measures[1].id",
            "id: quote_form_submits\n    event: form_submit",
            "duplicate measure id 'quote_form_submits' (first declared at measures[0])",
        ),
        Expect(
            "objectives[2].kpis[0].denominator",
            "denominator: quote_form_starts",
            "unknown measure 'quote_form_starts'",
        ),
    ),
    # A declared measure may not shadow a built-in one.
    case(
        "measure-id-shadows-built-in",
        [("- id: quote_form_starts", "- id: sessions")],
        Expect("measures[0].id", "id: sessions", "'sessions' is built in"),
        Expect(
            "objectives[2].kpis[0].denominator",
            "denominator: quote_form_starts",
            "unknown measure 'quote_form_starts'",
        ),
    ),
    # YAML silently keeps the last of two equal keys; the loader must refuse instead.
    case(
        "duplicate-yaml-key-block",
        [("    priority: 3\n", "    priority: 3\n    priority: 4\n")],
        Expect("objectives[2].priority", "priority: 4", "duplicate key"),
    ),
    # Same, inside a flow mapping: the line is the mapping's line.
    case(
        "duplicate-yaml-key-flow",
        [("{value: 260, as_of", "{value: 260, value: 300, as_of")],
        Expect("objectives[2].kpis[1].baseline.value", "value: 300", "duplicate key"),
    ),
    # The baseline must be measured before the target date.
    case(
        "baseline-after-target",
        [("{value: 0.52, as_of: 2025-06-01}", "{value: 0.52, as_of: 2027-01-15}")],
        Expect(
            "objectives[1].kpis[0].target.by",
            "target: {value: 0.62",
            "target date 2026-12-31 must be after baseline.as_of 2027-01-15",
        ),
    ),
    # Boundary: a baseline on the target date itself leaves no time to move: rejected.
    case(
        "baseline-on-target-date",
        [("{value: 260, as_of: 2025-06-01}", "{value: 260, as_of: 2026-12-31}")],
        Expect("objectives[2].kpis[1].target.by", "target: {value: 420", "must be after"),
    ),
    # Rates are fractions: 25 (meaning 25 %) is the classic mistake.
    case(
        "rate-target-as-percent",
        [("target: {value: 0.025", "target: {value: 25")],
        Expect(
            "objectives[0].kpis[0].target.value",
            "target: {value: 25,",
            "target value 25.0 is outside [0, 1]",
        ),
    ),
    # Boundary just above 1 for another rate kind.
    case(
        "rate-target-above-one",
        [("target: {value: 0.62", "target: {value: 1.01")],
        Expect("objectives[1].kpis[0].target.value", "target: {value: 1.01", "outside [0, 1]"),
    ),
    # A negative rate baseline is impossible.
    case(
        "rate-baseline-negative",
        [("baseline: {value: 0.34", "baseline: {value: -0.34")],
        Expect(
            "objectives[2].kpis[0].baseline.value",
            "baseline: {value: -0.34",
            "baseline value -0.34 is outside [0, 1]",
        ),
    ),
    # A misspelt IANA zone would shift every day boundary.
    case(
        "unknown-timezone",
        [("timezone: America/Toronto", "timezone: America/Torontoo")],
        Expect(
            "timezone", "timezone: America/Torontoo", "unknown IANA timezone 'America/Torontoo'"
        ),
    ),
    # A path-like value must not be looked up on disk as a zone file.
    case(
        "timezone-path-traversal",
        [("timezone: America/Toronto", "timezone: ../../etc/passwd")],
        Expect("timezone", "timezone: ../", "unknown IANA timezone"),
    ),
    # An impossible date is not a YAML date: the model must still report it at its line.
    case(
        "impossible-date",
        [("deadline: 2027-03-31", "deadline: 2026-02-30")],
        Expect("objectives[0].deadline", "deadline: 2026-02-30", "valid date"),
    ),
    # A date field given a timestamp with a time of day.
    case(
        "datetime-for-date",
        [("{value: 0.34, as_of: 2025-06-01}", "{value: 0.34, as_of: 2025-06-01T10:00:00}")],
        Expect("objectives[2].kpis[0].baseline.as_of", "T10:00:00", "zero time"),
    ),
    # The KPI kind selects the SQL: an unknown one must list the valid kinds.
    case(
        "unknown-kpi-kind",
        [("kind: engagement_rate", "kind: exit_rate")],
        Expect("objectives[1].kpis[0].kind", "kind: exit_rate", "'task_completion_rate'"),
    ),
    # The error names the offending list item, on the flow sequence's line.
    case(
        "unknown-grain",
        [("grains: [day, week, month, quarter]", "grains: [day, week, fortnight, quarter]")],
        Expect("objectives[0].kpis[0].grains[2]", "grains: [day, week, fortnight", "'quarter'"),
    ),
    # Segments are a closed set of dimensions.
    case(
        "unknown-segment",
        [("segments: [tactic, device]", "segments: [tactic, region]")],
        Expect("objectives[1].kpis[0].segments[1]", "segments: [tactic, region]", "'device'"),
    ),
    # Channels are a closed set too.
    case(
        "unknown-channel",
        [("channel: social", "channel: tiktok")],
        Expect(
            "objectives[1].strategies[0].tactics[0].channel", "channel: tiktok", "'paid_search'"
        ),
    ),
    # A missing field is reported at the line of the mapping that lacks it.
    case(
        "objective-without-deadline",
        [("    deadline: 2027-03-31          # end of fiscal year 2026\n", "")],
        Expect("objectives[0].deadline", "- id: sell_more_online", "required field is missing"),
    ),
    # task_completion_rate has no implied measures: its numerator is required.
    case(
        "task-completion-rate-without-numerator",
        [("        numerator: quote_form_submits\n", "")],
        Expect(
            "objectives[2].kpis[0].numerator",
            "- id: quote_form_completion_rate",
            "a task_completion_rate KPI needs `numerator`",
        ),
    ),
    # A volume KPI's baseline/target are per period, so they only make sense for one grain.
    case(
        "volume-kpi-two-grains",
        [("grains: [month]", "grains: [month, quarter]")],
        # bounce_rate also lists [month, quarter]: the anchor takes the volume KPI's next line.
        Expect(
            "objectives[2].kpis[1].grains",
            "grains: [month, quarter]\n        tolerance: 0.1",
            "list exactly one",
        ),
    ),
    # Two independent checks fire on the same field: both are reported.
    case(
        "volume-kpi-grain-listed-twice",
        [("grains: [month]", "grains: [month, month]")],
        Expect("objectives[2].kpis[1].grains", "grains: [month, month]", "list exactly one"),
        Expect("objectives[2].kpis[1].grains", "grains: [month, month]", "listed twice"),
    ),
    # conversion_rate implies key_events / sessions: an explicit numerator is a misunderstanding.
    case(
        "numerator-on-conversion-rate",
        [("kind: conversion_rate\n", "kind: conversion_rate\n        numerator: key_events\n")],
        Expect(
            "objectives[0].kpis[0].numerator",
            "numerator: key_events",
            "`numerator` is implied by the kind for a conversion_rate KPI",
        ),
    ),
    # A volume KPI uses `measure`; a numerator is not used.
    case(
        "numerator-on-volume",
        [("kind: volume\n", "kind: volume\n        numerator: quote_form_starts\n")],
        Expect(
            "objectives[2].kpis[1].numerator",
            "numerator: quote_form_starts",
            "`numerator` is not used for a volume KPI",
        ),
    ),
    # Ids become SQL values and Dagster names: uppercase and spaces are rejected.
    case(
        "id-with-uppercase-and-space",
        [("- id: email_newsletter", "- id: Email Newsletter")],
        Expect(
            "objectives[0].strategies[0].tactics[0].id",
            "id: Email Newsletter",
            "ids use lowercase letters",
        ),
    ),
    # Currency codes are upper-case ISO 4217.
    case(
        "lowercase-currency",
        [("currency: CAD", "currency: cad")],
        Expect("currency", "currency: cad", "3-letter ISO 4217 code"),
    ),
    # Range checks on numbers.
    case(
        "priority-zero",
        [("priority: 3", "priority: 0")],
        Expect("objectives[2].priority", "priority: 0", "greater than or equal to 1"),
    ),
    # A tactic without any UTM rule would match no traffic.
    case(
        "tactic-without-match-rules",
        [("              - {source: newsletter, medium: email}\n", "              []\n")],
        Expect(
            "objectives[0].strategies[0].tactics[0].match", "match:\n              []", "at least 1"
        ),
    ),
    # Source options are validated where they are written.
    case(
        "unknown-encoding",
        [("encoding: utf-8", "encoding: utf-9")],
        Expect("sources.csv_exports[0].encoding", "encoding: utf-9", "unknown encoding 'utf-9'"),
    ),
    # A YAML syntax error is reported at its line, with no field path.
    case(
        "yaml-syntax-error",
        [("label: Online conversion rate", "label: Online conversion: rate")],
        Expect("", "label: Online conversion: rate", "YAML syntax error"),
    ),
    # A tab used for indentation is a syntax error in YAML.
    case(
        "yaml-tab-indentation",
        [("    priority: 2\n", "\tpriority: 2\n")],
        Expect("", "\tpriority: 2", "YAML syntax error"),
    ),
    # Several shape/type problems in one file: all are reported at once.
    case(
        "several-model-problems",
        [
            ("fiscal_year_start_month: 4", "fiscal_year_start: 4"),
            ("currency: CAD", "currency: cad"),
            ("grains: [day, week, month, quarter]", "grains: [day, week, fortnight, quarter]"),
            (
                "    deadline: 2026-12-31\n    strategies:\n      - id: tell_stories",
                "    strategies:\n      - id: tell_stories",
            ),
        ],
        Expect("fiscal_year_start", "fiscal_year_start: 4", "unknown key"),
        Expect("currency", "currency: cad", "3-letter ISO 4217 code"),
        Expect("objectives[0].kpis[0].grains[2]", "fortnight", "'quarter'"),
        Expect("objectives[1].deadline", "- id: engage_visitors", "required field is missing"),
    ),
    # Several cross-reference problems in one file: all are reported at once.
    case(
        "several-cross-reference-problems",
        [
            ("numerator: quote_form_submits", "numerator: quote_form_submit"),
            ("- id: make_quote_requests_easy", "- id: engage_visitors"),
            ("target: {value: 0.025", "target: {value: 25"),
            ("event: form_start", "event: form_begin"),
        ],
        Expect("objectives[2].kpis[0].numerator", "quote_form_submit\n", "unknown measure"),
        Expect("objectives[2].id", "engage_visitors\n    title: Make", "duplicate objective id"),
        Expect("objectives[0].kpis[0].target.value", "value: 25,", "outside [0, 1]"),
        Expect("measures[0].event", "form_begin", "no source provides event"),
    ),
]


def test_enough_distinct_cases():
    ids = [param.id for param in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 16


@pytest.mark.parametrize(("edits", "expected"), CASES)
def test_broken_plan(tmp_path: Path, edits: list[tuple[str, str]], expected: list[Expect]):
    text = apply_edits(DEMO_TEXT, edits)
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(text, encoding="utf-8")
    assert_issues(load_errors(plan_file), text, plan_file, expected)


def test_unedited_demo_copy_loads(tmp_path: Path):
    """Control: the cases fail because of their edits, not because of the copy."""
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(DEMO_TEXT, encoding="utf-8")
    assert isinstance(load_plan(plan_file), LoadedPlan)


def test_error_message_lists_every_issue(tmp_path: Path):
    text = apply_edits(
        DEMO_TEXT,
        [("currency: CAD", "currency: cad"), ("timezone: America/Toronto", "timezone: Mars/Base")],
    )
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(text, encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        load_plan(plan_file)
    message = str(caught.value)
    assert message.startswith("invalid plan (2 problems):\n")
    for issue in caught.value.issues:
        assert f"\n  {issue}" in message


def test_error_message_singular(tmp_path: Path):
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(edit(DEMO_TEXT, "currency: CAD", "currency: cad"), encoding="utf-8")
    with pytest.raises(PlanError, match=r"^invalid plan \(1 problem\):\n"):
        load_plan(plan_file)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="zero-bytes"),
        pytest.param("\n\n   \n", id="blank-lines"),
        pytest.param("# just a comment\n# and another\n", id="comments-only"),
    ],
)
def test_empty_file(tmp_path: Path, text: str):
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(text, encoding="utf-8")
    assert [(i.file, i.line, i.path, i.message) for i in load_errors(plan_file)] == [
        (str(plan_file), 1, "", "the file is empty")
    ]


def test_document_is_not_a_mapping(tmp_path: Path):
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("- just\n- a list\n", encoding="utf-8")
    [issue] = load_errors(plan_file)
    assert (issue.file, issue.line, issue.path) == (str(plan_file), 1, "")
    assert "dictionary" in issue.message


def test_missing_file(tmp_path: Path):
    plan_file = tmp_path / "nope.yaml"
    [issue] = load_errors(plan_file)
    assert (issue.file, issue.path, issue.message) == (str(plan_file), "", "file not found")


def test_not_utf8(tmp_path: Path):
    plan_file = tmp_path / "plan.yaml"
    text = edit(DEMO_TEXT, "Toronto store", "Montréal store")
    plan_file.write_bytes(text.encode("latin-1"))
    [issue] = load_errors(plan_file)
    assert (issue.file, issue.path) == (str(plan_file), "")
    assert "not UTF-8" in issue.message


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path):
    # Windows editors often save UTF-8 with a BOM.
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("\ufeff" + DEMO_TEXT, encoding="utf-8")
    assert isinstance(load_plan(plan_file), LoadedPlan)


# ---- Loader edge cases that once crashed or misreported ----


def test_control_character_is_a_plan_error(tmp_path: Path):
    text = edit(DEMO_TEXT, "organization: Northwind Outfitters", "organization: Northwind\x1b")
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(text, encoding="utf-8")
    [issue] = load_errors(plan_file)
    assert (issue.file, issue.line, issue.path) == (str(plan_file), line_of(text, "\x1b"), "")


def test_unhashable_key_is_a_plan_error(tmp_path: Path):
    text = edit(DEMO_TEXT, "currency: CAD\n", "currency: CAD\n? [a, b]\n: 1\n")
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(text, encoding="utf-8")
    [issue] = load_errors(plan_file)
    assert issue.line == line_of(text, "? [a, b]")


def test_directory_is_a_plan_error(tmp_path: Path):
    [issue] = load_errors(tmp_path)
    assert issue.file == str(tmp_path)


def test_numeric_key_is_reported_at_its_line(tmp_path: Path):
    text = edit(DEMO_TEXT, "currency: CAD\n", "currency: CAD\n2024: budget\n")
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(text, encoding="utf-8")
    [issue] = load_errors(plan_file)
    assert (issue.path, issue.line) == ("2024", line_of(text, "2024: budget"))


@pytest.mark.parametrize(
    ("kind", "measure"),
    [("task_completion_rate", "quote_form_starts"), ("conversion_rate", "key_events")],
)
def test_stray_measure_on_rate_kpi_is_not_called_implied(tmp_path: Path, kind: str, measure: str):
    text = edit(DEMO_TEXT, f"kind: {kind}\n", f"kind: {kind}\n        measure: {measure}\n")
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(text, encoding="utf-8")
    [issue] = load_errors(plan_file)
    assert issue.path.endswith(".measure")
    assert issue.line == line_of(text, f"measure: {measure}\n")
    assert "implied" not in issue.message


def test_empty_tactic_list_without_tactic_segment(tmp_path: Path):
    text = edit(DEMO_TEXT, "segments: [device]", "segments: [device]\n        tactics: []")
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(text, encoding="utf-8")
    assert_issues(
        load_errors(plan_file),
        text,
        plan_file,
        [Expect("objectives[2].kpis[0].tactics", "tactics: []", "matches no traffic")],
    )
