"""The Alerts row model under filters: what it shows equals a plain filter-and-sort of the alerts.

The model keeps each group sorted and filters by walking it, with a lower-cased text cache; the
reference here filters with `AlertFilter.matches` and sorts from scratch, so the two can differ.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from oncall_tui.matchers import AlertFilter
from oncall_tui.models import Alert, AlertState, severity_rank
from oncall_tui.ui.alert_rows import AlertRows, GroupRow

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
HIDDEN = (AlertState.SILENCED, AlertState.INHIBITED)
FILTERS = ["", "pay", "PAY", "disk", "host-1", 'severity="critical"', 'service=~"pay|db"', "x"]


def make_alert(i: int, rng: random.Random) -> Alert:
    return Alert(
        fingerprint=f"{i:08x}",
        labels={
            "alertname": rng.choice(["ServiceDown", "DiskFull"]),
            "service": rng.choice(["pay", "db", "Payments"]),
            "severity": rng.choice(["critical", "warning", "info"]),
            "instance": f"host-{i}",
        },
        annotations={"summary": rng.choice(["Disk almost full", "pay is down", ""])},
        starts_at=NOW - timedelta(seconds=rng.randint(0, 50)),
        updated_at=NOW,
        ends_at=None,
        state=rng.choice([AlertState.ACTIVE, AlertState.ACTIVE, *HIDDEN]),
        cluster="prod",
    )


def reference(alerts: list[Alert], flt: AlertFilter, show_suppressed: bool) -> list[str]:
    groups: dict[tuple[str, ...], list[Alert]] = {}
    for a in alerts:
        if (show_suppressed or a.state not in HIDDEN) and flt.matches(a):
            key = (a.labels.get("alertname", ""), a.labels.get("service", ""))
            groups.setdefault(key, []).append(a)
    for members in groups.values():
        members.sort(key=lambda a: (severity_rank(a.severity), -a.starts_at.timestamp(), a.key))
    lines: list[str] = []
    for key, members in sorted(
        groups.items(), key=lambda g: (severity_rank(g[1][0].severity), g[0])
    ):
        lines.append(f"group {key} {len(members)}")
        lines.extend(a.key for a in members)
    return lines


def shown(model: AlertRows) -> list[str]:
    return [
        f"group {row.group} {row.size}" if isinstance(row, GroupRow) else row.key
        for row in model.rows
    ]


def test_filters_and_refreshes_in_any_order_match_a_plain_filter_and_sort() -> None:
    rng = random.Random(11)
    alerts = {i: make_alert(i, rng) for i in range(80)}
    model = AlertRows()
    for _step in range(200):
        if rng.random() < 0.3:
            model.filter = AlertFilter.parse(rng.choice(FILTERS))
            model.show_suppressed = rng.random() < 0.5
            model.refilter()
        for _ in range(rng.randint(0, 8)):
            i = rng.randrange(120)
            if rng.random() < 0.3:
                alerts.pop(i, None)
            else:
                alerts[i] = make_alert(i, rng)
        current = list(alerts.values())
        model.set_alerts(current)
        expected = reference(current, model.filter, model.show_suppressed)
        assert shown(model) == expected
        for index, row in enumerate(model.rows):
            assert model.index_of(row.key) == index
        assert model.shown == sum(1 for row in model.rows if isinstance(row, Alert))
        hidden = [a for a in current if a.state in HIDDEN and model.filter.matches(a)]
        assert model.hidden_suppressed == (0 if model.show_suppressed else len(hidden))


def test_text_search_is_prepared_in_slices_and_filters_the_same() -> None:
    rng = random.Random(3)
    alerts = [make_alert(i, rng) for i in range(25)]
    model = AlertRows()
    model.set_alerts(alerts)
    slices = 0
    while not model.prepare_text_search(budget=10):
        slices += 1
    assert slices == 2  # 10 + 10 + 5
    assert model.prepare_text_search(budget=10)
    flt = AlertFilter.parse("host-1")
    model.filter = flt
    model.refilter()
    assert shown(model) == reference(alerts, flt, model.show_suppressed)
