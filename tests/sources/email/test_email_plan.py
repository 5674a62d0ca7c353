"""Email sources in a plan: accepted with email KPIs, and mistakes located by line and path."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpi_pipeline.plan import PlanError, load_plan

PLAN = """\
organization: Tiny Shop
mission: Sell a few things.
timezone: America/Toronto
currency: CAD
history_start: 2026-01-05
sources:
  csv_exports:
    - id: export
      path: exports/*.csv
  email:
    - id: {email_id}
      platform: mailchimp
      utm_source: newsletter
{extra}objectives:
  - id: sell
    title: Sell more
    priority: 1
    deadline: 2026-12-31
    strategies:
      - id: reach
        title: Reach people
        tactics:
          - {{id: email_news, channel: email, match: [{{source: newsletter, medium: email}}]}}
    kpis:
      - id: open_rate
        label: Email open rate
        kind: ratio
        numerator: email_unique_opens
        denominator: emails_delivered
        baseline: {{value: 0.3, as_of: 2026-01-01}}
        target: {{value: 0.4, by: 2026-12-31}}
        segments: [tactic]
"""


def _load(tmp_path: Path, email_id: str = "news", extra: str = ""):
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN.format(email_id=email_id, extra=extra), encoding="utf-8")
    return load_plan(path)


def test_email_measures_are_built_in_for_ratio_kpis(tmp_path):
    plan = _load(tmp_path).plan
    (source,) = plan.sources.email
    assert (source.platform, source.api_key_env_var) == ("mailchimp", "MAILCHIMP_API_KEY")
    assert source.exclude_machine_opens
    kpi = plan.objectives[0].kpis[0]
    assert (kpi.resolved_numerator, kpi.resolved_denominator) == (
        "email_unique_opens",
        "emails_delivered",
    )


def test_an_email_source_id_shared_with_a_csv_source_is_located(tmp_path):
    with pytest.raises(PlanError) as caught:
        _load(tmp_path, email_id="export")
    (issue,) = caught.value.issues
    assert issue.path == "sources.email[0].id"
    assert issue.line == 11
    assert "duplicate source id 'export'" in issue.message


def test_an_api_key_value_where_the_variable_name_belongs_is_refused(tmp_path):
    # Someone pastes the key itself: refused, so it cannot sit in a plan file in git.
    with pytest.raises(PlanError) as caught:
        _load(tmp_path, extra="      api_key_env_var: 0123abcd-us6\n")
    (issue,) = caught.value.issues
    assert issue.path == "sources.email[0].api_key_env_var"
    assert "0123abcd-us6" not in issue.message
