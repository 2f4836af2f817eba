"""The Alerts view's row model: which alerts show, in which groups, in which order.

Kept apart from the widget so that a refresh of 10,000 alerts touches only what changed: alerts
are keyed by `Alert.key`, each group keeps its alerts sorted (an arrival or a departure is a
binary search, never a re-sort), and a row's index is computed from its group's offset rather
than kept in a dict of every row. A filter keystroke walks the groups in their kept order, so
it filters without sorting. No Textual here; the widget renders the rows.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

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


Order = tuple[int, float, str]


def _group_key_builder(names: tuple[str, ...]) -> Callable[[Mapping[str, str]], GroupKey]:
    """The group of a label map; a call of a generator per alert cost more than the rest."""
    if len(names) == 2:
        first, second = names
        return lambda labels: (labels.get(first, ""), labels.get(second, ""))
    return lambda labels: tuple([labels.get(name, "") for name in names])


def _first(entry: tuple[Order, Alert]) -> Order:
    return entry[0]


def _haystack_of(alert: Alert) -> str:
    # Same answer as AlertFilter.matches (the needle is in some value), one `in` per alert.
    return "\x00".join(
        value.lower() for value in (*alert.labels.values(), *alert.annotations.values())
    )


# Where an alert is counted: shown in its group, counted as hidden by `i`, or filtered out.
_OUT, _SHOWN, _HIDDEN = 0, 1, 2


def _alert_order(alert: Alert) -> Order:
    # Most severe first, then newest first: the newest is what just woke the operator.
    return (severity_rank(alert.severity), -alert.starts_at.timestamp(), alert.key)


@dataclass(slots=True)
class _Group:
    """One group's alerts in display order: all of them, and the ones shown."""

    all_orders: list[Order] = field(default_factory=list)
    all_alerts: list[Alert] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    shown: list[Alert] = field(default_factory=list)
    active: int = 0

    @staticmethod
    def insert(orders: list[Order], alerts: list[Alert], order: Order, alert: Alert) -> None:
        i = bisect_left(orders, order)
        orders.insert(i, order)
        alerts.insert(i, alert)

    @staticmethod
    def remove(orders: list[Order], alerts: list[Alert], order: Order) -> None:
        i = bisect_left(orders, order)
        if i < len(orders) and orders[i] == order:
            del orders[i]
            del alerts[i]


