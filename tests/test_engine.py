"""The engine against the Alertmanager stand-in served in-process: polling, the log, the restored
snapshot, the outbox across an outage and a restart, read-only mode and notifications.

The stand-in is checked against the real binary in test_standin.py; the engine's behaviour with
the real Alertmanager (webhook push, HA pair) is in test_engine_alertmanager.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from oncall_tui.clock import FrozenClock
from oncall_tui.config import Config, load_config_text
from oncall_tui.engine import ActionRequest, Engine
from oncall_tui.events import ActionChanged, AlertsRaised, EngineEvent, SnapshotChanged
from oncall_tui.models import ActionStatus, AlertState, SilenceState
from oncall_tui.sandbox.standin import StandinAlertmanager
from oncall_tui.store import Store

START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


class SwitchableTransport(httpx.AsyncBaseTransport):
    """Routes to the stand-in's ASGI app, or fails to connect while `down` is set."""

    def __init__(self, app: object) -> None:
        self._inner = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        self.down = False
        self.requests: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return await self._inner.handle_async_request(request)


def make_config(tmp_path: Path, *, read_only: bool = False) -> Config:
    text = f"""
operator: {{name: Test Operator, email: ops@example.com}}
alertmanagers: [{{name: am-a, url: "http://am-a.invalid:9093"}}]
webhooks: {{enabled: false}}
poll: {{alerts: 60s}}
log: {{path: "{tmp_path / "log.db"}"}}
notify: {{min_severity: critical}}
read_only: {str(read_only).lower()}
"""
    return load_config_text(text, "test.yaml", {})


def alert(name: str, severity: str = "critical", **labels: str) -> dict[str, object]:
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": f"{name} is firing"},
    }


