"""Secrets never leave the config: the whole demo with recognisable secret values, then a search
of the log file (and its WAL), everything printed, every log record and every rendered screen.

The sandbox (real Alertmanager when installed, fake PagerDuty paging and sending signed
webhooks, fake Opsgenie and Statuspage) runs with every throwaway secret replaced by a marked
one, and the Alertmanager entries get a marked bearer token. The dashboard shows every view,
the help and details while alerts and an incident come in, the operator fires a test alert
and acknowledges the incident; then the CLI commands run
on the same config and log (check-config with --connect, log, log --json, handoff, fire) and
`serve` runs as a subprocess. No marked value may appear anywhere but in the config file.
"""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from faults_harness import ServeProcess, serving, wait_until

from oncall_tui.cli import main
from oncall_tui.clock import SystemClock
from oncall_tui.config import validate_config
from oncall_tui.engine import ActionRequest, Engine
from oncall_tui.models import ActionStatus
from oncall_tui.sandbox.fake_statuspage import FakeStatuspage
from oncall_tui.sandbox.runner import Sandbox

SECRETS = {
    "alertmanager webhook token": "SCANME-am-webhook-token-5f1e",
    "alertmanager bearer": "SCANME-am-bearer-credential-77a0",
    "pagerduty api token": "SCANME-pd-api-token-91bc",
    "pagerduty routing key": "SCANMEpdroutingkey00000000000042",
    "pagerduty webhook secret": "SCANME-pd-webhook-secret-d00d",
    "statuspage api key": "SCANME-sp-api-key-4b4b",
    "opsgenie api key": "SCANME-og-api-key-c3c3",
}
SP_PAGE = "scanpage0001"
SP_COMPONENTS = {"payment-service": "cmp0payments01", "checkout": "cmp0checkout01"}


def _found(text: str, where: str) -> list[str]:
    return [f"{name} in {where}" for name, value in SECRETS.items() if value in text]


def _config_data(sandbox: Sandbox, log_path: Path, statuspage_url: str) -> dict[str, Any]:
    data = sandbox.config_data(log_path=log_path)
    for am in data["alertmanagers"]:
        am["auth"] = {"bearer_token": SECRETS["alertmanager bearer"]}
    # A sandbox without its own fakes gets ours (Statuspage) or a key for a closed port.
    data.setdefault(
        "statuspage",
        {
            "api_key": SECRETS["statuspage api key"],
            "page_id": SP_PAGE,
            "api_url": statuspage_url + "/v1",
            "components": SP_COMPONENTS,
        },
    )
    data.setdefault(
        "opsgenie", {"api_key": SECRETS["opsgenie api key"], "api_url": "http://127.0.0.1:9"}
    )
    return data


def _mark(sandbox: Sandbox) -> None:
    """Every throwaway secret of the sandbox, replaced by a marked one before it starts."""
    marked = {
        "webhook_token": "alertmanager webhook token",
        "pagerduty_token": "pagerduty api token",
        "pagerduty_routing_key": "pagerduty routing key",
        "pagerduty_webhook_secret": "pagerduty webhook secret",
        "statuspage_api_key": "statuspage api key",
        "opsgenie_api_key": "opsgenie api key",
    }
    for attribute, name in marked.items():
        if hasattr(sandbox, attribute):
            setattr(sandbox, attribute, SECRETS[name])


