"""Correlation of alert groups with incidents: the group key arithmetic is checked against the
real Alertmanager binary (the keys it sends in webhooks), the lookups on plain objects."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from am_harness import am_binary, running_alertmanager, wait_for

from oncall_tui.clock import FrozenClock, SystemClock
from oncall_tui.engine.correlation import (
    Correlator,
    RouteConfigError,
    go_quote,
    group_dedup_key,
    labelset_string,
    learn_from_log,
    learn_routes,
    parse_route_tree,
    template_from_group,
)
from oncall_tui.models import Alert, AlertState, Incident, LogEntry
from oncall_tui.providers.alertmanager import AlertmanagerClient, PostableAlert
from oncall_tui.store import Store
from oncall_tui.webhook_payloads import AlertmanagerNotification, WebhookAlert
from oncall_tui.webhooks import WebhookServer, make_webhook_app

__all__ = ["am_binary"]

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def alert(fingerprint: str, labels: Mapping[str, str], receivers: tuple[str, ...] = ()) -> Alert:
    return Alert(
        fingerprint=fingerprint,
        labels=dict(labels),
        annotations={},
        starts_at=T0,
        updated_at=T0,
        ends_at=None,
        state=AlertState.ACTIVE,
        receivers=receivers,
        cluster="prod",
    )


def incident(
    ident: str, dedup_key: str, *, status: str = "triggered", age_min: int = 0
) -> Incident:
    return Incident(
        id=ident,
        system="pagerduty",
        title=ident,
        status=status,
        urgency="high",
        service="payment-service",
        assignee="",
        escalation_level=1,
        created_at=T0 - timedelta(minutes=age_min),
        dedup_key=dedup_key,
    )


def notification(
    group_key: str, receiver: str, group_labels: Mapping[str, str], *fingerprints: str
) -> AlertmanagerNotification:
    return AlertmanagerNotification(
        version="4",
        group_key=group_key,
        status="firing",
        receiver=receiver,
        group_labels=dict(group_labels),
        common_labels={},
        common_annotations={},
        external_url="",
        truncated_alerts=0,
        alerts=tuple(
            WebhookAlert("firing", {}, {}, T0, None, "", fingerprint)
            for fingerprint in fingerprints
        ),
    )


def test_dedup_key_is_the_sha256_hex_of_the_group_key() -> None:
    key = '{}/{severity="critical"}:{alertname="PaymentsDown", service="payment-service"}'
    assert group_dedup_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert len(group_dedup_key(key)) == 64


def test_label_sets_are_written_as_go_writes_them() -> None:
    assert labelset_string({"service": "pay", "alertname": "X"}) == (
        '{alertname="X", service="pay"}'
    )
    assert labelset_string({}) == "{}"
    assert go_quote('a "b" \\ c\nd\x01é') == '"a \\"b\\" \\\\ c\\nd\\x01é"'


def test_a_notification_links_its_alerts_and_teaches_its_route() -> None:
    correlator = Correlator()
    key = '{}/{severity="critical"}:{alertname="PaymentsDown", service="payment-service"}'
    correlator.record_notification(
        notification(
            key, "critical", {"alertname": "PaymentsDown", "service": "payment-service"}, "fp1"
        )
    )
    pd = incident("P1", group_dedup_key(key))
    other = incident("P2", group_dedup_key("{}:{}"))
    notified = alert(
        "fp1", {"alertname": "PaymentsDown", "service": "payment-service", "instance": "a"}
    )
    # Joined the group after the notification: seen only by polling, with its receiver.
    joined = alert(
        "fp2",
        {"alertname": "PaymentsDown", "service": "payment-service", "instance": "b"},
        ("critical",),
    )
    unrelated = alert("fp3", {"alertname": "Other", "service": "search"}, ("critical",))
    assert correlator.incident_for_alert(notified, [other, pd]) == pd
    assert correlator.incident_for_alert(joined, [other, pd]) == pd
    assert correlator.incident_for_alert(unrelated, [other, pd]) is None
    assert correlator.alerts_for_incident(pd, [notified, joined, unrelated]) == [notified, joined]
    assert correlator.group_key_of(pd) == key
    assert correlator.group_key_of(other) is None


def test_a_group_seen_only_by_polling_still_names_its_key() -> None:
    correlator = Correlator()
    correlator.record_group('{}:{alertname="A"}', [], receiver="r", group_labels={"alertname": "A"})
    polled = alert("fp", {"alertname": "B", "x": "1"}, ("r",))
    pd = incident("P1", group_dedup_key('{}:{alertname="B"}'))
    assert correlator.group_key_of(pd) is None
    assert correlator.group_key_of(pd, [polled]) == '{}:{alertname="B"}'
    assert correlator.group_key_of(pd) == '{}:{alertname="B"}'  # remembered


def test_the_open_incident_wins_over_an_older_resolved_one() -> None:
    correlator = Correlator()
    key = '{}:{alertname="A"}'
    correlator.record_group(key, ["fp"])
    old = incident("OLD", group_dedup_key(key), status="resolved", age_min=90)
    new = incident("NEW", group_dedup_key(key), age_min=5)
    assert correlator.incident_for_alert(alert("fp", {"alertname": "A"}), [old, new]) == new
    assert correlator.incidents_for_alert(alert("fp", {"alertname": "A"}), [old, new]) == [
        new,
        old,
    ]


def test_log_entries_of_the_intake_replay_into_the_correlator() -> None:
    correlator = Correlator()
    key = '{}:{alertname="A"}'
    entry = LogEntry(
        id=1,
        at=T0,
        source="alertmanager",
        kind="webhook",
        summary="firing: A",
        data={
            "group_key": key,
            "receiver": "default",
            "group_labels": {"alertname": "A"},
            "alerts": [{"status": "firing", "fingerprint": "fp", "labels": {"alertname": "A"}}],
        },
    )
    assert correlator.record_log_entry(entry)
    assert not correlator.record_log_entry(
        LogEntry(id=2, at=T0, source="pagerduty", kind="webhook", summary="")
    )
    assert correlator.group_keys_of(alert("fp", {"alertname": "A"})) == (key,)


async def test_a_restart_relearns_groups_from_the_logged_webhooks(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    store = await Store.open(tmp_path / "log.db", clock=clock)
    try:
        for n, fingerprints in enumerate((["a", "b"], ["c"])):
            await store.append(
                "alertmanager",
                "webhook",
                "firing",
                data={
                    "group_key": f'{{}}:{{alertname="G{n}"}}',
                    "receiver": "default",
                    "group_labels": {"alertname": f"G{n}"},
                    "alerts": [{"fingerprint": fp, "status": "firing"} for fp in fingerprints],
                },
            )
        await store.append("pagerduty", "webhook", "incident.triggered", data={"event": {}})
        correlator = Correlator()
        assert await learn_from_log(correlator, store, since=T0 - timedelta(hours=1)) == 2
    finally:
        await store.close()
    assert correlator.group_keys_of(alert("b", {})) == ('{}:{alertname="G0"}',)
    assert correlator.group_keys_of(alert("c", {})) == ('{}:{alertname="G1"}',)
    # The template learned from G0 also places an alert seen only by polling.
    assert correlator.group_keys_of(alert("z", {"alertname": "G7"}, ("default",))) == (
        '{}:{alertname="G7"}',
    )


async def test_an_unreachable_alertmanager_teaches_no_routes() -> None:
    async with httpx.AsyncClient(timeout=1.0) as http:
        client = AlertmanagerClient("down", "http://127.0.0.1:9", http, clock=SystemClock())
        assert not await learn_routes(Correlator(), client)


def test_the_correlator_stays_bounded() -> None:
    correlator = Correlator(max_fingerprints=100)
    for n in range(1000):
        correlator.record_group(f'{{}}:{{n="{n}"}}', [f"fp{n}"])
    assert correlator.group_keys_of(alert("fp999", {})) == ('{}:{n="999"}',)
    assert correlator.group_keys_of(alert("fp0", {})) == ()


def test_a_group_key_of_another_shape_teaches_no_template() -> None:
    assert template_from_group("weird", {"a": "b"}) is None
    template = template_from_group('{}/{x="1"}:{a="b"}', {"a": "b"})
    assert template is not None
    assert template.route_key == '{}/{x="1"}'


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(RouteConfigError):
        parse_route_tree("receivers: []")
    with pytest.raises(RouteConfigError):
        parse_route_tree("route: {receiver: a, routes: [{matchers: ['a=~\"(']}]}")
    with pytest.raises(RouteConfigError):
        parse_route_tree("route: [")


# --- against the real binary ------------------------------------------------------------------

ROUTES: dict[str, Any] = {
    "receiver": "default",
    "group_by": ["alertname", "service"],
    "group_wait": "0s",
    "group_interval": "1s",
    "repeat_interval": "1h",
    "routes": [
        {
            "receiver": "critical",
            "matchers": ['severity="critical"', 'team=~"pay.*|core"'],
            "continue": True,
        },
        {
            "receiver": "critical-copy",
            "match": {"severity": "critical"},
            "group_by": ["alertname", "instance"],
        },
        {
            "receiver": "warning",
            "match_re": {"severity": "warn.*"},
            "routes": [
                {"receiver": "everything", "matchers": ['env!="staging"'], "group_by": ["..."]},
            ],
        },
    ],
}


def am_yaml(webhook_url: str) -> str:
    names = ["default", "critical", "critical-copy", "warning", "everything"]
    receivers = [
        {"name": name, "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}
        for name in names
    ]
    return yaml.safe_dump({"route": ROUTES, "receivers": receivers}, sort_keys=False)


class Recorder:
    def __init__(self) -> None:
        self.notifications: list[AlertmanagerNotification] = []

    async def on_alertmanager(self, notification: AlertmanagerNotification, remote: str) -> None:
        self.notifications.append(notification)

    async def on_pagerduty(
        self, event: Mapping[str, Any], delivery_id: str | None, remote: str
    ) -> None:
        raise AssertionError("no PagerDuty here")

    async def on_rejected(self, path: str, status: int, reason: str, remote: str) -> None:
        raise AssertionError(f"rejected {path}: {status} {reason}")


@pytest.mark.alertmanager
async def test_derived_group_keys_are_the_ones_alertmanager_sends(
    am_binary: str, tmp_path: Path
) -> None:
    recorder = Recorder()
    server = WebhookServer(make_webhook_app(recorder, alertmanager_token=None), "127.0.0.1", 0)
    await server.start()
    config = am_yaml(f"http://{server.address}/webhooks/alertmanager")
    sent = [
        {
            "alertname": "PaymentsDown",
            "service": "payment-service",
            "severity": "critical",
            "team": "payments",
            "instance": 'db-1 "primary"',
        },
        {"alertname": "SearchSlow", "service": "search", "severity": "critical", "team": "x"},
        {
            "alertname": "DiskFilling",
            "service": "search",
            "severity": "warning",
            "env": "prod",
            "instance": "host\\2",
        },
        {"alertname": "DiskFilling", "service": "search", "severity": "warning", "env": "staging"},
        {"alertname": "Plain", "severity": "info"},
    ]
    try:
        async with (
            running_alertmanager(am_binary, tmp_path / "am", config) as am,
            httpx.AsyncClient(timeout=5.0) as http,
        ):
            client = AlertmanagerClient("am-0", am.url, http, clock=SystemClock())
            await client.post_alerts([PostableAlert(labels=labels) for labels in sent])

            async def all_groups() -> bool:
                return len({n.group_key for n in recorder.notifications}) >= 6

            await wait_for(all_groups, what="a notification for every group", within=20)
            polled = await client.alerts()
            # The running configuration, as Alertmanager reports it, gives the same tree.
            from_status = Correlator()
            assert await learn_routes(from_status, client)
    finally:
        await server.stop()

    seen: dict[str, set[str]] = {}
    for note in recorder.notifications:
        for pushed in note.alerts:
            seen.setdefault(pushed.fingerprint, set()).add(note.group_key)
    assert len(polled) == len(sent)

    # From the configuration alone, every alert gets exactly the keys Alertmanager used.
    from_routes = Correlator()
    from_routes.use_routes(config)
    for item in polled:
        assert set(from_routes.group_keys_of(item)) == seen[item.fingerprint], item.labels
        assert set(from_status.group_keys_of(item)) == seen[item.fingerprint], item.labels

    # From one notification per receiver, a polled alert's receivers lead to its keys.
    learned = Correlator()
    for note in recorder.notifications:
        learned.record_group(
            note.group_key, [], receiver=note.receiver, group_labels=note.group_labels
        )
    for item in polled:
        assert seen[item.fingerprint] <= set(learned.group_keys_of(item)), item.labels
        pd = incident("P", group_dedup_key(sorted(seen[item.fingerprint])[0]))
        assert learned.incident_for_alert(item, [pd]) == pd
