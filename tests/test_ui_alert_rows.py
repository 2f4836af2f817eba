"""The Alerts view's row model and header text, without a terminal.

The incremental refresh must always end where a fresh build would: random sequences of
snapshots (alerts firing, resolving, changing state, summary and severity) are applied one after
another and compared with a model built from scratch for the same final snapshot.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ui_harness import make_config

from oncall_tui.clock import FrozenClock
from oncall_tui.models import Alert, AlertState, Snapshot, SourceHealth
from oncall_tui.ui.alert_rows import AlertRows, GroupRow
from oncall_tui.ui.header import SourceBar, alert_counts, source_text

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
NAMES = ["ServiceDown", "HighLatency", "DiskFull"]
SERVICES = ["pay", "db", ""]
SEVERITIES = ["critical", "warning", "info"]
STATES = [AlertState.ACTIVE, AlertState.ACTIVE, AlertState.SILENCED, AlertState.INHIBITED]


def make_alert(i: int, rng: random.Random) -> Alert:
    labels = {
        "alertname": NAMES[i % 3],
        "service": SERVICES[(i // 3) % 3],
        "severity": rng.choice(SEVERITIES),
        "instance": f"host-{i}",
    }
    return Alert(
        fingerprint=f"{i:016x}",
        labels=labels,
        annotations={"summary": f"summary {rng.randint(0, 3)}"},
        starts_at=NOW - timedelta(minutes=rng.randint(0, 5)),
        updated_at=NOW,
        ends_at=None,
        state=rng.choice(STATES),
        cluster="prod",
    )


def fresh_rows(alerts: list[Alert], model: AlertRows) -> list[str]:
    scratch = AlertRows(model.group_by)
    scratch.filter = model.filter
    scratch.show_suppressed = model.show_suppressed
    scratch.set_alerts(alerts)
    return [_describe(row) for row in scratch.rows]


def _describe(row: GroupRow | Alert) -> str:
    if isinstance(row, GroupRow):
        return f"{row.key} {row.size} {row.active} {row.worst}"
    return f"{row.key} {row.severity} {row.state} {row.summary} {row.starts_at}"


@pytest.mark.parametrize(
    "group_by", [("alertname", "service"), ("alertname",), ("service", "alertname", "severity")]
)
def test_incremental_updates_always_match_a_fresh_build(group_by: tuple[str, ...]) -> None:
    rng = random.Random(7)
    model = AlertRows(group_by)
    alerts = {i: make_alert(i, rng) for i in range(40)}
    model.set_alerts(list(alerts.values()))
    for step in range(300):
        for _ in range(rng.randint(0, 6)):
            i = rng.randrange(60)
            action = rng.random()
            if action < 0.2:
                alerts.pop(i, None)  # resolved
            elif action < 0.4:
                alerts[i] = make_alert(i, rng)  # fired, or changed in every way
            elif i in alerts:
                # A new object with the same content, as every poll makes.
                alerts[i] = replace(alerts[i], updated_at=NOW + timedelta(seconds=step))
        if step % 50 == 25:
            model.show_suppressed = not model.show_suppressed
            model.refilter()
        current = list(alerts.values())
        rng.shuffle(current)
        model.set_alerts(current)
        assert [_describe(r) for r in model.rows] == fresh_rows(current, model)
        hidden = sum(1 for a in current if a.state in (AlertState.SILENCED, AlertState.INHIBITED))
        assert model.hidden_suppressed == (0 if model.show_suppressed else hidden)


def test_unchanged_refresh_reports_nothing_and_changes_report_their_keys() -> None:
    rng = random.Random(1)
    alerts = [make_alert(i, rng) for i in range(10)]
    model = AlertRows()
    assert model.set_alerts(alerts) == {a.key for a in alerts}
    same = [replace(a, updated_at=NOW + timedelta(seconds=5)) for a in alerts]
    assert model.set_alerts(same) == set()
    changed = [*same[:9], replace(same[9], annotations={"summary": "now worse"})]
    assert model.set_alerts(changed) == {alerts[9].key}
    assert model.alert(alerts[9].key) is changed[9]
    assert model.set_alerts(changed[:8]) == {alerts[8].key, alerts[9].key}


def test_groups_order_by_worst_severity_then_name_and_alerts_newest_first() -> None:
    def alert(name: str, severity: str, minutes: int, n: int) -> Alert:
        return Alert(
            fingerprint=str(n),
            labels={"alertname": name, "severity": severity, "service": "s"},
            annotations={},
            starts_at=NOW - timedelta(minutes=minutes),
            updated_at=NOW,
            ends_at=None,
            state=AlertState.ACTIVE,
        )

    model = AlertRows()
    model.set_alerts(
        [
            alert("B", "warning", 1, 1),
            alert("A", "info", 1, 2),
            alert("C", "critical", 9, 3),
            alert("C", "critical", 2, 4),
            alert("A", "warning", 5, 5),
        ]
    )
    shown = [
        (row.group[0], row.size) if isinstance(row, GroupRow) else row.fingerprint
        for row in model.rows
    ]
    assert shown == [("C", 2), "4", "3", ("A", 2), "5", "2", ("B", 1), "1"]


def test_header_counts_firing_only_and_says_stale_since() -> None:
    clock = FrozenClock(NOW)
    rng = random.Random(3)
    alerts = [
        replace(make_alert(i, rng), labels={"severity": sev}, state=state)
        for i, (sev, state) in enumerate(
            [
                ("critical", AlertState.ACTIVE),
                ("critical", AlertState.SILENCED),
                ("warning", AlertState.ACTIVE),
                ("warning", AlertState.ACTIVE),
                ("info", AlertState.ACTIVE),
            ]
        )
    ]
    assert alert_counts(Snapshot(taken_at=NOW, alerts=tuple(alerts))) == (1, 2)
    down = SourceHealth(
        name="prod-b",
        kind="alertmanager",
        reachable=False,
        last_success=NOW - timedelta(minutes=10),
        stale_since=NOW - timedelta(minutes=9),
        error="connection refused",
    )
    text = source_text(down, clock).plain
    assert text == "prod-b ✖ stale since 01:51:00 (connection refused)"
    up = replace(down, reachable=True, last_success=NOW - timedelta(seconds=12))
    assert source_text(up, clock).plain == "prod-b ● ok 12s ago"
    hooks = SourceHealth(name="webhooks", kind="webhooks", reachable=True, detail="127.0.0.1:9099")
    assert source_text(hooks, clock).plain == "webhooks ● 127.0.0.1:9099"


def test_header_says_when_it_shows_a_restored_snapshot(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    bar = SourceBar(config, FrozenClock(NOW))
    health = SourceHealth(name="prod-a", kind="alertmanager", reachable=None)
    bar.snapshot = Snapshot(taken_at=NOW, health=(health,), restored=True)
    text = bar.build().plain
    assert "restored snapshot, stale" in text
    assert "prod-a ○ connecting" in text
    bar.snapshot = replace(bar.snapshot, restored=False)
    assert "restored" not in bar.build().plain
