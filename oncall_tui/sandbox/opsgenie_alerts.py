"""The fake Opsgenie's alerts: their state, their JSON, and the list endpoint's query syntax.

Used by `fake_opsgenie.py`; the JSON carries only fields Opsgenie's spec documents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from oncall_tui.sandbox.opsgenie_directory import og_time


class OpsgenieError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class FakeAlert:
    id: str
    tiny_id: int
    alias: str
    message: str
    created_at: datetime
    description: str = ""
    details: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    priority: str = "P3"
    source: str = ""
    entity: str = ""
    actions: list[str] = field(default_factory=list)
    responders: list[dict[str, str]] = field(default_factory=list)
    updated_at: datetime | None = None
    last_occurred_at: datetime | None = None
    count: int = 1
    status: str = "open"
    acknowledged: bool = False
    owner: str = ""
    ack_time: int | None = None
    close_time: int | None = None
    acknowledged_by: str = ""
    closed_by: str = ""
    notes: list[tuple[str, str, datetime]] = field(default_factory=list)


def alert_json(alert: FakeAlert, *, full: bool, integration_id: str = "") -> dict[str, Any]:
    """An alert as Opsgenie lists it (BaseAlert) or returns it by identifier (Alert)."""
    report: dict[str, Any] = {}
    if alert.ack_time is not None:
        report |= {"ackTime": alert.ack_time, "acknowledgedBy": alert.acknowledged_by}
    if alert.close_time is not None:
        report |= {"closeTime": alert.close_time, "closedBy": alert.closed_by}
    data: dict[str, Any] = {
        "id": alert.id,
        "tinyId": str(alert.tiny_id),
        "alias": alert.alias,
        "message": alert.message,
        "status": alert.status,
        "acknowledged": alert.acknowledged,
        "isSeen": alert.acknowledged,
        "tags": list(alert.tags),
        "snoozed": False,
        "count": alert.count,
        "lastOccurredAt": og_time(alert.last_occurred_at or alert.created_at),
        "createdAt": og_time(alert.created_at),
        "updatedAt": og_time(alert.updated_at or alert.created_at),
        "source": alert.source,
        "owner": alert.owner,
        "priority": alert.priority,
        "responders": [dict(r) for r in alert.responders],
        "integration": {"id": integration_id, "name": "API", "type": "API"},
        "report": report,
    }
    if full:
        data |= {
            "actions": list(alert.actions),
            "entity": alert.entity,
            "description": alert.description,
            "details": dict(alert.details),
        }
    return data


def int_param(value: str | None, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise OpsgenieError(422, f"Invalid number [{value}]") from None
    if not low <= number <= high:
        raise OpsgenieError(422, f"Value [{value}] should be between {low} and {high}")
    return number


def sort_key(alert: FakeAlert, sort: str) -> Any:
    return {
        "createdAt": alert.created_at,
        "updatedAt": alert.updated_at or alert.created_at,
        "tinyId": alert.tiny_id,
        "alias": alert.alias,
        "message": alert.message,
        "status": alert.status,
        "count": alert.count,
        "owner": alert.owner,
    }[sort]


def parse_query(query: str) -> list[Callable[[FakeAlert], bool]]:
    """Opsgenie search terms joined by AND; a bare word searches the message."""
    fields: dict[str, Callable[[FakeAlert], list[str]]] = {
        "status": lambda a: [a.status],
        "acknowledged": lambda a: [str(a.acknowledged).lower()],
        "alias": lambda a: [a.alias],
        "tinyid": lambda a: [str(a.tiny_id)],
        "priority": lambda a: [a.priority],
        "owner": lambda a: [a.owner],
        "tag": lambda a: list(a.tags),
        "tags": lambda a: list(a.tags),
        "message": lambda a: [a.message],
    }
    terms: list[Callable[[FakeAlert], bool]] = []
    for raw in query.replace(" and ", " AND ").split(" AND "):
        term = raw.strip()
        if not term:
            continue
        name, sep, value = term.partition("=") if "=" in term else term.partition(":")
        if not sep:
            word = term.strip('"').lower()
            terms.append(_contains(word))
            continue
        getter = fields.get(name.strip().lower())
        if getter is None:
            raise OpsgenieError(422, f"Invalid query [{query}]")
        wanted = value.strip().strip('"').lower()
        terms.append(_field_is(getter, wanted))
    return terms


def _contains(word: str) -> Callable[[FakeAlert], bool]:
    return lambda alert: word in alert.message.lower()


def _field_is(getter: Callable[[FakeAlert], list[str]], wanted: str) -> Callable[[FakeAlert], bool]:
    return lambda alert: wanted in (value.lower() for value in getter(alert))


def paging_links(
    base: str, query: dict[str, str], offset: int, limit: int, total: int
) -> tuple[dict[str, str], dict[str, str]]:
    """The list's `paging` object and the same links as `X-Paging-*` headers."""

    def link(at: int) -> str:
        return f"{base}?{urlencode({**query, 'offset': str(at), 'limit': str(limit)})}"

    last = max(0, (total - 1) // limit * limit)
    paging = {"first": link(0), "last": link(last)}
    if offset + limit < total:
        paging["next"] = link(offset + limit)
    if offset > 0:
        paging["prev"] = link(max(0, offset - limit))
    headers = {f"X-Paging-{key.title()}": value for key, value in paging.items()}
    return paging, headers
