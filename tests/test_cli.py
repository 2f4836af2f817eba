"""The command line: help, one-line errors and exit codes, check-config, fire, log, sandbox.

Commands that talk to an Alertmanager run `main()` in a worker thread (it has its own event
loop) while the test's loop serves the stand-in on a free loopback port; the ones that run
until a signal, or whose "no traceback" promise is the point, run as real subprocesses.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from log_harness import T0, handoff_scene, live_incident, world

from oncall_tui.cli import main
from oncall_tui.clock import SystemClock
from oncall_tui.postmortem import timeline_markdown
from oncall_tui.sandbox.standin import StandinAlertmanager
from oncall_tui.store import Store
from oncall_tui.timeline import load_timeline
from oncall_tui.webhooks import WebhookServer

COMMANDS = ["demo", "sandbox", "serve", "fire", "check-config", "log", "handoff"]
PRESET = {
    "name": "payment-service down",
    "labels": {"alertname": "ServiceDown", "severity": "critical", "service": "payment-service"},
    "annotations": {"summary": "payment-service is down"},
}


def write_config(tmp_path: Path, url: str, **extra: object) -> Path:
    data = {
        "operator": {"name": "Test Operator", "email": "ops@example.com"},
        "alertmanagers": [{"name": "am-a", "url": url, "cluster": "test"}],
        "log": {"path": str(tmp_path / "log.db")},
        "test_alerts": [PRESET],
        **extra,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def standin() -> AsyncIterator[tuple[StandinAlertmanager, str]]:
    am = StandinAlertmanager(clock=SystemClock())
    server = WebhookServer(am.app, "127.0.0.1", 0)
    await server.start()
    try:
        yield am, f"http://{server.address}"
    finally:
        await server.stop()


async def run_main(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def run_process(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oncall_tui",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# -- help and errors --------------------------------------------------------------------------


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for command in [*COMMANDS, "log export", "--write-config", "--connect", "--read-only"]:
        assert command in text
    assert "--to alertmanager|pagerduty|opsgenie" in text


async def test_bad_config_names_file_and_key_without_traceback(tmp_path: Path) -> None:
    path = write_config(tmp_path, "not-a-url")
    code, out, err = await run_process("check-config", str(path))
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.count("\n") == 1
    assert str(path) in err
    assert "alertmanagers[0].url" in err
    assert "http://" in err  # what was expected


def test_missing_variable_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "alertmanagers:\n  - name: a\n    url: http://127.0.0.1:1\n"
        "    auth:\n      bearer_token: ${ONCALL_TEST_UNSET_TOKEN}\n",
        encoding="utf-8",
    )
    assert main(["--config", str(path), "check-config"]) == 2
    err = capsys.readouterr().err
    assert "ONCALL_TEST_UNSET_TOKEN" in err
    assert "alertmanagers[0].auth.bearer_token" in err


def test_no_config_anywhere_says_where_it_looked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config"]) == 2
    err = capsys.readouterr().err
    assert "config.yaml" in err
    assert "demo" in err


def test_check_config_summary_never_shows_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_AM_TOKEN", "s3cret-token-value")
    path = tmp_path / "c.yaml"
    path.write_text(
        "alertmanagers:\n  - name: prod-a\n    url: http://127.0.0.1:1\n"
        "    auth:\n      bearer_token: ${TEST_AM_TOKEN}\n"
        "webhooks:\n  listen: 127.0.0.1:9099\n  alertmanager_token: ${TEST_AM_TOKEN}\n",
        encoding="utf-8",
    )
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out
    assert f"{path}: valid" in out
    assert "prod-a: http://127.0.0.1:1" in out
    assert "bearer token" in out
    assert "token set" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["log", "export"], "log export: name an incident"),
        (["handoff", "--since", "soon"], "--since 'soon'"),
        (["fire", "--to", "pagerduty"], "no Events API key configured (pagerduty.routing_key)"),
        (["fire", "--to", "opsgenie"], "Opsgenie is not configured (opsgenie.api_key)"),
        (["fire", "--wait", "--to", "pagerduty"], "--wait follows an alert from Alertmanager"),
        (["fire", "no such preset"], "no test alert preset named 'no such preset'"),
        (["fire", "--label", "novalue"], "expected KEY=VALUE"),
    ],
)
def test_usage_errors_say_what_is_wrong_in_one_line(
    argv: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, f"http://127.0.0.1:{closed_port()}")
    assert main(["--config", str(path), *argv]) == 2
    captured = capsys.readouterr()
    assert words in captured.err
    assert captured.err.count("\n") == 1


def test_read_only_refuses_fire(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, f"http://127.0.0.1:{closed_port()}")
    assert main(["--read-only", "--config", str(path), "fire"]) == 2
    assert "read-only" in capsys.readouterr().err


# -- against a stand-in on loopback -----------------------------------------------------------


async def test_check_config_connect_reports_the_version(
    standin: tuple[StandinAlertmanager, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, standin[1])
    assert await run_main("check-config", str(path), "--connect") == 0
    out = capsys.readouterr().out
    assert "alertmanager am-a: ok, version 0.25.0, cluster disabled, 0 peers" in out


async def test_check_config_connect_to_nothing_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, f"http://127.0.0.1:{closed_port()}")
    assert await run_main("check-config", str(path), "--connect") == 1
    captured = capsys.readouterr()
    failed = [line for line in captured.out.splitlines() if "FAILED" in line]
    assert len(failed) == 1
    assert failed[0].startswith("alertmanager am-a: FAILED: ")
    assert "1 of 1 sources could not be reached" in captured.err
    assert "Traceback" not in captured.err


async def test_fire_a_preset_arrives_in_alertmanager(
    standin: tuple[StandinAlertmanager, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = standin[1]
    path = write_config(tmp_path, url)
    code = await run_main(
        "--config", str(path), "fire", "Payment-Service Down", "--label", "instance=pay-1"
    )
    assert code == 0
    assert "am-a: sent" in capsys.readouterr().out
    async with httpx.AsyncClient(timeout=5.0) as client:
        alerts = (await client.get(f"{url}/api/v2/alerts")).json()
    assert len(alerts) == 1
    assert alerts[0]["labels"] == {**PRESET["labels"], "instance": "pay-1"}  # type: ignore[dict-item]
    assert alerts[0]["annotations"]["summary"] == "payment-service is down"
    # What the operator did is in the log.
    assert await run_main("--config", str(path), "log", "--json", "--source", "operator") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["alert.fired"]


async def test_fire_to_an_unreachable_alertmanager_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, f"http://127.0.0.1:{closed_port()}")
    assert await run_main("--config", str(path), "fire", "--label", "alertname=X") == 1
    err = capsys.readouterr().err
    assert err.startswith("oncall-tui: am-a: not sent: ")
    assert "Traceback" not in err


async def test_log_json_filters_by_source_and_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:1")
    store = await Store.open(tmp_path / "log.db", clock=SystemClock())
    try:
        await store.append("alertmanager", "alert.firing", "firing: A", data={"n": 1})
        await store.append("operator", "action.done", "silenced A", actor="ops@example.com")
        await store.append(
            "alertmanager", "alert.firing", "long ago", at=datetime(2020, 1, 1, tzinfo=UTC)
        )
    finally:
        await store.close()
    assert await run_main("--config", str(path), "log", "--json", "--since", "1h") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["summary"] for r in rows] == ["firing: A", "silenced A"]
    assert rows[0]["data"] == {"n": 1}
    assert rows[1]["actor"] == "ops@example.com"
    code = await run_main("--config", str(path), "log", "--source", "operator", "--since", "1h")
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert "silenced A" in out[0]
    assert await run_main("--config", str(path), "log", "--since", "soon") == 2


def test_log_without_a_log_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:1")
    assert main(["--config", str(path), "log"]) == 1
    assert "no log yet" in capsys.readouterr().err
    assert not (tmp_path / "log.db").exists()


# -- sandbox as a real process ----------------------------------------------------------------


async def test_sandbox_writes_a_config_that_check_config_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written = tmp_path / "sandbox.yaml"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oncall_tui",
        "sandbox",
        "--standin",
        "--peers",
        "2",
        "--write-config",
        str(written),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        lines: list[str] = []
        while not any(line.startswith("Press Ctrl-C") for line in lines):
            raw = await asyncio.wait_for(process.stdout.readline(), timeout=30)
            assert raw, "sandbox exited early"
            lines.append(raw.decode().strip())
        assert f"Config written to: {written}" in lines
        assert written.stat().st_mode & 0o777 == 0o600
        assert await run_main("check-config", str(written), "--connect") == 0
        out = capsys.readouterr().out
        assert "alertmanager sandbox-a: ok" in out
        assert "alertmanager sandbox-b: ok" in out
        assert (
            sum(line.startswith("Alertmanager stand-in: http://127.0.0.1:") for line in lines) == 2
        )
        assert "test alerts: payment-service down" in out
    finally:
        process.send_signal(signal.SIGINT)
        err = await asyncio.wait_for(process.stderr.read(), timeout=30)
        code = await asyncio.wait_for(process.wait(), timeout=30)
    assert code == 130
    assert "Traceback" not in err.decode()


async def test_serve_logs_what_it_polls_and_stops_on_sigterm(
    standin: tuple[StandinAlertmanager, str], tmp_path: Path
) -> None:
    am, url = standin
    am.put_alerts([{"labels": PRESET["labels"], "annotations": PRESET["annotations"]}])
    path = write_config(tmp_path, url, webhooks={"listen": f"127.0.0.1:{closed_port()}"})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oncall_tui",
        "serve",
        "--config",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        lines: list[str] = []
        while not any(line.startswith("Polling") for line in lines):
            raw = await asyncio.wait_for(process.stdout.readline(), timeout=30)
            assert raw, "serve exited early"
            lines.append(raw.decode().strip())
        assert any(line.startswith("Webhooks: listening on http://127.0.0.1:") for line in lines)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while True:
            store = await Store.open(tmp_path / "log.db", clock=SystemClock())
            try:
                kinds = [e.kind for e in await store.entries(sources=["alertmanager"])]
            finally:
                await store.close()
            if "alert.firing" in kinds:
                break
            assert loop.time() < deadline, "serve did not log the firing alert"
            await asyncio.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        err = await asyncio.wait_for(process.stderr.read(), timeout=30)
        code = await asyncio.wait_for(process.wait(), timeout=30)
    assert code == 0
    assert "Traceback" not in err.decode()


async def test_commands_other_than_the_dashboard_never_load_textual(tmp_path: Path) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:1")
    script = (
        "import sys\n"
        "from oncall_tui.cli import main\n"
        f"assert main(['check-config', {str(path)!r}]) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    assert out.decode().strip().splitlines()[-1] == "[]"


# -- fire --to pagerduty ----------------------------------------------------------------------


async def test_fire_to_pagerduty_triggers_an_event_and_prints_its_dedup_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    routing_key = "R0123456789abcdef0123456789abcde"
    received: list[dict[str, object]] = []

    async def enqueue(request: Request) -> JSONResponse:
        event = json.loads(await request.body())
        received.append(event)
        if event.get("routing_key") != routing_key:
            return JSONResponse({"status": "invalid event", "message": "bad key"}, 400)
        reply = {"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]}
        return JSONResponse(reply, 202)

    app = Starlette(routes=[Route("/v2/enqueue", enqueue, methods=["POST"])])
    server = WebhookServer(app, "127.0.0.1", 0)
    await server.start()
    try:
        pagerduty = {"routing_key": routing_key, "events_url": f"http://{server.address}"}
        path = write_config(tmp_path, "http://127.0.0.1:1", pagerduty=pagerduty)
        argv = ["fire", "payment-service down", "--to", "pagerduty", "--label", "instance=pay-1"]
        code = await run_main("--config", str(path), *argv)
    finally:
        await server.stop()
    assert code == 0
    [event] = received
    assert event["event_action"] == "trigger"
    assert event["payload"] == {
        "summary": "payment-service is down",
        "source": "pay-1",
        "severity": "critical",
        "timestamp": event["payload"]["timestamp"],  # type: ignore[index]
        "component": "payment-service",
        "class": "ServiceDown",
        "custom_details": {
            "labels": {**PRESET["labels"], "instance": "pay-1"},  # type: ignore[dict-item]
            "annotations": PRESET["annotations"],
            "fired_by": "ops@example.com",
        },
    }
    out = capsys.readouterr().out
    assert f"dedup_key: {event['dedup_key']}" in out
    assert routing_key not in out
    assert await run_main("--config", str(path), "log", "--json", "--source", "operator") == 0
    [entry] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert entry["kind"] == "alert.fired"
    assert entry["data"]["dedup_key"] == event["dedup_key"]


async def test_fire_to_an_unreachable_pagerduty_exits_1_without_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    routing_key = "R0123456789abcdef0123456789abcde"
    pagerduty = {"routing_key": routing_key, "events_url": f"http://127.0.0.1:{closed_port()}"}
    path = write_config(tmp_path, "http://127.0.0.1:1", pagerduty=pagerduty)
    assert await run_main("--config", str(path), "fire", "--to", "pagerduty") == 1
    err = capsys.readouterr().err
    assert err.startswith("oncall-tui: pagerduty: not sent: connection refused")
    assert routing_key not in err


# -- log export and handoff, on a log a real engine wrote ----------------------------------------


async def test_log_export_handoff_and_filters_read_what_the_engine_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    async with world(tmp_path) as w:
        incident = await live_incident(w)
        await handoff_scene(w)
        w.sandbox.write_config(config, log_path=w.config.log.file)
        expected = timeline_markdown(await load_timeline(w.store, incident.id))
    base = ("--config", str(config))

    assert await run_main(*base, "log", "export", str(incident.number), "--format", "markdown") == 0
    out = capsys.readouterr().out
    assert out == expected
    assert "- Time to acknowledge: 7m 00s" in out
    assert "- Time to resolve: 31m 00s" in out
    target = tmp_path / "postmortem.md"
    assert await run_main(*base, "log", "export", incident.key, "--output", str(target)) == 0
    assert target.read_text(encoding="utf-8") == expected
    assert await run_main(*base, "log", "export", "P404") == 1
    assert capsys.readouterr().err == "oncall-tui: log export: no incident 'P404' in the log\n"

    # The shift reaching back to T0, whenever the test runs (the CLI's clock is the real one).
    hours = int((datetime.now(UTC) - T0).total_seconds() // 3600) + 2
    assert await run_main(*base, "handoff", "--since", f"{hours}h") == 0
    handoff = capsys.readouterr().out
    assert "## What fired (3)" in handoff
    assert "acknowledged by Demo Operator: #1" in handoff
    # Still open: from the snapshot the engine saved when it stopped, said to be from then.
    assert "_As last seen at 2026-11-23 02:40 UTC._" in handoff
    assert "- [warning] HighLatency (search): p99 latency above 1s" in handoff
    assert "\n- Payments, level 1: " in handoff.split("## On call next")[1]

    since = f"{hours}h"
    kinds = ("--kind", "incident.acknowledged", "--kind", "incident.resolved")
    assert await run_main(*base, "log", "--since", since, *kinds, "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["kind"] for r in rows] == ["incident.acknowledged", "incident.resolved"]
    assert rows[0]["data"]["key"] == incident.key
    assert await run_main(*base, "log", "--since", since, "--text", "DiskFull", "--json") == 0
    lines = capsys.readouterr().out.splitlines()
    # Found in summaries and in data: the request, its outcome, and what Alertmanager then showed.
    found = sorted(json.loads(line)["kind"] for line in lines)
    assert found == ["action.done", "action.requested", "silence.created"]
    assert all("DiskFull" in line for line in lines)


def test_handoff_without_a_log_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:1")
    assert main(["--config", str(path), "handoff"]) == 1
    assert capsys.readouterr().err == f"oncall-tui: handoff: no log yet at {tmp_path / 'log.db'}\n"
    assert main(["--config", str(path), "log", "export", "P1"]) == 1
    assert "no log yet" in capsys.readouterr().err


# -- dashboard start-up ---------------------------------------------------------------------


async def test_dashboard_whose_engine_fails_to_start_ends_with_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The engine starts after the first frame (from the restored snapshot); if that start
    fails, the dashboard closes and the error is its exit message, as before the split."""
    from oncall_tui.engine import Engine
    from oncall_tui.store import StoreError
    from oncall_tui.ui.app import OncallApp

    shown: list[bool] = []
    run_async = OncallApp.run_async

    async def headless(self: OncallApp) -> None:
        await run_async(self, headless=True, size=(100, 30))

    async def failing_start(self: Engine) -> None:
        shown.append(self.store is not None)  # restore() opened the log before the frame
        raise StoreError("the log went away")

    monkeypatch.setattr(OncallApp, "run_async", headless)
    monkeypatch.setattr(Engine, "start", failing_start)
    path = write_config(tmp_path, "http://127.0.0.1:1")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # the dashboard logs to a file of its own
    try:
        code = await asyncio.to_thread(main, ["--config", str(path)])
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:], root.level = handlers, level
    assert shown == [True]
    assert code == 1
    assert "the log went away" in capsys.readouterr().err
