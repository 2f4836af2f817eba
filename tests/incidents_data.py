"""A deterministic night of PagerDuty data for the Incidents and On-call view tests.

Shaped as the PagerDuty source reports it (models.Incident, OnCall, Shift) at 02:00 UTC on the
harness's frozen clock: two escalation policies with three and two levels, two rotating
schedules rendered a week ahead, and incidents in every state, one with a markup-looking title.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from ui_harness import START

from oncall_tui.models import Incident, OnCall, Shift, Snapshot, SourceHealth

PAYMENTS = "PEP0001"
USER_IDS = {
    "Nina Patel": "PUS0001",
    "Omar Haddad": "PUS0002",
    "Li Wei": "PUS0003",
    "Sam Okafor": "PUS0004",
    "Priya Raman": "PUS0005",
}
SEARCH = "PEP0002"


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def incident(number: int, title: str, status: str, urgency: str, **extra: object) -> Incident:
    fields: dict[str, object] = {
        "id": f"Q{number:05d}",
        "system": "pagerduty",
        "title": title,
        "status": status,
        "urgency": urgency,
        "service": "payment-service",
        "assignee": "Nina Patel",
        "escalation_level": 1,
        "created_at": at(-0.1),
        "number": number,
        "url": f"https://example.pagerduty.test/incidents/Q{number:05d}",
        "escalation_policy": "Payments on-call",
        "escalation_policy_id": PAYMENTS,
        "service_id": "PSV0001",
        "assignee_ids": ("PUS0001",),
    }
    fields.update(extra)
    return Incident(**fields)  # type: ignore[arg-type]


def incidents() -> tuple[Incident, ...]:
    return (
        incident(
            1042,
            "[FIRING:2] ServiceDown payment-service",
            "triggered",
            "high",
            created_at=at(-7 / 60),
            dedup_key="5f1c" * 16,
        ),
        incident(
            1041,
            "p99 latency above 2s on checkout [bold]not markup[/bold]",
            "acknowledged",
            "high",
            service="checkout",
            assignee="Omar Haddad",
            assignee_ids=("PUS0002",),
            escalation_level=2,
            created_at=at(-42 / 60),
            acknowledged_by=("Omar Haddad",),
        ),
        incident(
            1039,
            "Disk filling on db-1: /var/lib/postgres full in 6 hours",
            "acknowledged",
            "low",
            service="search",
            assignee="Li Wei",
            assignee_ids=("PUS0003",),
            escalation_policy="Search escalation",
            escalation_policy_id=SEARCH,
            created_at=at(-3.1),
            acknowledged_by=("Li Wei",),
        ),
        incident(
            1043,
            "Certificate for search.example.com expires in 7 days",
            "triggered",
            "low",
            service="search",
            assignee="Li Wei",
            assignee_ids=("PUS0003",),
            escalation_policy="Search escalation",
            escalation_policy_id=SEARCH,
            created_at=at(-1 / 60),
        ),
        incident(
            1035,
            "Search index lag",
            "resolved",
            "low",
            service="search",
            assignee="Li Wei",
            escalation_policy="Search escalation",
            escalation_policy_id=SEARCH,
            created_at=at(-0.9),
        ),
    )


def _oncall(policy: str, policy_id: str, level: int, user: str, start: float | None,
            end: float | None, email: str = "") -> OnCall:  # fmt: skip
    return OnCall(
        policy=policy,
        level=level,
        user=user,
        start=None if start is None else at(start),
        end=None if end is None else at(end),
        policy_id=policy_id,
        user_id=USER_IDS[user],
        user_email=email or f"{user.split()[0].lower()}@example.com",
    )


def oncalls() -> tuple[OnCall, ...]:
    pay, search = "Payments on-call", "Search escalation"
    return (
        _oncall(pay, PAYMENTS, 1, "Nina Patel", -6, 6),
        _oncall(pay, PAYMENTS, 1, "Omar Haddad", 6, 18),
        _oncall(pay, PAYMENTS, 2, "Omar Haddad", -18, 30),
        _oncall(pay, PAYMENTS, 2, "Sam Okafor", 30, 54),
        _oncall(pay, PAYMENTS, 3, "Priya Raman", None, None),
        _oncall(search, SEARCH, 1, "Li Wei", -17, 7),
        _oncall(search, SEARCH, 1, "Nina Patel", 7, 31),
        _oncall(search, SEARCH, 2, "Sam Okafor", -40, 128),
    )


def shifts() -> tuple[Shift, ...]:
    found: list[Shift] = []
    payments = ["Nina Patel", "Omar Haddad"]
    for n in range(15):  # 12-hour shifts from 20:00 yesterday, a week ahead
        start = at(-6 + 12 * n)
        found.append(Shift("Payments primary", payments[n % 2], start, start + timedelta(hours=12)))
    search = ["Li Wei", "Nina Patel", "Sam Okafor"]
    for n in range(8):  # daily at 09:00
        start = at(-17 + 24 * n)
        found.append(Shift("Search primary", search[n % 3], start, start + timedelta(hours=24)))
    return tuple(found)


def pagerduty_health(reachable: bool = True) -> SourceHealth:
    if reachable:
        return SourceHealth("pagerduty", "pagerduty", reachable=True, last_success=START)
    return SourceHealth(
        "pagerduty",
        "pagerduty",
        reachable=False,
        last_success=at(-0.5),
        stale_since=at(-0.4),
        error="connect timeout",
    )


def with_pagerduty(snapshot: Snapshot, *, reachable: bool = True) -> Snapshot:
    """The engine's snapshot plus this PagerDuty night, as one snapshot."""
    health = tuple(h for h in snapshot.health if h.name != "pagerduty")
    return replace(
        snapshot,
        incidents=incidents(),
        oncalls=oncalls(),
        shifts=shifts(),
        health=(*health, pagerduty_health(reachable)),
    )


PAGERDUTY_CONFIG = {
    "api_token": "not-a-real-token",
    "routing_key": "0123456789abcdef0123456789abcdef",
    "api_url": "http://pagerduty.invalid",
    "events_url": "http://pagerduty-events.invalid",
}
