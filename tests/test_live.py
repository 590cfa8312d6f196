"""The live engine, for real: handlers in local processes against a moto server on 127.0.0.1.

These tests take wall-clock time (about three minutes in all) and leave no process behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sim.drain.decisions import replay
from sim.drain.handlers import SettingsError, timer_params_from_environment
from sim.live.endpoint import custom_endpoint, start_moto
from sim.live.engine import live_send_plan, run_live
from sim.scenario import Scenario
from sim.simulation import program_factory
from sim.workload import Arrivals

from live_support import StallingProxy, live_processes

REPOSITORY = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.live


def tiny(**overrides: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "tiny-live",
        "seed": 5,
        "duration_s": 8,
        "drain_s": 8,
        "workload": {"kind": "flat", "rate_per_s": 2, "arrival": "even", "delay_s": 1},
        "queue": {"visibility_timeout_s": 3, "retention_s": 600},
        "lambda": {"idle_reclaim_s": 600, "async_dispatch_delay_ms": 5},
        "eventbridge": {"delivery_delay_s": 0.1},
        "live": {"producer_lead_s": 1},
        "designs": {
            "timer": {"kind": "timer", "period_s": 4, "baseline_s": 3, "timeout_s": 8, "wait_s": 1, "safety_margin_s": 1},
        },
    }
    data.update(overrides)
    return Scenario.model_validate(data)


def normalized(entries: list[Any]) -> list[Any]:
    return json.loads(json.dumps(entries))


@pytest.fixture(autouse=True)
def no_processes_left(monkeypatch):
    mark = f"drainsim-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("DRAINSIM_TEST_MARK", mark)
    yield
    assert live_processes(f"DRAINSIM_TEST_MARK={mark}") == []


# ---------------------------------------------------------------------------------------------
# Without processes


def test_send_plan_keeps_due_times():
    arrivals = Arrivals(
        send_at_s=pd.Series([0.0, 5.0, 10.0]).to_numpy(),
        delay_s=pd.Series([10, 1, 0]).to_numpy(),
        due_at_s=pd.Series([10.0, 6.0, 10.0]).to_numpy(),
    )

    send_at_s, delays = live_send_plan(arrivals, lead_s=2)

    assert delays.tolist() == [2, 1, 0]
    assert send_at_s.tolist() == [8.0, 5.0, 10.0]


def test_handler_settings_reject_bad_values():
    with pytest.raises(SettingsError, match="DRAIN_BATCH_SIZE=11 is out of range; allowed: 1 to 10"):
        timer_params_from_environment({"DRAIN_BATCH_SIZE": "11"})
    with pytest.raises(SettingsError, match="DRAIN_PUBLISH_API='bulk' is invalid"):
        timer_params_from_environment({"DRAIN_PUBLISH_API": "bulk"})


def test_handler_settings_defaults():
    params = timer_params_from_environment({})

    assert params.poll.batch_size == 10
    assert params.poll.wait_s == 3
    assert params.baseline_s == 60
    assert params.baseline_from_environment is False


def test_aws_needs_region(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sim", "run", "--engine", "live", "--aws", str(REPOSITORY / "scenarios" / "live-smoke.toml"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 2
    assert "--aws needs --region" in result.stderr
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Live runs


def test_compare_sim_and_live_smoke(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sim", "compare", "--engines", "sim,live", str(REPOSITORY / "scenarios" / "live-smoke.toml"), "--out", str(tmp_path), "--run-id", "smoke", "--no-plots"],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "recursive (sim)  recursive (live)" in result.stdout
    live = json.loads((tmp_path / "live-smoke" / "smoke-live" / "summary.json").read_text())
    simulated = json.loads((tmp_path / "live-smoke" / "smoke-sim" / "summary.json").read_text())
    assert live["engine"] == "live"
    assert live["endpoint"]["kind"] == "embedded-moto"
    assert live["endpoint"]["url"].startswith("http://127.0.0.1:")
    assert simulated["engine"] == "sim"
    # Execution environments are reused warm between invocations.
    assert live["designs"]["timer"]["cold_starts"] < live["designs"]["timer"]["invocations"]["total"]
    for name, design in live["designs"].items():
        assert design["delivered"] + design["undelivered"]["total"] == design["messages"], name
        assert design["delivered"] == design["messages"], name
        assert design["lateness_s"]["p50"] >= 0, name
    latency = pd.read_parquet(tmp_path / "live-smoke" / "smoke-live" / "api_latency.parquet")
    assert {"ReceiveMessage", "PublishBatch", "DeleteMessageBatch", "SendMessage"} <= set(latency["api"])
    assert (latency["duration_s"] > 0).all()
    assert latency["queue_visible"].notna().any()


def test_decisions_match_between_engines(tmp_path):
    scenario = tiny(
        designs={
            "timer": {"kind": "timer", "period_s": 4, "baseline_s": 3, "timeout_s": 8, "wait_s": 1, "safety_margin_s": 1},
            "recursive": {"kind": "recursive", "timeout_s": 5, "wait_s": 1, "safety_margin_s": 1, "allow_recursion": True},
        }
    )

    live = run_live(scenario, record_decisions=True, work_dir=tmp_path)

    compared = 0
    for name, invocations in live.decisions.items():
        factory = program_factory(scenario.designs[name])
        for invocation_id, log in invocations:
            produced = replay(normalized(log), lambda context: factory(context, {}))
            assert normalized(produced) == normalized(log), (name, invocation_id)
            compared += 1
    kinds = {entry[1] for logs in live.decisions.values() for _, log in logs for entry in log if entry[0] == "request"}
    assert compared >= 4
    assert {"receive", "publish", "delete", "invoke_self"} <= kinds


def test_timeout_kill_makes_messages_late_not_lost(tmp_path):
    # The first PublishBatch stalls past the function timeout, so Lambda's timeout kills the
    # invocation with its batch received and not deleted. The batch reappears after the
    # visibility timeout and a later instance publishes it.
    scenario = tiny(duration_s=6, drain_s=16)
    moto = start_moto(tmp_path / "moto.log")
    try:
        with StallingProxy(moto.url or "", "PublishBatch", stall_count=1, stall_s=12) as proxy:
            live = run_live(scenario, endpoint=custom_endpoint(proxy.url, "us-east-1"), work_dir=tmp_path)
            stalled = proxy.stalled
    finally:
        moto.stop()

    summary = live.result.summary["designs"]["timer"]
    messages = live.result.messages
    assert stalled == 1
    assert summary["timeouts"] >= 1
    assert summary["undelivered"]["total"] == 0
    received_again = messages[messages["receive_count"] >= 2]
    assert len(received_again) >= 1
    assert (received_again["final_state"] == "delivered").all()


def test_killed_processes_lose_nothing(tmp_path):
    # Every invocation's process is killed with SIGKILL at a random moment of its run, often in
    # the middle of a batch. Whatever it had not deleted comes back.
    scenario = tiny(
        duration_s=8,
        drain_s=14,
        **{"lambda": {"idle_reclaim_s": 600, "async_dispatch_delay_ms": 5, "failure_probability": 1.0}},
        designs={"timer": {"kind": "timer", "period_s": 2, "baseline_s": 1.5, "timeout_s": 6, "wait_s": 1, "safety_margin_s": 1}},
    )

    live = run_live(scenario, work_dir=tmp_path)

    summary = live.result.summary["designs"]["timer"]
    undelivered = summary["undelivered"]
    assert summary["errors"] >= 3
    assert summary["delivered"] > 0
    assert undelivered["expired"] == 0
    assert undelivered["dlq"] == 0
    assert summary["delivered"] + undelivered["queued"] + undelivered["in_flight"] == summary["messages"]


@pytest.mark.parametrize("signal_name, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_interrupted_live_run_cleans_up(tmp_path, signal_name, status):
    import signal
    import time

    out = tmp_path / "out"
    command = [sys.executable, "-m", "sim", "run", "--engine", "live", str(REPOSITORY / "scenarios" / "live-smoke.toml"), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mark = f"DRAINSIM_TEST_MARK={os.environ['DRAINSIM_TEST_MARK']}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("sim.live.worker" in command for command in live_processes(mark)):
        time.sleep(0.2)
    started_workers = [command for command in live_processes(mark) if "sim.live.worker" in command]
    process.send_signal(getattr(signal, signal_name))
    _, stderr = process.communicate(timeout=60)

    assert started_workers, "no execution environment started within 60 s"
    assert process.returncode == status
    assert "no partial results were kept" in stderr
    assert "Traceback" not in stderr
    assert not out.exists() or not any(out.rglob("summary.json"))


def test_live_run_deletes_its_resources_and_hides_secrets(tmp_path):
    import boto3

    scenario = tiny(duration_s=3, drain_s=3)
    moto = start_moto(tmp_path / "moto.log")
    try:
        run_live(scenario, endpoint=moto, work_dir=tmp_path)
        clients = {
            name: boto3.client(name, endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="drainsim-local", aws_secret_access_key="drainsim-local")
            for name in ("sqs", "sns")
        }
        queues = clients["sqs"].list_queues().get("QueueUrls", [])
        topics = clients["sns"].list_topics().get("Topics", [])
    finally:
        moto.stop()

    assert queues == []
    assert topics == []
    for log in tmp_path.glob("*.log"):
        assert "drainsim-local" not in log.read_text(errors="replace"), log.name


def test_live_run_refuses_existing_queue(tmp_path, monkeypatch):
    import boto3

    from sim.errors import UserInputError
    from sim.live import services

    monkeypatch.setattr(services, "unique_run_tag", lambda: "fixedtag01")
    monkeypatch.setattr("sim.live.engine.unique_run_tag", lambda: "fixedtag01")
    moto = start_moto(tmp_path / "moto.log")
    try:
        sqs = boto3.client("sqs", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="drainsim-local", aws_secret_access_key="drainsim-local")
        existing = sqs.create_queue(QueueName="drainsim-fixedtag01-timer-queue")["QueueUrl"]
        with pytest.raises(UserInputError, match="will not touch"):
            run_live(tiny(), endpoint=moto, work_dir=tmp_path)
        remaining = sqs.list_queues().get("QueueUrls", [])
    finally:
        moto.stop()

    assert remaining == [existing]
