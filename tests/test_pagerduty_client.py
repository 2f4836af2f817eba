"""The PagerDuty REST and Events clients against the fake PagerDuty, every exchange checked.

Each client talks to `FakePagerDuty.app` in-process through tests/spec_check.py's
ValidatingTransport: every request the clients send and every answer the fake returns is
validated against the published REST v2 and Events v2 specs, and a violation fails the test.
Every client method is exercised here; parsing against the vendor's own examples is in
tests/test_pagerduty_examples.py.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from spec_check import SpecValidator, ValidatingTransport

from oncall_tui.clock import FrozenClock
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.pagerduty import (
    ALREADY_ACKNOWLEDGED,
    ALREADY_RESOLVED,
    PagerDutyClient,
    incident_from_webhook,
    pagerduty_error_code,
    with_escalation_levels,
)
from oncall_tui.providers.pagerduty_events import PagerDutyEventsClient
from oncall_tui.sandbox.fake_pagerduty import FakePagerDuty

TOKEN = "fake-token-u+8hEXAMPLEpd"
ROUTING_KEY = "R0123456789abcdef0123456789abcde"  # 32 characters; the first service's integration
EMAIL = "nina@example.com"
BASE = "http://pagerduty.test"
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


class RecordingClock(FrozenClock):
    """Wall time stands still except that each sleep advances it; sleeps return at once."""

    def __init__(self) -> None:
        super().__init__(NOW)
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


@dataclass
class Rig:
    fake: FakePagerDuty
    clock: RecordingClock
    client: PagerDutyClient
    events: PagerDutyEventsClient
    rest: ValidatingTransport

    def calls(self, path: str) -> list[tuple[str, str, int]]:
        return [exchange for exchange in self.rest.exchanges if exchange[1] == path]


@contextlib.asynccontextmanager
async def rig_for(**fake_options: Any) -> AsyncIterator[Rig]:
    """Clients on a fresh fake, every exchange validated; no violation may be left over."""
    clock = RecordingClock()
    fake = FakePagerDuty(
        clock=clock,
        api_token=TOKEN,
        routing_keys=[ROUTING_KEY],
        operator_email=EMAIL,
        **fake_options,
    )
    rest = ValidatingTransport(
        httpx.ASGITransport(app=fake.app), SpecValidator.load("pagerduty-rest")
    )
    events = ValidatingTransport(
        httpx.ASGITransport(app=fake.app), SpecValidator.load("pagerduty-events")
    )
    async with (
        httpx.AsyncClient(transport=rest) as rest_http,
        httpx.AsyncClient(transport=events) as events_http,
    ):
        yield Rig(
            fake,
            clock,
            PagerDutyClient(BASE, TOKEN, rest_http, clock=clock, from_email=EMAIL),
            PagerDutyEventsClient(BASE, ROUTING_KEY, events_http, clock=clock),
            rest,
        )
    assert rest.violations == []
    assert events.violations == []


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with rig_for() as made:
        yield made


async def fire(rig: Rig, key: str, summary: str = "payment-service is down") -> str:
    return await rig.events.trigger(
        summary=summary, source="pay-1", severity="critical", dedup_key=key
    )


# -- incidents from events ----------------------------------------------------------------------


async def test_a_triggered_event_becomes_an_open_incident_and_joins_on_its_key(rig: Rig) -> None:
    key = await fire(rig, "group-1")
    assert key == "group-1"
    [incident] = await rig.client.incidents()
    assert (incident.status, incident.title, incident.dedup_key) == (
        "triggered",
        "payment-service is down",
        "group-1",
    )
    assert (incident.service, incident.escalation_policy) == ("payment-service", "Payments")
    assert incident.system == "pagerduty"
    assert incident.number is not None
    assert incident.assignee  # the first level's on-call, by name (include[]=assignees)
    assert incident.assignee_ids
    assert incident.created_at == NOW
    # A second alert of the same group joins the open incident.
    await fire(rig, "group-1", "payment-service still down")
    assert [i.id for i in await rig.client.incidents()] == [incident.id]
    assert await rig.client.incident(incident.id) == await rig.client.incident(str(incident.number))


async def test_events_acknowledge_and_resolve_by_key_and_drop_unknown_keys(rig: Rig) -> None:
    await fire(rig, "group-2")
    await rig.events.acknowledge("group-2")
    [incident] = await rig.client.incidents()
    assert incident.status == "acknowledged"
    await rig.events.resolve("no-such-key")  # accepted, dropped
    await rig.events.resolve("group-2")
    assert await rig.client.incidents() == []
    [resolved] = await rig.client.incidents(statuses=("resolved",), since=NOW - timedelta(hours=1))
    assert resolved.id == incident.id


async def test_incidents_are_paged_and_filtered_by_service(rig: Rig) -> None:
    for n in range(101):
        await fire(rig, f"bulk-{n}", f"alert {n}")
    every = await rig.client.incidents()
    assert len({i.id for i in every}) == 101
    assert len(rig.calls("/incidents")) == 2  # limit 100: offsets 0 and 100
    [service] = {i.service_id for i in every}
    assert await rig.client.incidents(service_ids=["PNOSUCH"]) == []
    assert len(await rig.client.incidents(service_ids=[service], max_items=3)) == 3


# -- actions ------------------------------------------------------------------------------------


async def test_acknowledge_twice_says_already_acknowledged(rig: Rig) -> None:
    await fire(rig, "group-3")
    [incident] = await rig.client.incidents()
    acked = await rig.client.acknowledge(incident.id)
    assert acked.status == "acknowledged"
    assert acked.acknowledged_by  # who, by name
    with pytest.raises(ProviderError) as caught:
        await rig.client.acknowledge(incident.id)
    assert pagerduty_error_code(caught.value) == ALREADY_ACKNOWLEDGED
    assert (caught.value.status, caught.value.retryable) == (400, False)
    assert "(code 1002)" in caught.value.message


async def test_resolve_with_a_resolution_then_already_resolved(rig: Rig) -> None:
    await fire(rig, "group-4")
    [incident] = await rig.client.incidents()
    resolved = await rig.client.resolve(incident.id, "restarted the pods")
    assert resolved.status == "resolved"
    with pytest.raises(ProviderError) as caught:
        await rig.client.resolve(incident.id)
    assert pagerduty_error_code(caught.value) == ALREADY_RESOLVED


async def test_escalate_pages_the_next_level(rig: Rig) -> None:
    await fire(rig, "group-5")
    [incident] = await rig.client.incidents()
    oncalls = await rig.client.oncalls(escalation_policy_ids=[incident.escalation_policy_id])
    [filled] = with_escalation_levels([incident], oncalls)
    assert filled.escalation_level == 1
    escalated = await rig.client.escalate(incident.id, 2)
    assert escalated.escalation_level == 2
    level_two = {o.user_id for o in oncalls if o.level == 2}
    assert set(escalated.assignee_ids) == level_two
    [again] = with_escalation_levels(
        [await rig.client.incident(incident.id)],
        await rig.client.oncalls(escalation_policy_ids=[incident.escalation_policy_id]),
    )
    assert again.escalation_level == 2


async def test_reassign_to_a_user_or_to_another_policy(rig: Rig) -> None:
    await fire(rig, "group-6")
    [incident] = await rig.client.incidents()
    [dana] = await rig.client.users("dana")
    to_dana = await rig.client.reassign(incident.id, user_ids=[dana.id])
    assert (to_dana.assignee, to_dana.assignee_ids) == (dana.name, (dana.id,))
    policies = await rig.client.escalation_policies()
    other = next(p for p in policies if p.id != incident.escalation_policy_id)
    moved = await rig.client.reassign(incident.id, escalation_policy_id=other.id)
    assert (moved.escalation_policy_id, moved.escalation_policy) == (other.id, other.name)


async def test_snooze_an_acknowledged_incident(rig: Rig) -> None:
    await fire(rig, "group-7")
    [incident] = await rig.client.incidents()
    await rig.client.acknowledge(incident.id)
    snoozed = await rig.client.snooze(incident.id, 600)
    assert (snoozed.id, snoozed.status) == (incident.id, "acknowledged")


async def test_notes_are_added_and_listed_with_their_author(rig: Rig) -> None:
    await fire(rig, "group-8")
    [incident] = await rig.client.incidents()
    assert await rig.client.notes(incident.id) == []
    note = await rig.client.add_note(incident.id, "Rolling back deploy 42.")
    me = await rig.client.me()
    assert (note.content, note.user, note.created_at) == ("Rolling back deploy 42.", me.name, NOW)
    assert await rig.client.notes(incident.id) == [note]


async def test_an_unknown_requester_is_refused_by_pagerduty(rig: Rig) -> None:
    await fire(rig, "group-9")
    [incident] = await rig.client.incidents()
    rig.client.from_email = "stranger@example.org"
    with pytest.raises(ProviderError) as caught:
        await rig.client.acknowledge(incident.id)
    assert (caught.value.status, caught.value.code) == (400, 1008)


async def test_a_missing_incident_is_404(rig: Rig) -> None:
    with pytest.raises(ProviderError) as caught:
        await rig.client.incident("PNOSUCH")
    assert (caught.value.status, caught.value.retryable) == (404, False)


# -- on-call and directory ----------------------------------------------------------------------


async def test_oncalls_now_and_next_per_policy_and_level(rig: Rig) -> None:
    policies = {p.id: p for p in await rig.client.escalation_policies()}
    now = await rig.client.oncalls()
    assert {(o.policy_id, o.level) for o in now} >= {
        (policy.id, level) for policy in policies.values() for level in (1, 2)
    }
    for oncall in now:
        assert oncall.policy == policies[oncall.policy_id].name
        assert oncall.user
        assert oncall.user_email  # include[]=users
        assert oncall.start is None or oncall.start <= NOW
        assert oncall.end is None or oncall.end > NOW
    some = next(iter(policies))
    only = await rig.client.oncalls(escalation_policy_ids=[some])
    assert only
    assert {o.policy_id for o in only} == {some}
    upcoming = await rig.client.oncalls(
        escalation_policy_ids=[some], since=NOW, until=NOW + timedelta(days=7), earliest=True
    )
    # One entry per (level, user): the earliest time each one is on call in the week.
    keys = [(o.level, o.user_id) for o in upcoming]
    assert len(keys) == len(set(keys))
    assert any(o.start is not None and o.start > NOW for o in upcoming)


async def test_escalation_policies_with_levels_delays_and_loops(rig: Rig) -> None:
    policies = await rig.client.escalation_policies()
    assert len(policies) >= 2
    for policy in policies:
        assert policy.name
        assert len(policy.rules) >= 2
        assert all(rule.delay_minutes > 0 for rule in policy.rules)
        assert all(rule.targets and all(rule.targets) for rule in policy.rules)
    first = policies[0]
    assert await rig.client.escalation_policies([first.id]) == [first]


async def test_schedules_render_seven_days_of_shifts(rig: Rig) -> None:
    schedules = await rig.client.schedules()
    assert schedules
    assert all(s.time_zone for s in schedules)
    until = NOW + timedelta(days=7)
    for schedule in schedules:
        shifts = await rig.client.shifts(schedule.id, NOW, until)
        assert shifts
        assert {s.schedule_id for s in shifts} == {schedule.id}
        assert {s.schedule for s in shifts} == {schedule.name}
        assert shifts[0].start <= NOW
        assert shifts[-1].end >= until
        for before, after in itertools.pairwise(shifts):
            assert before.end <= after.start


async def test_users_and_the_token_owner(rig: Rig) -> None:
    everyone = await rig.client.users()
    assert len(everyone) >= 5
    assert all(user.email for user in everyone)
    [alice] = await rig.client.users("alice")
    assert alice.name == "Alice Chen"
    me = await rig.client.me()
    assert me.email == EMAIL
    assert me in everyone


# -- failures -----------------------------------------------------------------------------------


async def test_a_throttled_request_waits_for_the_reset_and_succeeds(rig: Rig) -> None:
    rig.fake.throttle(1)
    await rig.client.users()
    assert len(rig.clock.sleeps) == 1
    assert rig.clock.sleeps[0] >= 1  # the fake's ratelimit-reset, not a sub-second back-off
    assert [status for _, _, status in rig.calls("/users")] == [429, 200]


async def test_a_throttled_event_is_sent_again(rig: Rig) -> None:
    rig.fake.throttle(1)
    assert await fire(rig, "group-10") == "group-10"
    assert len(await rig.client.incidents()) == 1


async def test_a_wrong_token_or_routing_key_is_refused_without_echoing_it(rig: Rig) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.fake.app)) as http:
        client = PagerDutyClient(BASE, "wrong-token-123", http, clock=rig.clock)
        with pytest.raises(ProviderError) as caught:
            await client.users()
        assert caught.value.status == 401
        assert "wrong-token-123" not in str(caught.value)
        wrong_key = "W" * 32
        events = PagerDutyEventsClient(BASE, wrong_key, http, clock=rig.clock)
        with pytest.raises(ProviderError) as caught:
            await events.trigger(summary="s", source="x", severity="info")
        assert (caught.value.status, caught.value.retryable) == (400, False)
        assert wrong_key not in str(caught.value)


async def test_incidents_come_newest_first_and_a_direct_target_level_is_known(rig: Rig) -> None:
    for n in range(3):
        await fire(rig, f"order-{n}", f"alert {n}")
        rig.clock.advance(60)
    listed = await rig.client.incidents()
    assert [i.title for i in listed] == ["alert 2", "alert 1", "alert 0"]
    policy = (await rig.client.escalation_policies([listed[0].escalation_policy_id]))[0]
    last = len(policy.rules)
    await rig.client.escalate(listed[0].id, last)
    fetched = await rig.client.incident(listed[0].id)
    # The seeded policies end with a user targeted directly: the included policy tells the level.
    assert fetched.assignee in policy.rules[-1].targets
    assert fetched.escalation_level == last


async def test_the_fakes_webhooks_describe_the_same_incident_as_rest() -> None:
    bodies: list[bytes] = []

    def receive(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return httpx.Response(202)

    hooks = httpx.AsyncClient(transport=httpx.MockTransport(receive))
    url = "http://listener.test/webhooks/pagerduty"
    async with hooks, rig_for(webhook_url=url, http=hooks) as rig:
        await fire(rig, "group-11")
        [incident] = await rig.client.incidents()
        await rig.client.acknowledge(incident.id)
        await rig.fake.tick()
        me = await rig.client.me()
    found = [incident_from_webhook(json.loads(body)) for body in bodies]
    triggered, acknowledged = [f for f in found if f is not None][:2]
    assert triggered.id == acknowledged.id == incident.id
    assert (triggered.number, triggered.dedup_key) == (incident.number, incident.dedup_key)
    assert triggered.assignee_ids == incident.assignee_ids
    assert (triggered.status, acknowledged.status) == ("triggered", "acknowledged")
    assert acknowledged.acknowledged_by == (me.name,)