class AlertRows:
    """All alerts of the snapshot, and the grouped, filtered, ordered rows that are shown."""

    def __init__(self, group_by: Sequence[str] = ("alertname", "service")) -> None:
        self.group_by = tuple(group_by)
        self._group_key = _group_key_builder(self.group_by)
        self._filter = AlertFilter.parse("")
        self._needle = ""
        self.show_suppressed = False
        self._all: dict[str, Alert] = {}
        # Per alert key: its sort order, its group and where it is counted.
        self._meta: dict[str, tuple[Order, GroupKey, int]] = {}
        # Lower-cased label and annotation values per alert, built when a text filter needs them.
        self._haystack: dict[str, str] = {}
        self._groups: dict[GroupKey, _Group] = {}
        self._shown = 0
        self._hidden = 0
        self._rows: list[Row] | None = None
        self._starts: dict[GroupKey, int] = {}
        self._group_index: dict[str, int] = {}

    @property
    def filter(self) -> AlertFilter:
        return self._filter

    @filter.setter
    def filter(self, value: AlertFilter) -> None:
        # Takes effect at the next `refilter()`, as the view calls right after setting it.
        self._filter = value
        self._needle = value.text.lower()

    # -- queries -----------------------------------------------------------------------------

    @property
    def rows(self) -> Sequence[Row]:
        if self._rows is None:
            self._build_rows()
        assert self._rows is not None
        return self._rows

    @property
    def total(self) -> int:
        """Every alert in the snapshot."""
        return len(self._all)

    @property
    def shown(self) -> int:
        return self._shown

    @property
    def hidden_suppressed(self) -> int:
        """Silenced or inhibited alerts that `i` would show (and the filter lets through)."""
        return self._hidden

    def index_of(self, key: str) -> int | None:
        meta = self._meta.get(key)
        if meta is None:
            if key.startswith("group:"):
                self.rows  # noqa: B018 - builds the rows and their offsets
                return self._group_index.get(key)
            return None
        order, gkey, where = meta
        if where != _SHOWN:
            return None
        self.rows  # noqa: B018 - builds the rows and their offsets
        group = self._groups[gkey]
        return self._starts[gkey] + 1 + bisect_left(group.orders, order)

    def alert(self, key: str) -> Alert | None:
        return self._all.get(key)

    def shown_alerts(self) -> list[Alert]:
        return [row for row in self.rows if isinstance(row, Alert)]

    def group_of(self, alert: Alert) -> GroupKey:
        return self._group_key(alert.labels)

    # -- updates -----------------------------------------------------------------------------

    def _matches(self, key: str, alert: Alert) -> bool:
        flt = self._filter
        if not flt.active:
            return True
        if flt.matchers or "\x00" in self._needle:
            return flt.matches(alert)
        haystack = self._haystack.get(key)
        if haystack is None:
            haystack = self._haystack[key] = _haystack_of(alert)
        return self._needle in haystack

    def prepare_text_search(self, budget: int | None = None) -> bool:
        """Build what a text filter searches, for every alert, before the first keystroke.

        With `budget`, for at most that many alerts; True once every alert has it.
        """
        haystack = self._haystack
        if len(haystack) == len(self._all):
            return True  # built for every alert (it only holds keys of alerts in `_all`)
        built = 0
        for key, alert in self._all.items():
            if key not in haystack:
                if budget is not None and built >= budget:
                    return False
                haystack[key] = _haystack_of(alert)
                built += 1
        return True

    def _where(self, key: str, alert: Alert) -> int:
        if alert.state in HIDDEN_STATES and not self.show_suppressed:
            return _HIDDEN if self._matches(key, alert) else _OUT
        return _SHOWN if self._matches(key, alert) else _OUT

    def _put_in(self, key: str, alert: Alert) -> None:
        order = _alert_order(alert)
        gkey = self.group_of(alert)
        where = self._where(key, alert)
        self._meta[key] = (order, gkey, where)
        group = self._groups.get(gkey)
        if group is None:
            group = self._groups[gkey] = _Group()
        group.insert(group.all_orders, group.all_alerts, order, alert)
        if where == _SHOWN:
            group.insert(group.orders, group.shown, order, alert)
            self._shown += 1
            if alert.state == AlertState.ACTIVE:
                group.active += 1
        elif where == _HIDDEN:
            self._hidden += 1

    def _take_out(self, key: str, alert: Alert) -> None:
        meta = self._meta.pop(key, None)
        self._haystack.pop(key, None)
        if meta is None:
            return
        order, gkey, where = meta
        group = self._groups[gkey]
        group.remove(group.all_orders, group.all_alerts, order)
        if where == _SHOWN:
            group.remove(group.orders, group.shown, order)
            self._shown -= 1
            if alert.state == AlertState.ACTIVE:
                group.active -= 1
        elif where == _HIDDEN:
            self._hidden -= 1
        if not group.all_orders:
            del self._groups[gkey]

    def set_alerts(self, alerts: Iterable[Alert]) -> set[str]:
        """Replace the alerts; returns the keys whose row changed (added, removed or different).

        An unchanged alert (the same object, or one that looks the same) costs one comparison;
        a new, gone or changed one a binary search in its group. The row list is rebuilt only
        when something changed, from the groups, which are already in order.
        """
        fresh = {alert.key: alert for alert in alerts}
        old = self._all
        if not old:
            self._load(fresh)
            return set(fresh)
        changed: set[str] = set()
        added = False
        for key, alert in fresh.items():
            before = old.get(key)
            if before is None:
                changed.add(key)
                self._put_in(key, alert)
                added = True
            elif before is not alert and not _same_row(before, alert):
                changed.add(key)
                self._take_out(key, before)
                self._put_in(key, alert)
        # Without an arrival, equal sizes mean the same keys: nothing can have left.
        if added or len(fresh) != len(old):
            for key, before in old.items():
                if key not in fresh:
                    changed.add(key)
                    self._take_out(key, before)
        self._all = fresh
        if changed:
            self._rows = None
        return changed

    def _load(self, alerts: dict[str, Alert]) -> None:
        """A first load: every group sorted once, instead of a binary insertion per alert."""
        members: dict[GroupKey, list[tuple[Order, Alert]]] = {}
        for key, alert in alerts.items():
            order = _alert_order(alert)
            gkey = self.group_of(alert)
            self._meta[key] = (order, gkey, _OUT)
            entries = members.get(gkey)
            if entries is None:
                entries = members[gkey] = []
            entries.append((order, alert))
        for gkey, entries in members.items():
            entries.sort(key=_first)
            group = self._groups[gkey] = _Group()
            group.all_orders = [order for order, _ in entries]
            group.all_alerts = [alert for _, alert in entries]
        self._all = alerts
        self.refilter()

    def refilter(self) -> None:
        """Recompute what is shown after the filter or the suppressed toggle changed.

        Each group already holds all its alerts in order, so this filters without sorting. Runs
        on every filter keystroke over every alert: one tight loop, no call per alert for a text
        filter (its haystacks are built once, see `prepare_text_search`).
        """
        flt = self._filter
        needle = self._needle
        text_only = flt.active and not flt.matchers and "\x00" not in needle
        if text_only:
            self.prepare_text_search()
        haystack = self._haystack
        everything = not flt.active
        hidden_states = () if self.show_suppressed else HIDDEN_STATES
        active_state = AlertState.ACTIVE
        meta = self._meta
        shown_total = hidden_total = 0
        for group in self._groups.values():
            orders: list[Order] = []
            shown: list[Alert] = []
            active = 0
            for order, alert in zip(group.all_orders, group.all_alerts, strict=True):
                key = order[2]
                if everything:
                    match = True
                elif text_only:
                    match = needle in haystack[key]
                else:
                    match = flt.matches(alert)
                if not match:
                    where = _OUT
                elif alert.state in hidden_states:
                    where = _HIDDEN
                    hidden_total += 1
                else:
                    where = _SHOWN
                    orders.append(order)
                    shown.append(alert)
                    if alert.state is active_state:
                        active += 1
                old = meta[key]
                if old[2] != where:
                    meta[key] = (order, old[1], where)
            group.orders = orders
            group.shown = shown
            group.active = active
            shown_total += len(shown)
        self._shown = shown_total
        self._hidden = hidden_total
        self._rows = None

    def _build_rows(self) -> None:
        shown = [
            (severity_rank(group.shown[0].severity), gkey, group)
            for gkey, group in self._groups.items()
            if group.shown
        ]
        shown.sort(key=lambda item: (item[0], item[1]))
        rows: list[Row] = []
        starts: dict[GroupKey, int] = {}
        group_index: dict[str, int] = {}
        for _rank, gkey, group in shown:
            starts[gkey] = len(rows)
            group_index[GroupRow.key_for(gkey)] = len(rows)
            rows.append(GroupRow(gkey, len(group.shown), group.active, group.shown[0].severity))
            rows.extend(group.shown)
        self._rows = rows
        self._starts = starts
        self._group_index = group_index
