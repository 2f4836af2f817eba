"""The demo's payment-service outage, played on a frozen clock: it fires, a second instance
joins the same alert group later (PagerDuty folds it into the open incident), and it resolves."""

from __future__ import annotations

from datetime import UTC, datetime

from oncall_tui.clock import FrozenClock
from oncall_tui.sandbox.scenario import Scenario, story


def test_payment_outage_fires_grows_and_resolves() -> None:
    clock = FrozenClock(datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
    scenario = Scenario(["http://unused"], clock, seed=11, interval=5.0)
    beats = story(11, scenario.cycle)
    assert [at for at, _ in beats] == sorted(at for at, _ in beats)
    firing_at: dict[str, float] = {}
    resolved: set[str] = set()
    for step in range(int(scenario.cycle // 5)):
        now = clock.now()
        for alert in scenario.payload(now):
            labels = alert["labels"]
            if (labels["alertname"], labels["service"]) != ("ServiceDown", "payment-service"):
                continue
            ends = datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
            if ends > now:
                firing_at.setdefault(labels["instance"], step * 5.0)
            else:
                resolved.add(labels["instance"])
        clock.advance(5)
    assert set(firing_at) == {"pay-1:8080", "pay-2:8080"}
    # pay-2 joins the open group later: the same group key, no new incident.
    assert firing_at["pay-1:8080"] <= beats[0][0] + 5
    assert firing_at["pay-2:8080"] >= firing_at["pay-1:8080"] + 30
    assert resolved == {"pay-1:8080", "pay-2:8080"}
