"""The waterfall of a test alert's trace and the pipeline panel of one alert group.

Snapshots (80x24 and 160x48, looked at as PNG before acceptance) render a finished trace with a
broken stage and a group's chain, built from real Correlator learning and model objects. The
Pilot tests follow a live trace against the real Alertmanager and the fake PagerDuty (the
screen fills in stage by stage and logs the result), and keep the panel current as a snapshot
changes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from am_harness import am_binary
from rich.console import Console
from test_trace import CRITICAL, pipeline
from textual.app import App
from textual.widgets import Static

from oncall_tui.clock import FrozenClock, SystemClock
from oncall_tui.config import Config, validate_config
from oncall_tui.engine.correlation import Correlator, group_dedup_key
from oncall_tui.engine.trace_result import BROKEN, OK, SKIPPED, Stage, Trace
from oncall_tui.models import Alert, AlertState, Incident, Snapshot, StatusIncident
from oncall_tui.store import Store
from oncall_tui.trace_cli import own_listener
from oncall_tui.ui.pipeline import (
    PipelineScreen,
    TraceScreen,
    Waterfall,
    alert_chain,
    chain_table,
    incident_pipeline_section,
    waterfall_table,
)

__all__ = ["am_binary"]

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
GROUP_LABELS = {"alertname": "ServiceDown", "service": "payment-service"}
GROUP_KEY = '{}/{severity="critical"}:{alertname="ServiceDown", service="payment-service"}'


def make_config(tmp_path: Path) -> Config:
    data: dict[str, Any] = {
        "operator": {"name": "Nina Patel", "email": "nina@example.com"},
        "alertmanagers": [{"name": "prod-a", "url": "http://prod-a.invalid:9093"}],
        "webhooks": {"enabled": False},
        "log": {"path": str(tmp_path / "log.db")},
        "pagerduty": {"api_token": "t0ken"},
        "statuspage": {
            "api_key": "k3y",
            "page_id": "page1",
            "components": {"payment-service": "cmp-pay"},
            "automation": {"enabled": True},
        },
    }
    return validate_config(data, "test.yaml")


def alert(instance: str, minutes_ago: float, state: AlertState = AlertState.ACTIVE) -> Alert:
    at = START - timedelta(minutes=minutes_ago)
    return Alert(
        fingerprint=f"fp-{instance}",
        labels={**GROUP_LABELS, "severity": "critical", "instance": instance},
        annotations={"summary": "payment-service is down"},
        starts_at=at,
        updated_at=at,
        ends_at=None,
        state=state,
        receivers=("critical",),
        cluster="prod",
    )


def scene() -> tuple[Snapshot, Correlator, Alert]:
    first, second = alert("pay-1:8080", 12), alert("pay-2:8080", 4)
    correlator = Correlator()
    # The first notification carried only the first alert; the second joined the open group.
    correlator.record_group(
        GROUP_KEY, [first.fingerprint], receiver="critical", group_labels=GROUP_LABELS
    )
    correlator.record_group(
        GROUP_KEY, [second.fingerprint], receiver="critical", group_labels=GROUP_LABELS
    )
    incident = Incident(
        id="PABC123",
        system="pagerduty",
        title="[FIRING:1] ServiceDown payment-service",
        status="acknowledged",
        urgency="high",
        service="payment-service",
        assignee="Bob Smith",
        escalation_level=2,
        created_at=START - timedelta(minutes=11, seconds=50),
        dedup_key=group_dedup_key(GROUP_KEY),
        number=42,
        acknowledged_by=("Bob Smith",),
    )
    public = StatusIncident(
        id="sp1",
        name="Payments degraded",
        status="investigating",
        impact="major",
        updated_at=START - timedelta(minutes=9),
        latest_update="We are investigating failed card payments.",
        component_ids=("cmp-pay",),
    )
    snapshot = Snapshot(
        taken_at=START,
        alerts=(first, second),
        incidents=(incident,),
        status_incidents=(public,),
    )
    return snapshot, correlator, first


def finished_trace() -> Trace:
    def at(seconds: float) -> datetime:
        return START + timedelta(seconds=seconds)

    stages = (
        Stage("accepted", OK, at(0.02), 0.02, "1 of 1 peers; receivers critical"),
        Stage("routed", OK, at(0.02), 0.02, 'route {}/{severity="critical"} -> critical'),
        Stage("notified", OK, at(0.41), 0.41, f"receiver critical, group {GROUP_KEY}"),
        Stage("pagerduty", BROKEN, cause="receiver error: 6 failed PagerDuty requests"),
        Stage("paged", BROKEN, cause="receiver error: 6 failed PagerDuty requests"),
        Stage("opsgenie", SKIPPED, detail="not routed to Opsgenie"),
        Stage("statuspage", OK, at(2.5), 2.5, "'Payments degraded' investigating (major)"),
    )
    labels = {**GROUP_LABELS, "severity": "critical", "trace_id": "5f37c887"}
    return Trace("5f37c887", labels, START, stages, GROUP_KEY, finished=True)


class Host(App[None]):
    """Shows one screen over an empty base, as the dashboard would push it."""

    def __init__(self, screen_factory: Any) -> None:
        super().__init__()
        self._factory = screen_factory

    def on_mount(self) -> None:
        self.push_screen(self._factory())


def text_of(renderable: Any, width: int = 160) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


# -- plain rendering --------------------------------------------------------------------------


def test_waterfall_rows_say_latency_and_cause() -> None:
    text = text_of(waterfall_table(finished_trace(), bar_width=20))
    lines = text.splitlines()
    assert "0.41s" in lines[2]
    assert "█" in lines[2]
    assert "receiver error: 6 failed PagerDuty requests" in lines[3]
    assert "not routed to Opsgenie" in lines[5]
    # The bar of the last stage reaches the right end of the scale.
    assert lines[6].index("█") > lines[2].index("█")


def test_chain_links_group_incident_members_and_public_incident(tmp_path: Path) -> None:
    snapshot, correlator, first = scene()
    chain = alert_chain(first, snapshot, correlator, make_config(tmp_path))
    assert chain.group_key == GROUP_KEY
    systems = [link.system for link in chain.links]
    assert systems == ["Alertmanager", "PagerDuty", "Opsgenie", "Statuspage"]
    group, incident, opsgenie, public = chain.links
    assert len(group.members) == 2
    assert incident.state == "acknowledged"
    # The alert that joined without a page is shown under the incident it was folded into.
    assert any("pay-2:8080" in m for m in incident.members)
    assert opsgenie.detail == "not configured"
    assert public.state == "investigating"
    text = text_of(chain_table(chain, START))
    assert "+10s" in text  # the incident, 10 s after the group's first alert
    assert "acknowledged by Bob Smith" in text


# -- Pilot ------------------------------------------------------------------------------------


async def test_pipeline_panel_follows_the_snapshot(tmp_path: Path) -> None:
    snapshot, correlator, first = scene()
    config = make_config(tmp_path)
    clock = FrozenClock(START)
    app = Host(lambda: PipelineScreen(first, snapshot, correlator, config, clock))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PipelineScreen)
        before = text_of(screen.query_one("#pipeline-chain", Static).content, 120)
        assert "#42" in before
        changed = Snapshot(
            taken_at=START,
            alerts=snapshot.alerts,
            incidents=(),
            status_incidents=snapshot.status_incidents,
        )
        screen.update_snapshot(changed)
        await pilot.pause()
        text = text_of(screen.query_one("#pipeline-chain", Static).content, 120)
        assert "no incident linked to this group" in text


@pytest.mark.alertmanager
async def test_trace_screen_fills_in_live_and_logs_the_result(
    am_binary: str, tmp_path: Path
) -> None:
    async with pipeline(am_binary, tmp_path) as (config, _fake):
        store = await Store.open(config.log.file, clock=SystemClock())
        try:
            server = await own_listener(config, store, SystemClock())
            screen = Recording(config, SystemClock(), log=store, labels=CRITICAL, timeout=15)
            app = Host(lambda: screen)
            async with app.run_test(size=(160, 40)) as pilot:
                for _ in range(300):
                    await pilot.pause(0.05)
                    if screen.trace is not None and screen.trace.finished:
                        break
                assert screen.trace is not None
                assert screen.trace.finished
                assert screen.trace.ok, screen.trace
                waterfall = screen.query_one(Waterfall)
                text = text_of(waterfall.render())
                assert "Alice Chen" in text or "paged" in text
                heading = text_of(screen.query_one("#trace-heading", Static).content)
                assert "pipeline OK" in heading
            if server is not None:
                await server.stop()
            [entry] = await store.entries(kinds=["trace.passed"])
            assert entry.data["trace_id"] == screen.trace.trace_id
        finally:
            await store.close()
    assert screen.shown[0] == 0, "the waterfall shows the fired alert waiting first"
    assert screen.shown[-1] == 5


class Recording(TraceScreen):
    """Remembers how many stages were done at each redraw."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shown: list[int] = []

    def _show(self, trace: Trace) -> None:
        self.shown.append(sum(1 for s in trace.stages if s.status == OK))
        super()._show(trace)


# -- snapshots --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_waterfall_snapshot(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    config = make_config(tmp_path)
    app = Host(lambda: TraceScreen(config, FrozenClock(START), trace=finished_trace()))
    assert snap_compare(app, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_pipeline_panel_snapshot(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    snapshot, correlator, first = scene()
    config = make_config(tmp_path)
    clock = FrozenClock(START)
    app = Host(lambda: PipelineScreen(first, snapshot, correlator, config, clock))
    assert snap_compare(app, terminal_size=size)


def test_incident_details_section_is_the_chain_of_its_group(tmp_path: Path) -> None:
    snapshot, correlator, _first = scene()
    config = make_config(tmp_path)
    [incident] = snapshot.incidents
    section = incident_pipeline_section(incident, snapshot, correlator, config, START)
    assert section is not None
    text = text_of(section)
    assert text.splitlines()[0].strip() == "Pipeline"
    assert "#42" in text
    assert "Payments degraded" in text
    stranger = replace(incident, dedup_key="0" * 64)
    assert incident_pipeline_section(stranger, snapshot, correlator, config, START) is None