async def test_no_secret_in_the_log_output_or_screens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from oncall_tui.ui.app import make_app

    caplog.set_level(logging.DEBUG)
    clock = SystemClock()
    log_path = tmp_path / "state" / "log.db"
    sandbox = Sandbox(
        clock=clock,
        workdir=tmp_path / "sandbox",
        log_path=log_path,
        scenario_interval=0.5,
        pagerduty_time_scale=600.0,
    )
    _mark(sandbox)
    statuspage = FakeStatuspage(
        clock=clock,
        api_key=SECRETS["statuspage api key"],
        page_id=SP_PAGE,
        components=SP_COMPONENTS,
    )
    screens: dict[str, str] = {}
    config_path = tmp_path / "config.yaml"
    async with serving(statuspage.app) as sp_url, sandbox:
        data = _config_data(sandbox, log_path, sp_url)
        config_path.write_text(yaml.safe_dump(data), encoding="utf-8")
        config = validate_config(data, str(config_path))
        engine = Engine(config, clock=clock)
        await engine.start()
        try:
            assert (engine.webhook_address or "").startswith("127.0.0.1:")
            fired = await engine.act(
                ActionRequest(
                    "alert.fire",
                    "",
                    {
                        "labels": dict(config.test_alerts[0].labels),
                        "annotations": dict(config.test_alerts[0].annotations),
                        "to": "alertmanager",
                    },
                )
            )
            assert fired.status == ActionStatus.DONE, fired.result
            await wait_until(
                lambda: engine.snapshot.incidents and engine.snapshot.alerts,
                within=30,
                what="alerts and a PagerDuty incident",
            )
            incident = engine.snapshot.incidents[0]
            acked = await engine.act(ActionRequest("incident.acknowledge", incident.key))
            assert acked.status == ActionStatus.DONE, acked.result
            await wait_until(
                lambda: engine.store.entries(sources=["pagerduty"], kinds=["webhook"]),
                what="a signed PagerDuty webhook in the log",
            )
            app = make_app(config, engine, clock)
            async with app.run_test(size=(160, 48)) as pilot:
                await pilot.pause()
                for key, name in [
                    ("1", "alerts"),
                    ("2", "incidents"),
                    ("3", "oncall"),
                    ("4", "statuspage"),
                    ("5", "silences"),
                    ("6", "log"),
                ]:
                    await pilot.press(key)
                    await pilot.pause()
                    screens[name] = app.export_screenshot()
                    if name in ("alerts", "incidents"):
                        await pilot.press("enter")
                        await pilot.pause()
                        screens[f"{name} details"] = app.export_screenshot()
                        await pilot.press("escape")
                await pilot.press("question_mark")
                await pilot.pause()
                screens["help"] = app.export_screenshot()
                await pilot.press("escape")
                await engine.stop()  # nothing may reach the app while it tears down (reported)
                for timer in list(app._timers):
                    if timer.name == "clock-tick":
                        timer.stop()
                await pilot.pause()
        finally:
            await engine.stop()

        # The CLI on the same config and log, while the sandbox still runs.
        codes: dict[str, int] = {}
        for args in [
            ["check-config", str(config_path)],
            ["check-config", str(config_path), "--connect"],
            ["log", "--config", str(config_path), "--since", "1h"],
            ["log", "--config", str(config_path), "--since", "1h", "--json"],
            ["handoff", "--config", str(config_path)],
            ["fire", "--config", str(config_path), "--label", "alertname=ScanProbe"],
        ]:
            # In a thread: the CLI runs its own event loop.
            name = args[0] + (" --connect" if "--connect" in args else "")
            codes[name] = await asyncio.to_thread(main, args)
        serve = ServeProcess(config_path, tmp_path)
        await serve.start()
        serve_code = await serve.stop()
    printed = capsys.readouterr()

    assert codes["check-config"] == 0, printed
    assert codes["log"] == 0, printed
    assert codes["fire"] == 0, printed
    assert serve_code == 0, serve.output()
    assert len(screens) == 9
    problems: list[str] = []
    for name, svg in screens.items():
        problems += _found(svg, f"the {name} screen")
    problems += _found(printed.out, "stdout") + _found(printed.err, "stderr")
    problems += _found(serve.output(), "serve's output")
    problems += _found(caplog.text, "log records")
    for record in caplog.records:
        problems += _found(repr(record.args), "log record arguments")
    files = sorted(p for p in log_path.parent.iterdir() if p.is_file())
    assert log_path in files
    for path in files:
        problems += _found(path.read_bytes().decode("utf-8", "replace"), path.name)
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, f"{path.name} has mode {oct(mode)}"
    assert not problems, problems
    # The scan is only worth something if the secrets were really in use and the log is full.
    written = config_path.read_text(encoding="utf-8")
    assert all(value in written for value in SECRETS.values())
    assert log_path.stat().st_size > 0
    assert "ScanProbe" in (await _log_text(log_path))


async def _log_text(path: Path) -> str:
    from oncall_tui.store import Store

    store = await Store.open(path, clock=SystemClock())
    try:
        return "\n".join(e.summary for e in await store.entries(limit=0))
    finally:
        await store.close()


def test_listener_binds_loopback_unless_configured() -> None:
    config = validate_config({"alertmanagers": [{"name": "am", "url": "http://am:9093"}]})
    assert config.webhooks.host == "127.0.0.1"
