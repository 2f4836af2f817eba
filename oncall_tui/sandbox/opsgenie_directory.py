"""The fake Opsgenie's seeded account: users, teams, schedules with rotations, escalations.

Who is on call is computed from each schedule's one rotation (a start, a shift length and the
participants taking turns), so on-calls, next on-calls and the rendered timeline always agree.
The JSON helpers here write only fields Opsgenie's spec documents.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_NAMES = (
    ("Ava Moreau", "ava.moreau@example.com"),
    ("Ben Okafor", "ben.okafor@example.com"),
    ("Chen Wei", "chen.wei@example.com"),
    ("Dana Kowalski", "dana.kowalski@example.com"),
    ("Emil Lindqvist", "emil.lindqvist@example.com"),
)


def og_time(value: datetime) -> str:
    """Opsgenie's timestamp form: UTC, milliseconds, Z."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class User:
    id: str
    username: str  # Opsgenie usernames are email addresses
    full_name: str


@dataclass(frozen=True)
class Team:
    id: str
    name: str


@dataclass
class Schedule:
    id: str
    name: str
    description: str
    team: Team
    rotation_id: str
    rotation_name: str
    rotation_type: str  # "daily" | "weekly" | "hourly"
    start: datetime
    participants: Sequence[User]
    timezone: str = "Etc/UTC"
    enabled: bool = True

    @property
    def shift(self) -> timedelta:
        return {
            "hourly": timedelta(hours=1),
            "daily": timedelta(days=1),
            "weekly": timedelta(weeks=1),
        }[self.rotation_type]

    def turn(self, at: datetime) -> int | None:
        """Index of the shift covering `at`, counted from the rotation start."""
        if at < self.start or not self.participants:
            return None
        return int((at - self.start) / self.shift)

    def on_call(self, at: datetime) -> User | None:
        turn = self.turn(at)
        return None if turn is None else self.participants[turn % len(self.participants)]

    def next_on_call(self, at: datetime) -> User | None:
        turn = self.turn(at)
        turn = 0 if turn is None else turn + 1
        return self.participants[turn % len(self.participants)] if self.participants else None

    def periods(self, since: datetime, until: datetime) -> list[tuple[datetime, datetime, User]]:
        """Shifts overlapping [since, until), clipped to it."""
        found: list[tuple[datetime, datetime, User]] = []
        turn = self.turn(max(since, self.start))
        if turn is None:
            return found
        while True:
            start = self.start + self.shift * turn
            if start >= until:
                return found
            end = start + self.shift
            user = self.participants[turn % len(self.participants)]
            found.append((max(start, since), min(end, until), user))
            turn += 1


@dataclass
class Escalation:
    id: str
    name: str
    description: str
    team: Team
    schedules: Sequence[Schedule] = field(default_factory=tuple)
    delay_minutes: int = 10


