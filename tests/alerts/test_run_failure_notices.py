"""A failed run reaches people, through the real entry points.

(a) `kpi-pipeline run` as a subprocess without a Dagster instance: the CLI itself sends the
notice. (b) `dagster-daemon run` over a persistent instance (DAGSTER_HOME in tmp) and the CLI
run inside that instance: the CLI queues the notice and the daemon's
`notify_cli_run_failure` sensor sends it — once. Both with the local Slack (and SMTP) servers
of conftest; the run fails because the week's export names `purchases` where the plan's CSV
layout expects `key_events`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from conftest import MONDAY_W02, SMTP_PASSWORD, SMTP_USER, make_project

from kpi_pipeline.defs.alerts_assets import CLI_RUN_FAILURE_SENSOR, notify_cli_run_failure_directly

SLIP = [(1000, 10)] * 7
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
DAEMON_START_SECONDS = 120  # generous: a loaded 2-core machine starts a daemon in ~20 s
DAEMON_WAIT_SECONDS = 90  # for a notice once the run failed (sensors tick every 30 s)


def broken_project(tmp_path: Path):
    """The tiny plan with a week whose export lacks the `key_events` column."""
    project = make_project(tmp_path)
    project.write_week(MONDAY_W02, SLIP)
    path = project.root / "exports" / f"{MONDAY_W02}.csv"
    path.write_text(path.read_text().replace(",key_events", ",purchases"), encoding="utf-8")
    return project, path


def cli_env(project, slack_server, smtp_server=None, dagster_home: Path | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "KPI_"))}
    env.update(
        KPI_WAREHOUSE_URL=project.warehouse_url,
        KPI_PLAN=str(project.plan_path),
        TEST_SLACK_WEBHOOK=slack_server.url,
    )
    if smtp_server is not None:
        env.update(
            TEST_SMTP_HOST="127.0.0.1",
            TEST_SMTP_PORT=str(smtp_server.port),
            TEST_SMTP_USER=SMTP_USER,
            TEST_SMTP_PASSWORD=SMTP_PASSWORD,
        )
    if dagster_home is not None:
        env["DAGSTER_HOME"] = str(dagster_home)
    return env


def run_cli(project, env: dict) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "kpi_pipeline.cli", "run", "--plan", str(project.plan_path)]
    command += ["--from", "2026-01-05", "--to", "2026-01-11"]
    return subprocess.run(
        command, env=env, cwd=project.root, capture_output=True, text=True, timeout=600
    )


def expected_detail(run_id: str, project, path: Path) -> str:
    """The job, the run, the failed step and the first line of the source's own message."""
    return (
        f"job daily_kpis, run {run_id}: step csv_exports failed: {path}:1: the header does "
        "not match the mapping of source 'export': missing key_events (one of: key_events, "
        "key events, événements clés, conversions). Found: date, source, medium, campaign, "
        "landing_page, device, sessions, engaged_sessions, purchases. Source 'export' has no "
        "rows for 2026-01-05..2026-01-11, which this file may hold. This run changed nothing: "
        f"fix or remove the file, then re-run: kpi-pipeline run --plan {project.plan_path} "
        "--from 2026-01-05 --to 2026-01-11"
    )


def failure_payload(run_id: str, project, path: Path) -> dict:
    return {
        "text": "kpi-pipeline run failed",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": ":rotating_light: kpi-pipeline run failed"},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*Failure*\n{expected_detail(run_id, project, path)}",
                },
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"kpi-pipeline · run_failure:{run_id}"}],
            },
        ],
    }


def run_id_of(payload: dict) -> str:
    match = re.search(rf"run_failure:({UUID})$", payload["blocks"][2]["elements"][0]["text"])
    assert match, payload
    return match.group(1)


def test_cli_without_an_instance_sends_the_notice_itself(tmp_path, slack_server, smtp_server):
    project, path = broken_project(tmp_path)
    done = run_cli(project, cli_env(project, slack_server, smtp_server))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "alerts: run failure notice on slack: delivered" in done.stderr
    assert "alerts: run failure notice on email: delivered" in done.stderr
    (payload,) = slack_server.received
    run_id = run_id_of(payload)
    assert payload == failure_payload(run_id, project, path)
    (mail,) = smtp_server.received
    assert mail["Subject"] == "[kpi-pipeline] kpi-pipeline run failed"
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n") == (
        f"kpi-pipeline run failed\n\nFailure  {expected_detail(run_id, project, path)}\n"
    )
    log = project.read(
        "select alert_id, channel, kind, status, runs_tried from marts.alert_deliveries "
        "order by channel"
    )
    assert list(log.itertuples(index=False, name=None)) == [
        (f"run_failure:{run_id}", "email", "pipeline_failure", "delivered", 1),
        (f"run_failure:{run_id}", "slack", "pipeline_failure", "delivered", 1),
    ]


