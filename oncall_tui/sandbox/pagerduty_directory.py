"""The fake PagerDuty's seeded account: users, services, escalation policies, rotating schedules.

Everything here is fixed at construction (only the rotation order depends on the seed), so
on-call answers are pure functions of time: who is on call at any instant comes from the layer's
`rotation_virtual_start` and `rotation_turn_length_seconds`, as PagerDuty computes it, which lets
the fake render schedules and `/oncalls` for any window, weeks ahead. JSON renderers return only
fields PagerDuty's REST API v2 returns for these objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

API_BASE = "https://api.pagerduty.com"
WEB_BASE = "https://sandbox.pagerduty.com"
ROTATION_ANCHOR = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)  # a Monday, 09:00 UTC


def format_time(moment: datetime) -> str:
    """PagerDuty's timestamp form: UTC, seconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class User:
    id: str
    name: str
    email: str
    job_title: str = ""


@dataclass(frozen=True)
class Schedule:
    id: str
    name: str
    user_ids: tuple[str, ...]
    turn: timedelta
    start: datetime = ROTATION_ANCHOR

    def on_call_at(self, moment: datetime) -> tuple[str, datetime, datetime]:
        """(user id, shift start, shift end) of the shift covering `moment`."""
        turns = (moment - self.start) // self.turn
        begin = self.start + turns * self.turn
        return self.user_ids[turns % len(self.user_ids)], begin, begin + self.turn

    def shifts(self, since: datetime, until: datetime) -> Iterator[tuple[str, datetime, datetime]]:
        """Every shift overlapping [since, until), whole (not cut at the window)."""
        user, begin, end = self.on_call_at(since)
        while begin < until:
            yield user, begin, end
            user, begin, end = self.on_call_at(end)


@dataclass(frozen=True)
class Target:
    kind: str  # "user" | "schedule"
    id: str


@dataclass(frozen=True)
class Rule:
    id: str
    delay_minutes: int
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class EscalationPolicy:
    id: str
    name: str
    rules: tuple[Rule, ...]
    num_loops: int


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    policy_id: str
    description: str = ""