class Directory:
    """Users, teams, schedules and escalations, the same for the same seed."""

    def __init__(self, *, now: datetime, seed: int = 0) -> None:
        rng = random.Random(seed)

        def new_id() -> str:
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))

        names = list(_NAMES)
        rng.shuffle(names)
        self.users = [User(new_id(), email, name) for name, email in names]
        self.integration_id = new_id()
        platform = Team(new_id(), "Platform")
        search = Team(new_id(), "Search")
        midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        weekly = Schedule(
            id=new_id(),
            name="platform_schedule",
            description="Platform primary on-call, weekly handover on Mondays",
            team=platform,
            rotation_id=new_id(),
            rotation_name="Primary",
            rotation_type="weekly",
            start=midnight - timedelta(days=midnight.weekday() + 14),
            participants=tuple(self.users[:3]),
        )
        daily = Schedule(
            id=new_id(),
            name="search_schedule",
            description="Search on-call, daily handover at 09:00 UTC",
            team=search,
            rotation_id=new_id(),
            rotation_name="Daytime",
            rotation_type="daily",
            start=midnight - timedelta(days=3) + timedelta(hours=9),
            participants=tuple(self.users[2:]),
        )
        self.teams = [platform, search]
        self.schedules = [weekly, daily]
        self.escalations = [
            Escalation(
                new_id(), "platform_escalation", "Platform, then Search", platform, (weekly, daily)
            ),
            Escalation(new_id(), "search_escalation", "Search only", search, (daily,)),
        ]
        self.new_id = new_id

    def schedule(self, identifier: str, by: str) -> Schedule | None:
        for schedule in self.schedules:
            if (schedule.id if by == "id" else schedule.name) == identifier:
                return schedule
        return None

    def escalation(self, identifier: str, by: str) -> Escalation | None:
        for escalation in self.escalations:
            if (escalation.id if by == "id" else escalation.name) == identifier:
                return escalation
        return None

    def user_by_name(self, username: str) -> User | None:
        return next((user for user in self.users if user.username == username), None)

    def responder(self, recipient: Any) -> dict[str, str] | None:
        """A create payload's recipient as a stored responder ({type, id}); None if unknown."""
        if not isinstance(recipient, dict):
            return None
        kind = recipient.get("type")
        ident = recipient.get("id")
        name = recipient.get("name") or recipient.get("username")
        pools: dict[str, list[tuple[str, str]]] = {
            "team": [(t.id, t.name) for t in self.teams],
            "user": [(u.id, u.username) for u in self.users],
            "schedule": [(s.id, s.name) for s in self.schedules],
            "escalation": [(e.id, e.name) for e in self.escalations],
        }
        for known_id, known_name in pools.get(str(kind), ()):
            if ident == known_id or (name is not None and name == known_name):
                return {"type": str(kind), "id": known_id}
        return None


# -- JSON ------------------------------------------------------------------------------------


def participant_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.username, "type": "user"}


def parent_json(schedule: Schedule) -> dict[str, Any]:
    return {"id": schedule.id, "name": schedule.name, "enabled": schedule.enabled}


def schedule_json(schedule: Schedule, *, rotations: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": schedule.id,
        "name": schedule.name,
        "description": schedule.description,
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
        "ownerTeam": {"id": schedule.team.id, "name": schedule.team.name},
    }
    if rotations:
        data["rotations"] = [
            {
                "id": schedule.rotation_id,
                "name": schedule.rotation_name,
                "startDate": og_time(schedule.start),
                "type": schedule.rotation_type,
                "length": 1,
                "participants": [
                    {"type": "user", "id": user.id, "username": user.username}
                    for user in schedule.participants
                ],
            }
        ]
    return data


def escalation_json(escalation: Escalation) -> dict[str, Any]:
    rules = [
        {
            "condition": "if-not-acked",
            "notifyType": "default",
            "delay": {"timeAmount": index * escalation.delay_minutes, "timeUnit": "minutes"},
            "recipient": {"type": "schedule", "id": schedule.id, "name": schedule.name},
        }
        for index, schedule in enumerate(escalation.schedules)
    ]
    return {
        "id": escalation.id,
        "name": escalation.name,
        "description": escalation.description,
        "ownerTeam": {"id": escalation.team.id, "name": escalation.team.name},
        "rules": rules,
        "repeat": {
            "waitInterval": 0,
            "count": 0,
            "resetRecipientStates": False,
            "closeAlertAfterAll": False,
        },
    }


def timeline_json(schedule: Schedule, since: datetime, until: datetime) -> dict[str, Any]:
    periods = [
        {
            "startDate": og_time(start),
            "endDate": og_time(end),
            "type": "default",
            "recipient": participant_json(user),
        }
        for start, end, user in schedule.periods(since, until)
    ]
    rotation = {
        "id": schedule.rotation_id,
        "name": schedule.rotation_name,
        "order": 1.0,
        "periods": periods,
    }
    return {
        "_parent": parent_json(schedule),
        "startDate": og_time(since),
        "endDate": og_time(until),
        "finalTimeline": {"rotations": [rotation]},
    }
