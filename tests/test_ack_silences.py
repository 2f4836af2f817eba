"""Acknowledgement silences against the real Alertmanager, driven by a real Engine.

The part is wired as the engine will wire it: every snapshot goes to `on_alerts`, its requests
go through `engine.act` as automation. An acknowledgement silence with a short duration is
extended while its alert fires and expired once the alert resolves; an ordinary silence on
another alert is left alone; what is managed survives in the log's state table.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from am_harness import am_binary, running_alertmanager, wait_for

from oncall_tui.clock import SystemClock
from oncall_tui.config import load_config_text
from oncall_tui.engine import ActionRequest, Engine
from oncall_tui.engine.ack_silences import STATE_KEY, AckSilences, marker_of
from oncall_tui.events import EngineEvent, SnapshotChanged
from oncall_tui.models import Action, ActionStatus, Silence, SilenceState
from oncall_tui.providers.alertmanager import AlertmanagerClient, PostableAlert
from oncall_tui.sandbox.alertmanager_process import alertmanager_config_yaml

__all__ = ["am_binary"]

pytestmark = pytest.mark.alertmanager

ACKED = {"alertname": "AckMe", "service": "payment-service", "instance": "pay-1", "severity": "x"}
OTHER = {"alertname": "LeaveMe", "service": "search", "instance": "s-1", "severity": "x"}


def silence_request(
    labels: dict[str, str], *, until_resolved: bool, seconds: float
) -> ActionRequest:
    matchers = [f'{name}="{labels[name]}"' for name in ("alertname", "service", "instance")]
    params = {
        "cluster": "am",
        "matchers": matchers,
        "duration_seconds": seconds,
        "comment": "acknowledged by Test",
        "until_resolved": until_resolved,
    }
    return ActionRequest("silence.create", "am", params)


async def test_silence_kept_while_firing_and_expired_when_resolved(
    am_binary: str, tmp_path: Path
) -> None:
    clock = SystemClock()
    am_yaml = alertmanager_config_yaml(webhook_url=None)
    async with (
        running_alertmanager(am_binary, tmp_path / "am", am_yaml) as am,
        httpx.AsyncClient(timeout=5.0) as http,
    ):
        config = load_config_text(
            f"""
alertmanagers: [{{name: am, url: "{am.url}"}}]
webhooks: {{enabled: false}}
poll: {{alerts: 200ms}}
log: {{path: "{tmp_path / "log.db"}"}}
""",
            "test.yaml",
            {},
        )
        client = AlertmanagerClient("am", am.url, http, clock=clock)
        far = clock.now() + timedelta(hours=1)
        await client.post_alerts(
            [PostableAlert(ACKED, ends_at=far), PostableAlert(OTHER, ends_at=far)]
        )
        engine = Engine(config, clock=clock)
        await engine.start()
        part = AckSilences(
            clock=clock,
            store=engine.store,
            submit=lambda request: engine.act(request, actor="automation"),
        )
        await part.start()

        def feed(event: EngineEvent) -> None:
            if isinstance(event, SnapshotChanged):
                part.on_alerts(event.snapshot)

        engine.subscribe(feed)
        try:
            await wait_for(_has(lambda: len(engine.snapshot.alerts) == 2), what="both alerts")
            # 6 s: extended once less than 3 s are left, by another 6 s.
            acked = await engine.act(silence_request(ACKED, until_resolved=True, seconds=6))
            plain = await engine.act(silence_request(OTHER, until_resolved=False, seconds=3600))
            assert acked.status == plain.status == ActionStatus.DONE
            first = await _silence_of(client, acked)

            async def saved() -> bool:
                # Adopted in memory first, then saved (before anything is asked for it).
                state = json.loads(await engine.store.get_state(STATE_KEY) or "{}")
                return acked.id in state

            await wait_for(saved, what="the silence adopted and saved")
            assert acked.id in part.managed
            assert plain.id not in part.managed
            state = json.loads(await engine.store.get_state(STATE_KEY) or "{}")
            assert list(state) == [acked.id]

            async def extended() -> bool:
                now = await _silence_of(client, acked)
                return now.ends_at > first.ends_at + timedelta(seconds=2)

            await wait_for(extended, within=8.0, what="the silence extended while it fires")
            assert (await _silence_of(client, acked)).state == SilenceState.ACTIVE

            # The alert resolves: the silence is expired; the ordinary one stays.
            await client.post_alerts([PostableAlert(ACKED, ends_at=clock.now())])

            async def expired() -> bool:
                return (await _silence_of(client, acked)).state == SilenceState.EXPIRED

            await wait_for(expired, within=8.0, what="the silence expired after the resolve")
            assert (await _silence_of(client, plain)).state == SilenceState.ACTIVE
            entries = await engine.store.entries(sources=["automation"])
            kinds = {(e.kind, str(e.data.get("action_id", ""))) for e in entries}
            assert any(kind == "action.done" for kind, _ in kinds)
            summaries = " ".join(e.summary for e in entries)
            assert "silence.extend" in summaries
            assert "silence.expire" in summaries
            await wait_for(_has(lambda: acked.id not in part.managed), what="no longer managed")
        finally:
            await part.stop()
            await engine.stop()


def _has(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return check()

    return probe


async def _silence_of(client: AlertmanagerClient, action: Action) -> Silence:
    """The live (or, once expired, newest) silence carrying the action's marker."""
    mine = [s for s in await client.silences() if marker_of(s) == action.id]
    assert mine, f"no silence for action {action.id}"
    live = [s for s in mine if s.state != SilenceState.EXPIRED]
    return (live or sorted(mine, key=lambda s: s.ends_at))[-1]