def test_the_same_run_is_never_announced_twice(tmp_path, slack_server):
    project, _ = broken_project(tmp_path)
    result = project.run(MONDAY_W02, MONDAY_W02)
    assert not result.success
    env = cli_env(project, slack_server)
    first = notify_cli_run_failure_directly(project.plan_path, result, environ=env)
    again = notify_cli_run_failure_directly(project.plan_path, result, environ=env)
    assert first == ["alerts: run failure notice on slack: delivered"]
    assert again == ["alerts: run failure notice on slack: already delivered"]
    assert len(slack_server.received) == 1


def _wait_for(condition, seconds: float, what: str, daemon: subprocess.Popen, log: Path):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if daemon.poll() is not None:
            pytest.fail(f"dagster-daemon exited while waiting for {what}:\n{log.read_text()}")
        time.sleep(1)
    pytest.fail(f"no {what} within {seconds} s; daemon log:\n{log.read_text()[-4000:]}")


@pytest.fixture
def daemon_home(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    # The sensor daemon only (no run queue or schedules to wait on), ticking quickly.
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return home


def test_daemon_sensors_announce_failed_cli_and_launched_runs_once(
    tmp_path, slack_server, daemon_home, monkeypatch
):
    (tmp_path / "project").mkdir()
    project, path = broken_project(tmp_path / "project")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: kpi_pipeline.definitions\n"
        f"      working_directory: {project.root}\n",
        encoding="utf-8",
    )
    env = cli_env(project, slack_server, dagster_home=daemon_home)
    log_path = tmp_path / "daemon.log"
    with log_path.open("w") as log:
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(workspace)],
            env=env,
            cwd=project.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        monkeypatch.setenv("DAGSTER_HOME", str(daemon_home))
        instance = dg.DagsterInstance.get()

        def sensor_started() -> bool:
            # Started = ticked once: a run status sensor's first tick sets its cursor after
            # the latest run event, so only runs failing after it are its business.
            return any(
                state.name == CLI_RUN_FAILURE_SENSOR
                and state.instigator_data is not None
                and getattr(state.instigator_data, "cursor", None)
                for state in instance.all_instigator_state()
            )

        _wait_for(sensor_started, DAEMON_START_SECONDS, "first sensor tick", daemon, log_path)
        done = run_cli(project, env)
        assert done.returncode == 1, done.stderr
        assert "alerts: run failure left to the daemon's notify_cli_run_failure sensor" in (
            done.stderr
        )

        def delivered() -> bool:
            return len(slack_server.received) >= 1

        _wait_for(delivered, DAEMON_WAIT_SECONDS, "notice on Slack", daemon, log_path)
        (payload,) = slack_server.received
        run_id = run_id_of(payload)
        assert payload == failure_payload(run_id, project, path)
        (run,) = instance.get_runs()
        assert (run.run_id, run.status) == (run_id, dg.DagsterRunStatus.FAILURE)
        assert run.remote_job_origin is None  # in process: no code location of its own

        # The CLI only queued it; the sensor sent it and reports so on the run (once its
        # tick ends, just after the send).
        def reports() -> list[str]:
            messages = [entry.message for entry in instance.all_logs(run_id)]
            return [m for m in messages if "acted on run status" in (m or "")]

        _wait_for(reports, 30, "sensor report on the run", daemon, log_path)
        assert reports() == [
            f'Sensor "{CLI_RUN_FAILURE_SENSOR}" acted on run status FAILURE of run {run_id}.'
        ]
        # A later tick of the sensor (every 30 s) sends nothing more for that run.
        time.sleep(35)
        assert len(slack_server.received) == 1
        log = project.read(
            "select channel, status, given_up_reason from marts.alert_deliveries "
            f"where alert_id = 'run_failure:{run_id}' order by channel"
        )
        log = log.astype(object).where(log.notna(), None)
        # The CLI queued it on both declared channels; the sensor's process has no SMTP
        # settings, so the email row is given up rather than left waiting.
        assert list(log.itertuples(index=False, name=None)) == [
            ("email", "failed", "no settings for this channel where the notice was sent"),
            ("slack", "delivered", None),
        ]

        # A run launched from the code location (as the schedule or the UI would): the
        # daemon's run queue starts it, and `notify_run_failure` announces its failure.
        launched = str(uuid.uuid4())
        dagster = str(Path(sys.executable).parent / "dagster")
        tags = json.dumps({"dagster/partition": "2026-01-05"})
        subprocess.run(
            [
                *(dagster, "job", "launch", "-w", str(workspace), "-j", "daily_kpis"),
                *("--run-id", launched, "--tags", tags),
            ],
            env=env,
            cwd=project.root,
            check=True,
            capture_output=True,
            timeout=300,
        )
        _wait_for(
            lambda: len(slack_server.received) >= 2,
            DAEMON_START_SECONDS + DAEMON_WAIT_SECONDS,  # queued, started, failed, noticed
            "notice of the launched run",
            daemon,
            log_path,
        )
        second = slack_server.received[1]
        assert run_id_of(second) == launched
        assert second["blocks"][1]["text"]["text"].startswith(
            f"*Failure*\njob daily_kpis, run {launched}: step csv_exports failed: {path}:1: "
            "the header does not match the mapping of source 'export': missing key_events"
        )
        time.sleep(35)
        assert len(slack_server.received) == 2
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=10)