async def eventually(check: Callable[[], bool | Awaitable[bool]], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.clock = FrozenClock(START)
        self.standin = StandinAlertmanager(clock=self.clock)
        self.transport = SwitchableTransport(self.standin.app)
        self.http = httpx.AsyncClient(transport=self.transport, timeout=5.0)
        self.events: list[EngineEvent] = []
        self.engines: list[Engine] = []

    async def engine(self, *, read_only: bool = False, start: bool = True) -> Engine:
        store = await Store.open(self.tmp_path / "log.db", clock=self.clock)
        engine = Engine(
            make_config(self.tmp_path, read_only=read_only),
            clock=self.clock,
            store=store,
            http=self.http,
            listen_webhooks=False,
        )
        engine.subscribe(self.events.append)
        await (engine.start() if start else engine.restore())
        self.engines.append(engine)
        return engine

    async def stop(self, engine: Engine) -> None:
        store = engine.store
        await engine.stop()
        await store.close()
        self.engines.remove(engine)

    async def close(self) -> None:
        for engine in list(self.engines):
            await self.stop(engine)
        await self.http.aclose()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = Rig(tmp_path)
    try:
        yield rig
    finally:
        await rig.close()


async def test_first_poll_fills_the_snapshot_and_logs_what_fired(rig: Rig) -> None:
    rig.standin.put_alerts([alert("DiskFull", service="db"), alert("Slow", "warning")])
    engine = await rig.engine()
    await eventually(lambda: len(engine.snapshot.alerts) == 2)

    by_name = {a.alertname: a for a in engine.snapshot.alerts}
    assert by_name["DiskFull"].state == AlertState.ACTIVE
    assert by_name["DiskFull"].cluster == "am-a"
    health = engine.snapshot.health_of("am-a")
    assert health is not None
    assert health.reachable is True
    entries = await engine.log_entries(kinds=["alert.firing"])
    assert sorted(e.data["labels"]["alertname"] for e in entries) == ["DiskFull", "Slow"]
    # Alerts already firing at start-up are not news: no notification for them.
    assert not [e for e in rig.events if isinstance(e, AlertsRaised)]


async def test_new_critical_alert_raises_a_notification_and_resolution_is_logged(rig: Rig) -> None:
    engine = await rig.engine()
    await eventually(lambda: engine.snapshot.health_of("am-a").reachable is True)  # type: ignore[union-attr]
    rig.standin.put_alerts([alert("PaymentsDown", service="payments"), alert("Cpu", "warning")])
    engine.refresh_now()
    await eventually(lambda: any(isinstance(e, AlertsRaised) for e in rig.events))
    raised = [e for e in rig.events if isinstance(e, AlertsRaised)]
    assert [a.alertname for e in raised for a in e.alerts] == ["PaymentsDown"]

    ends = rig.clock.now().isoformat()
    rig.standin.put_alerts([{**alert("PaymentsDown", service="payments"), "endsAt": ends}])
    rig.clock.advance(1)
    engine.refresh_now()

    async def resolved_logged() -> bool:
        return bool(await engine.log_entries(kinds=["alert.resolved"]))

    await eventually(resolved_logged)
    assert [a.alertname for a in engine.snapshot.alerts] == ["Cpu"]


async def test_unreachable_alertmanager_keeps_alerts_and_marks_them_stale(rig: Rig) -> None:
    rig.standin.put_alerts([alert("DiskFull")])
    engine = await rig.engine()
    await eventually(lambda: len(engine.snapshot.alerts) == 1)

    rig.transport.down = True
    rig.clock.advance(30)
    engine.refresh_now()
    await eventually(lambda: engine.snapshot.health_of("am-a").reachable is False, within=15)  # type: ignore[union-attr]
    health = engine.snapshot.health_of("am-a")
    assert health is not None
    assert health.stale_since is not None
    assert health.error
    assert [a.alertname for a in engine.snapshot.alerts] == ["DiskFull"]
    downs = await engine.log_entries(kinds=["source.down"])
    assert len(downs) == 1

    rig.transport.down = False
    engine.refresh_now()
    await eventually(lambda: engine.snapshot.health_of("am-a").reachable is True)  # type: ignore[union-attr]
    assert await engine.log_entries(kinds=["source.up"])


async def test_restart_shows_the_last_snapshot_as_restored_until_the_first_poll(rig: Rig) -> None:
    rig.standin.put_alerts([alert("DiskFull"), alert("Cpu", "warning")])
    engine = await rig.engine()
    await eventually(lambda: len(engine.snapshot.alerts) == 2)
    await rig.stop(engine)

    rig.transport.down = True
    seen: list[SnapshotChanged] = []
    rig.events.clear()
    engine = await rig.engine()
    seen = [e for e in rig.events if isinstance(e, SnapshotChanged)]
    assert seen
    assert seen[0].snapshot.restored is True
    assert len(seen[0].snapshot.alerts) == 2
    assert engine.snapshot.restored is True

    rig.transport.down = False
    engine.refresh_now()
    await eventually(lambda: not engine.snapshot.restored)
    assert len(engine.snapshot.alerts) == 2
    # The restart itself is not a change: nothing is logged as newly firing.
    firing = await engine.log_entries(kinds=["alert.firing"])
    assert len(firing) == 2


async def test_restore_alone_shows_the_last_snapshot_and_an_early_action_waits_for_start(
    rig: Rig,
) -> None:
    """What the dashboard does before its first frame: restore() shows the last snapshot and
    contacts nothing; a key pressed before start() completes is recorded at once and carried
    out once the engine has started."""
    rig.standin.put_alerts([alert("DiskFull")])
    engine = await rig.engine()
    await eventually(lambda: len(engine.snapshot.alerts) == 1)
    await rig.stop(engine)

    rig.events.clear()
    rig.transport.requests.clear()
    engine = await rig.engine(start=False)
    assert engine.snapshot.restored is True
    assert [a.alertname for a in engine.snapshot.alerts] == ["DiskFull"]
    assert [e for e in rig.events if isinstance(e, SnapshotChanged)]
    assert rig.transport.requests == []

    request = ActionRequest(
        "silence.create",
        "",
        {
            "cluster": "am-a",
            "matchers": ['alertname="DiskFull"'],
            "duration_seconds": 600,
            "comment": "pressed before the engine started",
        },
    )
    early = asyncio.create_task(engine.act(request))
    await eventually(lambda: any(isinstance(e, ActionChanged) for e in rig.events))
    pending = await engine.store.pending_actions()
    assert [a.kind for a in pending] == ["silence.create"]
    assert not early.done()
    assert rig.transport.requests == []

    await engine.start()
    done = await asyncio.wait_for(early, 5)
    assert done.status == ActionStatus.DONE, done.result
    assert len(rig.standin._silences) == 1


async def test_stopping_while_a_poll_is_being_logged_loses_no_entry(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.standin.put_alerts([alert("DiskFull"), alert("Cpu", "warning")])
    writing = asyncio.Event()
    may_write = asyncio.Event()
    append_many = Store.append_many

    async def slow_append_many(store: Store, entries: Any) -> int:
        writing.set()
        await may_write.wait()
        return await append_many(store, entries)

    monkeypatch.setattr(Store, "append_many", slow_append_many)
    engine = await rig.engine()
    await asyncio.wait_for(writing.wait(), 5)
    stopping = asyncio.create_task(rig.stop(engine))
    await asyncio.sleep(0.05)  # the stop has cancelled the poll by now
    may_write.set()
    await asyncio.wait_for(stopping, 10)

    store = await Store.open(rig.tmp_path / "log.db", clock=rig.clock)
    try:
        firing = await store.entries(kinds=["alert.firing"])
    finally:
        await store.close()
    assert sorted(e.data["labels"]["alertname"] for e in firing) == ["Cpu", "DiskFull"]


async def test_silence_taken_during_an_outage_is_sent_once_after_a_restart(rig: Rig) -> None:
    rig.standin.put_alerts([alert("DiskFull", service="db")])
    engine = await rig.engine()
    await eventually(lambda: len(engine.snapshot.alerts) == 1)

    rig.transport.down = True
    request = ActionRequest(
        "silence.create",
        "",
        {
            "cluster": "am-a",
            "matchers": ['alertname="DiskFull"', 'service="db"'],
            "duration_seconds": 3600,
            "comment": "disk cleanup running",
        },
    )
    action = await engine.act(request)
    assert action.status == ActionStatus.PENDING
    assert (await engine.store.get_action(action.id)) is not None
    await rig.stop(engine)

    rig.transport.down = False
    engine = await rig.engine()

    async def done() -> bool:
        stored = await engine.store.get_action(action.id)
        return stored is not None and stored.status == ActionStatus.DONE

    await eventually(done, within=15)
    engine.refresh_now()
    await eventually(lambda: any(a.state == AlertState.SILENCED for a in engine.snapshot.alerts))
    active = [s for s in engine.snapshot.silences if s.state == SilenceState.ACTIVE]
    assert len(active) == 1
    assert active[0].comment.startswith("disk cleanup running")
    assert active[0].created_by == "ops@example.com"
    outcomes = await engine.log_entries(kinds=["action.done"])
    assert len(outcomes) == 1


async def test_expire_and_extend_go_through_the_engine(rig: Rig) -> None:
    rig.standin.put_alerts([alert("DiskFull")])
    engine = await rig.engine()
    created = await engine.act(
        ActionRequest(
            "silence.create",
            "",
            {
                "cluster": "am-a",
                "matchers": ['alertname="DiskFull"'],
                "duration_seconds": 600,
                "comment": "known",
            },
        )
    )
    assert created.status == ActionStatus.DONE, created.result
    await eventually(lambda: len(engine.snapshot.silences) == 1)
    silence = engine.snapshot.silences[0]

    extended = await engine.act(
        ActionRequest("silence.extend", silence.key, {"duration_seconds": 7200})
    )
    assert extended.status == ActionStatus.DONE, extended.result
    engine.refresh_now()

    def longest_end() -> float:
        active = [s for s in engine.snapshot.silences if s.state == SilenceState.ACTIVE]
        return max((s.ends_at - START).total_seconds() for s in active) if active else 0

    await eventually(lambda: longest_end() >= 7200)

    active = [s for s in engine.snapshot.silences if s.state == SilenceState.ACTIVE]
    expired = await engine.act(ActionRequest("silence.expire", active[0].key))
    assert expired.status == ActionStatus.DONE, expired.result
    engine.refresh_now()
    await eventually(lambda: all(s.state == SilenceState.EXPIRED for s in engine.snapshot.silences))
    await eventually(lambda: engine.snapshot.alerts[0].state == AlertState.ACTIVE)


async def test_read_only_refuses_changes_and_sends_nothing(rig: Rig) -> None:
    engine = await rig.engine(read_only=True)
    before = list(rig.transport.requests)
    action = await engine.act(
        ActionRequest(
            "alert.fire",
            "",
            {"labels": {"alertname": "Test"}, "annotations": {}, "to": "alertmanager"},
        )
    )
    assert action.status == ActionStatus.FAILED
    assert "read-only" in action.result
    assert not [r for r in rig.transport.requests[len(before) :] if r[0] == "POST"]


async def test_fired_test_alert_reaches_alertmanager(rig: Rig) -> None:
    engine = await rig.engine()
    action = await engine.act(
        ActionRequest(
            "alert.fire",
            "",
            {
                "labels": {"alertname": "PipelineTest", "severity": "critical"},
                "annotations": {"summary": "test"},
                "to": "alertmanager",
            },
        )
    )
    assert action.status == ActionStatus.DONE, action.result
    await eventually(lambda: [a.alertname for a in engine.snapshot.alerts] == ["PipelineTest"])


class HangingForHost(httpx.AsyncBaseTransport):
    """Serves the stand-in, except that requests to `host` never get an answer."""

    def __init__(self, app: object, host: str) -> None:
        self._inner = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        self._host = host

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == self._host:
            await asyncio.Event().wait()
        return await self._inner.handle_async_request(request)


async def test_a_hung_cluster_does_not_delay_another(tmp_path: Path) -> None:
    clock = FrozenClock(START)
    standin = StandinAlertmanager(clock=clock)
    standin.put_alerts([alert("DiskFull")])
    text = f"""
alertmanagers:
  - {{name: fine, url: "http://fine.invalid:9093"}}
  - {{name: hung, url: "http://hung.invalid:9093"}}
webhooks: {{enabled: false}}
poll: {{alerts: 60s}}
log: {{path: "{tmp_path / "log.db"}"}}
"""
    config = load_config_text(text, "test.yaml", {})
    async with httpx.AsyncClient(transport=HangingForHost(standin.app, "hung.invalid")) as http:
        engine = Engine(config, clock=clock, http=http, listen_webhooks=False)
        await engine.start()
        try:
            await eventually(lambda: [a.cluster for a in engine.snapshot.alerts] == ["fine"])
            hung = engine.snapshot.health_of("hung")
            assert hung is not None
            assert hung.reachable is None  # still waiting for its first answer
        finally:
            await engine.stop()
