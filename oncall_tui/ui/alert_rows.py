"""The Alerts view's row model: which alerts show, in which groups, in which order.

Kept apart from the widget so that a refresh of 10,000 alerts touches only what changed: alerts
are keyed by `Alert.key`, only the groups an update touches are re-sorted, and the flat row list
is rebuilt only when membership or order changed. No Textual here; the widget renders the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from oncall_tui.matchers import AlertFilter
from oncall_tui.models import Alert, AlertState, severity_rank

GroupKey = tuple[str, ...]

HIDDEN_STATES = frozenset({AlertState.SILENCED, AlertState.INHIBITED})


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A group header line: the values of the grouping labels and what the group holds."""

    group: GroupKey
    size: int
    active: int
    worst: str  # the most severe severity in the group

    @property
    def key(self) -> str:
        return self.key_for(self.group)

    @staticmethod
    def key_for(group: GroupKey) -> str:
        return "group:" + "\x1f".join(group)


Row = GroupRow | Alert


def _same_row(a: Alert, b: Alert) -> bool:
    """Whether two versions of one alert look the same everywhere.

    Cheaper than dataclass equality on the common path, where nearly every alert of a poll is
    unchanged; `updated_at` is left out on purpose, since Alertmanager bumps it on every re-send
    and nothing the operator reads depends on it.
    """
    return (
        a.state == b.state
        and a.starts_at == b.starts_at
        and a.ends_at == b.ends_at
        and a.annotations == b.annotations
        and a.silenced_by == b.silenced_by
        and a.inhibited_by == b.inhibited_by
        and a.receivers == b.receivers
        and a.seen_by == b.seen_by
        and a.generator_url == b.generator_url
        # Same key means same labels in Alertmanager (the fingerprint hashes them); checked
        # anyway so that a source that keys differently cannot leave a stale row.
        and a.labels == b.labels
    )


def _alert_order(alert: Alert) -> tuple[int, float, str]:
    # Most severe first, then newest first: the newest is what just woke the operator.
    return (severity_rank(alert.severity), -alert.starts_at.timestamp(), alert.key)


@dataclass(slots=True)
class _Group:
    members: dict[str, Alert]
    ordered: list[Alert]
    dirty: bool = True

    def sort(self) -> None:
        if self.dirty:
            self.ordered = sorted(self.members.values(), key=_alert_order)
            self.dirty = False


class AlertRows:
    """All alerts of the snapshot, and the grouped, filtered, ordered rows that are shown."""

    def __init__(self, group_by: Sequence[str] = ("alertname", "service")) -> None:
        self.group_by = tuple(group_by)
        self.filter = AlertFilter.parse("")
        self.show_suppressed = False
        self._all: dict[str, Alert] = {}
        self._groups: dict[GroupKey, _Group] = {}
        self._rows: list[Row] = []
        self._index: dict[str, int] = {}
        self._hidden = 0

    # -- queries -----------------------------------------------------------------------------

    @property
    def rows(self) -> Sequence[Row]:
        return self._rows

    @property
    def total(self) -> int:
        """Every alert in the snapshot."""
        return len(self._all)

    @property
    def shown(self) -> int:
        return len(self._rows) - len(self._groups)

    @property
    def hidden_suppressed(self) -> int:
        """Silenced or inhibited alerts that `i` would show (and the filter lets through)."""
        return self._hidden

    def index_of(self, key: str) -> int | None:
        return self._index.get(key)

    def alert(self, key: str) -> Alert | None:
        return self._all.get(key)

    def shown_alerts(self) -> list[Alert]:
        return [row for row in self._rows if isinstance(row, Alert)]

    def group_of(self, alert: Alert) -> GroupKey:
        return tuple(alert.labels.get(name, "") for name in self.group_by)

    # -- updates -----------------------------------------------------------------------------

    def _visible(self, alert: Alert) -> bool:
        if not self.show_suppressed and alert.state in HIDDEN_STATES:
            return False
        return self.filter.matches(alert)

    def _add(self, alert: Alert) -> None:
        group = self._groups.get(gkey := self.group_of(alert))
        if group is None:
            group = self._groups[gkey] = _Group(members={}, ordered=[])
        group.members[alert.key] = alert
        group.dirty = True

    def _discard(self, alert: Alert) -> None:
        gkey = self.group_of(alert)
        group = self._groups.get(gkey)
        if group is None or group.members.pop(alert.key, None) is None:
            return
        group.dirty = True
        if not group.members:
            del self._groups[gkey]

    def set_alerts(self, alerts: Iterable[Alert]) -> set[str]:
        """Replace the alerts; returns the keys whose row changed (added, removed or different).

        An alert that changed without moving (same group, same place in the order, same
        visibility) is swapped in place; only new, gone or moved alerts re-sort their groups and
        rebuild the row list. A steady refresh so costs about one comparison per alert.
        """
        fresh = {alert.key: alert for alert in alerts}
        old = self._all
        changed: set[str] = set()
        moved = False
        for key, alert in fresh.items():
            before = old.get(key)
            if before is None:
                changed.add(key)
                self._put_in(alert)
                moved = True
            elif before is not alert and not _same_row(before, alert):
                changed.add(key)
                if not self._replace_in_place(before, alert):
                    self._take_out(before)
                    self._put_in(alert)
                    moved = True
        if len(fresh) != len(old) or moved:
            for key, before in old.items():
                if key not in fresh:
                    changed.add(key)
                    self._take_out(before)
                    moved = True
        self._all = fresh
        if moved:
            self._rebuild()
        return changed

    def _replace_in_place(self, before: Alert, alert: Alert) -> bool:
        visible = self._visible(before)
        if (
            visible != self._visible(alert)
            or before.state != alert.state
            or _alert_order(before) != _alert_order(alert)
            or self.group_of(before) != self.group_of(alert)
        ):
            return False
        if not visible:
            return True  # hidden before and after: nothing shown changes
        group = self._groups[self.group_of(alert)]
        group.members[alert.key] = alert
        index = self._index[alert.key]
        self._rows[index] = alert
        header = self._index[GroupRow.key_for(self.group_of(alert))]
        group.ordered[index - header - 1] = alert
        return True

    def _put_in(self, alert: Alert) -> None:
        if self._visible(alert):
            self._add(alert)
        elif alert.state in HIDDEN_STATES and self.filter.matches(alert):
            self._hidden += 1

    def _take_out(self, alert: Alert) -> None:
        if self._visible(alert):
            self._discard(alert)
        elif alert.state in HIDDEN_STATES and self.filter.matches(alert):
            self._hidden -= 1

    def refilter(self) -> None:
        """Recompute membership from scratch after the filter or the suppressed toggle changed."""
        self._groups.clear()
        self._hidden = 0
        for alert in self._all.values():
            self._put_in(alert)
        self._rebuild()

    def _rebuild(self) -> None:
        for group in self._groups.values():
            group.sort()
        ordered = sorted(self._groups.items(), key=_group_order)
        rows: list[Row] = []
        for gkey, group in ordered:
            members = group.ordered
            worst = members[0].severity if members else "none"
            active = sum(1 for a in members if a.state == AlertState.ACTIVE)
            rows.append(GroupRow(gkey, len(members), active, worst))
            rows.extend(members)
        self._rows = rows
        self._index = {row.key: i for i, row in enumerate(rows)}


def _group_order(item: tuple[GroupKey, _Group]) -> tuple[int, GroupKey]:
    gkey, group = item
    worst = group.ordered[0] if group.ordered else None
    return (severity_rank(worst.severity) if worst else 9, gkey)