class Directory:
    """The seeded account. `seed` rotates who starts each schedule."""

    def __init__(self, *, seed: int = 0, operator_email: str = "demo@example.com") -> None:
        people = [
            User("PDEMO01", "Demo Operator", operator_email, "SRE"),
            User("PALICE2", "Alice Chen", "alice.chen@example.com", "SRE"),
            User("PBOBOK3", "Bob Okafor", "bob.okafor@example.com", "SRE"),
            User("PCAROL4", "Carol Diaz", "carol.diaz@example.com", "Backend engineer"),
            User("PFRANK5", "Frank Moreau", "frank.moreau@example.com", "Backend engineer"),
            User("PDANAI6", "Dana Ito", "dana.ito@example.com", "Team lead"),
            User("PERINW7", "Erin Walsh", "erin.walsh@example.com", "Engineering manager"),
        ]
        self.users = {user.id: user for user in people}
        # The operator is the owner of the API token (a user-level key), for GET /users/me.
        self.me = people[0]

        def rotated(ids: Sequence[str]) -> tuple[str, ...]:
            shift = seed % len(ids)
            return tuple(ids[shift:]) + tuple(ids[:shift])

        schedules = [
            Schedule(
                "PSCHPR1",
                "Payments primary",
                rotated(["PDEMO01", "PALICE2", "PBOBOK3"]),
                timedelta(days=1),
            ),
            Schedule(
                "PSCHSE2",
                "Payments secondary",
                rotated(["PCAROL4", "PFRANK5"]),
                timedelta(days=2),
            ),
            Schedule(
                "PSCHSR3",
                "Search primary",
                rotated(["PFRANK5", "PALICE2"]),
                timedelta(hours=12),
            ),
        ]
        self.schedules = {schedule.id: schedule for schedule in schedules}
        policies = [
            EscalationPolicy(
                "PEPPAY1",
                "Payments",
                (
                    Rule("PRULE11", 5, (Target("schedule", "PSCHPR1"),)),
                    Rule("PRULE12", 5, (Target("schedule", "PSCHSE2"),)),
                    Rule("PRULE13", 10, (Target("user", "PDANAI6"),)),
                ),
                num_loops=2,
            ),
            EscalationPolicy(
                "PEPSRC2",
                "Search",
                (
                    Rule("PRULE21", 10, (Target("schedule", "PSCHSR3"),)),
                    Rule("PRULE22", 10, (Target("user", "PERINW7"),)),
                ),
                num_loops=0,
            ),
        ]
        self.policies = {policy.id: policy for policy in policies}
        services = [
            Service("PSVCPAY", "payment-service", "PEPPAY1", "Card payments and refunds"),
            Service("PSVCSRC", "search", "PEPSRC2", "Product search"),
        ]
        self.services = {service.id: service for service in services}

    def user_by_email(self, email: str) -> User | None:
        wanted = email.strip().lower()
        return next((u for u in self.users.values() if u.email.lower() == wanted), None)

    def targets_at(self, policy: EscalationPolicy, level: int, moment: datetime) -> list[str]:
        """User ids on call at `level` (1-based) of `policy` at `moment`."""
        users: list[str] = []
        for target in policy.rules[level - 1].targets:
            if target.kind == "user":
                user_id = target.id
            else:
                user_id = self.schedules[target.id].on_call_at(moment)[0]
            if user_id not in users:
                users.append(user_id)
        return users

    # -- JSON -------------------------------------------------------------------------------

    def reference(self, kind: str, item_id: str) -> dict[str, Any]:
        """A `<kind>_reference` as PagerDuty embeds it: id, type, summary, self, html_url."""
        summary, path, web = self._names(kind, item_id)
        return {
            "id": item_id,
            "type": f"{kind}_reference",
            "summary": summary,
            "self": f"{API_BASE}/{path}/{item_id}",
            "html_url": f"{WEB_BASE}/{web}/{item_id}",
        }

    def _names(self, kind: str, item_id: str) -> tuple[str, str, str]:
        if kind == "user":
            return self.users[item_id].name, "users", "users"
        if kind == "schedule":
            return self.schedules[item_id].name, "schedules", "schedules"
        if kind == "escalation_policy":
            return self.policies[item_id].name, "escalation_policies", "escalation_policies"
        if kind == "service":
            return self.services[item_id].name, "services", "service-directory"
        raise KeyError(kind)

    def user_json(self, user: User) -> dict[str, Any]:
        ref = self.reference("user", user.id)
        return {
            "id": user.id,
            "type": "user",
            "summary": user.name,
            "self": ref["self"],
            "html_url": ref["html_url"],
            "name": user.name,
            "email": user.email,
            "time_zone": "Etc/UTC",
            "color": "purple",
            "role": "user",
            "avatar_url": f"https://secure.gravatar.com/avatar/{user.id.lower()}.png?d=mm&r=PG",
            "description": "",
            "invitation_sent": False,
            "job_title": user.job_title,
            "teams": [],
            "contact_methods": [],
            "notification_rules": [],
        }

    def policy_json(self, policy: EscalationPolicy) -> dict[str, Any]:
        ref = self.reference("escalation_policy", policy.id)
        services = [s.id for s in self.services.values() if s.policy_id == policy.id]
        return {
            "id": policy.id,
            "type": "escalation_policy",
            "summary": policy.name,
            "self": ref["self"],
            "html_url": ref["html_url"],
            "name": policy.name,
            "description": "",
            "num_loops": policy.num_loops,
            "on_call_handoff_notifications": "if_has_services",
            "escalation_rules": [
                {
                    "id": rule.id,
                    "escalation_delay_in_minutes": rule.delay_minutes,
                    "targets": [self.reference(target.kind, target.id) for target in rule.targets],
                }
                for rule in policy.rules
            ],
            "services": [self.reference("service", service_id) for service_id in services],
            "teams": [],
        }

    def service_json(self, service: Service, created_at: datetime) -> dict[str, Any]:
        ref = self.reference("service", service.id)
        return {
            "id": service.id,
            "type": "service",
            "summary": service.name,
            "self": ref["self"],
            "html_url": ref["html_url"],
            "name": service.name,
            "description": service.description,
            "auto_resolve_timeout": None,
            "acknowledgement_timeout": None,
            "created_at": format_time(created_at),
            "status": "active",
            "escalation_policy": self.reference("escalation_policy", service.policy_id),
            "teams": [],
            "integrations": [],
            "incident_urgency_rule": {"type": "constant", "urgency": "high"},
            "alert_creation": "create_alerts_and_incidents",
        }

    def schedule_json(
        self,
        schedule: Schedule,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        overflow: bool = False,
    ) -> dict[str, Any]:
        """A schedule; with a window, its layer and final schedule rendered over it."""
        ref = self.reference("schedule", schedule.id)
        policies = [
            p.id
            for p in self.policies.values()
            if any(Target("schedule", schedule.id) in rule.targets for rule in p.rules)
        ]
        layer: dict[str, Any] = {
            "id": f"{schedule.id}L",
            "name": "Layer 1",
            "start": format_time(schedule.start),
            "end": None,
            "users": [{"user": self.reference("user", uid)} for uid in schedule.user_ids],
            "restrictions": [],
            "rotation_virtual_start": format_time(schedule.start),
            "rotation_turn_length_seconds": int(schedule.turn.total_seconds()),
        }
        data: dict[str, Any] = {
            "id": schedule.id,
            "type": "schedule",
            "summary": schedule.name,
            "self": ref["self"],
            "html_url": ref["html_url"],
            "name": schedule.name,
            "description": "",
            "time_zone": "Etc/UTC",
            "schedule_layers": [layer],
            "escalation_policies": [self.reference("escalation_policy", p) for p in policies],
            "users": [self.reference("user", uid) for uid in dict.fromkeys(schedule.user_ids)],
            "teams": [],
        }
        if since is not None and until is not None:
            entries = []
            for user_id, begin, end in schedule.shifts(since, until):
                if not overflow:  # PagerDuty cuts entries at the window unless overflow=true
                    begin, end = max(begin, since), min(end, until)
                entries.append(
                    {
                        "start": format_time(begin),
                        "end": format_time(end),
                        "user": self.reference("user", user_id),
                    }
                )
            layer["rendered_schedule_entries"] = entries
            layer["rendered_coverage_percentage"] = 100.0
            data["final_schedule"] = {
                "name": "Final Schedule",
                "rendered_schedule_entries": entries,
                "rendered_coverage_percentage": 100.0,
            }
            data["overrides_subschedule"] = {
                "name": "Overrides",
                "rendered_schedule_entries": [],
                "rendered_coverage_percentage": 0.0,
            }
        return data

    def oncalls(
        self,
        since: datetime,
        until: datetime,
        *,
        policy_ids: Sequence[str] = (),
        schedule_ids: Sequence[str] = (),
        user_ids: Sequence[str] = (),
        earliest: bool = False,
    ) -> list[dict[str, Any]]:
        """`/oncalls` entries: per policy, level and target, every on-call in the window.

        Direct user targets are permanently on call (start and end null, no schedule).
        """
        found: list[dict[str, Any]] = []
        for policy in self.policies.values():
            if policy_ids and policy.id not in policy_ids:
                continue
            for level, rule in enumerate(policy.rules, start=1):
                seen: set[str] = set()
                for target in rule.targets:
                    spans: list[tuple[str, datetime | None, datetime | None]]
                    if target.kind == "user":
                        if schedule_ids:
                            continue
                        spans = [(target.id, None, None)]
                    else:
                        if schedule_ids and target.id not in schedule_ids:
                            continue
                        spans = list(self.schedules[target.id].shifts(since, until))
                        if since == until:
                            spans = [self.schedules[target.id].on_call_at(since)]
                    for user_id, begin, end in spans:
                        if user_ids and user_id not in user_ids:
                            continue
                        if earliest and user_id in seen:
                            continue
                        seen.add(user_id)
                        found.append(
                            {
                                "escalation_policy": self.reference("escalation_policy", policy.id),
                                "escalation_level": level,
                                "schedule": (
                                    self.reference("schedule", target.id)
                                    if target.kind == "schedule"
                                    else None
                                ),
                                "user": self.reference("user", user_id),
                                "start": None if begin is None else format_time(begin),
                                "end": None if end is None else format_time(end),
                            }
                        )
        return found
