"""Links Alertmanager alert groups to the incidents they opened (DESIGN.md section 6).

Alertmanager's PagerDuty notifier sends `dedup_key = sha256(group key)` (its `Key.Hash()`), and
its Opsgenie notifier uses the same hash as the alert `alias`; PagerDuty copies the dedup key of
the event that opened an incident into the incident's `incident_key`. So an incident belongs to
an alert group when `incident.dedup_key == group_dedup_key(group_key)`.

The group key of an alert is learned in three ways, best first:

1. Webhook notifications carry it (`groupKey`) with the fingerprints of the group's alerts:
   `record_notification` (or `record_log_entry` for the intake's log entries, e.g. replayed
   after a restart) remembers fingerprint -> group keys.
2. An alert seen only by polling (its group was never pushed to us, e.g. it joined an open
   group between notifications, or we started after the notification) gets its key *derived*:
   a group key is `<route key>:<group labels>`, where the group labels are the alert's values
   of the route's `group_by` names, formatted as Go's `LabelSet.String()`. Each notification
   teaches, per receiver, its route key (the group key minus the formatted group labels) and
   the `group_by` names (the group labels' names). A polled alert lists the receivers
   Alertmanager routed it to, so every template learned for one of them gives a candidate key.
3. With the Alertmanager configuration (`/api/v2/status` `config.original`), `use_routes`
   builds the routing tree and computes the exact route keys and group labels of any label set,
   as Alertmanager 0.25 does (matchers sorted, `continue` honoured, `group_by` inherited,
   `...` meaning every label), with no notification needed at all.

Candidates are only ever compared through their hash with an incident's dedup key, so a wrong
candidate (a receiver used by two routes, `group_by: [...]` seen as an explicit list) finds
nothing rather than a wrong incident.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import yaml

from oncall_tui.matchers import MatcherSyntaxError, matches_all, parse_matchers
from oncall_tui.models import Alert, AlertmanagerStatus, Incident, LogEntry, Matcher
from oncall_tui.providers.errors import ProviderError
from oncall_tui.timeline import LogReader
from oncall_tui.webhook_payloads import AlertmanagerNotification

MAX_FINGERPRINTS = 50_000
"""Fingerprints remembered from notifications; the oldest are forgotten first."""
MAX_TEMPLATES_PER_RECEIVER = 16

# Alertmanager's matcher types in the order its `Matchers.Less` sorts them.
_TYPE_ORDER = {"=": 0, "!=": 1, "=~": 2, "!~": 3}
_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def group_dedup_key(group_key: str) -> str:
    """The PagerDuty dedup_key / Opsgenie alias Alertmanager uses for one alert group."""
    return hashlib.sha256(group_key.encode("utf-8")).hexdigest()


def go_quote(text: str) -> str:
    """Go's `%q` of a string (strconv.Quote), as `LabelSet.String()` writes label values."""
    out: list[str] = ['"']
    for char in text:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable() or char == " ":
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def labelset_string(labels: Mapping[str, str]) -> str:
    """Prometheus' `LabelSet.String()`: `{a="1", b="2"}`, names sorted."""
    return "{" + ", ".join(f"{name}={go_quote(labels[name])}" for name in sorted(labels)) + "}"


def _matcher_string(matcher: Matcher) -> str:
    # Alertmanager 0.25 `Matcher.String()`: the value escaped as OpenMetrics does, not %q.
    value = matcher.value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'{matcher.name}{matcher.operator}"{value}"'


def matchers_key(matchers: Sequence[Matcher]) -> str:
    """Alertmanager's `Matchers.String()` of a route's matchers, in its sort order."""
    ordered = sorted(matchers, key=lambda m: (m.name, m.value, _TYPE_ORDER[m.operator]))
    return "{" + ",".join(_matcher_string(m) for m in ordered) + "}"


@dataclass(frozen=True, slots=True)
class GroupTemplate:
    """How one route forms group keys: `<route_key>:<labels of group_by>`."""

    route_key: str
    group_by: tuple[str, ...]
    group_by_all: bool = False

    def key_for(self, labels: Mapping[str, str]) -> str:
        if self.group_by_all:
            chosen = dict(labels)
        else:
            chosen = {name: labels[name] for name in self.group_by if name in labels}
        return f"{self.route_key}:{labelset_string(chosen)}"


def template_from_group(group_key: str, group_labels: Mapping[str, str]) -> GroupTemplate | None:
    """The route template behind one notification's group key, when the key has the known form."""
    suffix = ":" + labelset_string(group_labels)
    if not group_key.endswith(suffix):
        return None
    return GroupTemplate(group_key[: -len(suffix)], tuple(sorted(group_labels)))


# --- the routing tree ------------------------------------------------------------------------


class RouteConfigError(ValueError):
    pass


@dataclass(slots=True)
class Route:
    """One node of Alertmanager's routing tree, as `dispatch.NewRoute` builds it."""

    key: str
    receiver: str
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...]
    group_by_all: bool
    continue_: bool
    routes: list[Route] = field(default_factory=list)

    @property
    def template(self) -> GroupTemplate:
        return GroupTemplate(self.key, self.group_by, self.group_by_all)

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes an alert with these labels ends at (Alertmanager's `Route.Match`)."""
        if not matches_all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            matched = child.match(labels)
            found.extend(matched)
            if matched and not child.continue_:
                break
        return found or [self]


def _route_matchers(node: Mapping[str, Any]) -> tuple[Matcher, ...]:
    found: list[Matcher] = []
    for name, value in dict(node.get("match") or {}).items():
        found.append(Matcher(str(name), str(value)))
    for name, value in dict(node.get("match_re") or {}).items():
        # Alertmanager anchors the old-style regex in the matcher itself, and so in the key.
        found.append(Matcher(str(name), f"^(?:{value})$", is_regex=True))
    for text in node.get("matchers") or []:
        try:
            found.extend(parse_matchers(str(text)))
        except MatcherSyntaxError as exc:
            raise RouteConfigError(f"route matcher {text!r}: {exc}") from None
    return tuple(found)


def _build_route(node: Mapping[str, Any], parent: Route | None) -> Route:
    matchers = _route_matchers(node)
    own = matchers_key(matchers)
    key = f"{parent.key}/{own}" if parent is not None else own
    raw_group_by = node.get("group_by")
    if raw_group_by is None and parent is not None:
        group_by, group_by_all = parent.group_by, parent.group_by_all
    else:
        names = [str(name) for name in raw_group_by or []]
        group_by_all = "..." in names
        group_by = () if group_by_all else tuple(sorted(set(names)))
    route = Route(
        key=key,
        receiver=str(node.get("receiver") or (parent.receiver if parent else "")),
        matchers=matchers,
        group_by=group_by,
        group_by_all=group_by_all,
        continue_=bool(node.get("continue", False)),
    )
    for child in node.get("routes") or []:
        if not isinstance(child, Mapping):
            raise RouteConfigError("a route entry is not a mapping")
        route.routes.append(_build_route(child, route))
    return route


def parse_route_tree(config_yaml: str) -> Route:
    """The routing tree of an Alertmanager configuration (YAML text). Raises RouteConfigError."""
    try:
        document = yaml.safe_load(config_yaml)
    except yaml.YAMLError as exc:
        raise RouteConfigError(f"not YAML: {exc}") from None
    if not isinstance(document, Mapping) or not isinstance(document.get("route"), Mapping):
        raise RouteConfigError("no route in the configuration")
    root = _build_route(document["route"], None)
    # The root route matches everything and its `continue` means nothing.
    root.matchers = ()
    root.continue_ = False
    return root


# --- the correlator --------------------------------------------------------------------------


class Correlator:
    """Remembers which alert belongs to which group, and finds the incidents of groups."""

    def __init__(self, *, max_fingerprints: int = MAX_FINGERPRINTS) -> None:
        self._max = max_fingerprints
        self._groups: OrderedDict[str, tuple[str, ...]] = OrderedDict()  # fingerprint -> keys
        self._by_hash: dict[str, str] = {}  # sha256 -> group key, for group_key_of
        self._templates: dict[str, list[GroupTemplate]] = {}  # receiver -> learned templates
        self._routes: Route | None = None
        self._derived: dict[str, tuple[str, ...]] = {}  # fingerprint -> derived candidate keys
        self._hashes: dict[str, str] = {}  # group key -> sha256

    # -- learning ----------------------------------------------------------------------------

    def record_notification(self, notification: AlertmanagerNotification) -> None:
        """Fingerprint -> group key for every alert of one webhook notification."""
        self.record_group(
            notification.group_key,
            [a.fingerprint for a in notification.alerts],
            receiver=notification.receiver,
            group_labels=notification.group_labels,
        )

    def record_log_entry(self, entry: LogEntry) -> bool:
        """The same from the log entry the webhook intake wrote; False if it is not one."""
        if entry.source != "alertmanager" or entry.kind != "webhook":
            return False
        data = entry.data
        group_key = data.get("group_key")
        alerts = data.get("alerts")
        if not isinstance(group_key, str) or not isinstance(alerts, list):
            return False
        fingerprints = [
            str(a["fingerprint"]) for a in alerts if isinstance(a, Mapping) and a.get("fingerprint")
        ]
        labels = data.get("group_labels")
        self.record_group(
            group_key,
            fingerprints,
            receiver=str(data.get("receiver") or ""),
            group_labels=labels if isinstance(labels, Mapping) else None,
        )
        return True

    def record_group(
        self,
        group_key: str,
        fingerprints: Iterable[str],
        *,
        receiver: str = "",
        group_labels: Mapping[str, str] | None = None,
    ) -> None:
        self._index(group_key)
        for fingerprint in fingerprints:
            keys = self._groups.pop(fingerprint, ())
            if group_key not in keys:
                keys = (*keys, group_key)
            self._groups[fingerprint] = keys
        while len(self._groups) > self._max:
            self._groups.popitem(last=False)
        if receiver and group_labels is not None:
            template = template_from_group(group_key, group_labels)
            known = self._templates.setdefault(receiver, [])
            if template is not None and template not in known:
                known.append(template)
                del known[:-MAX_TEMPLATES_PER_RECEIVER]
                self._derived.clear()

    def use_routes(self, config_yaml: str) -> None:
        """Derive group keys from this Alertmanager configuration. Raises RouteConfigError."""
        self._routes = parse_route_tree(config_yaml)
        self._derived.clear()

    # -- group keys --------------------------------------------------------------------------

    def group_keys_of(self, alert: Alert) -> tuple[str, ...]:
        """Every group key the alert may belong to: notified ones first, then derived ones."""
        notified = self._groups.get(alert.fingerprint, ())
        derived = self._derived.get(alert.fingerprint)
        if derived is None:
            derived = self._derive(alert)
            if len(self._derived) >= self._max:
                self._derived.clear()
            self._derived[alert.fingerprint] = derived
        return notified + tuple(k for k in derived if k not in notified)

    def _derive(self, alert: Alert) -> tuple[str, ...]:
        keys: dict[str, None] = {}
        if self._routes is not None:
            for route in self._routes.match(alert.labels):
                keys[route.template.key_for(alert.labels)] = None
        for receiver in alert.receivers:
            for template in self._templates.get(receiver, ()):
                keys[template.key_for(alert.labels)] = None
                if set(template.group_by) == set(alert.labels):
                    # `group_by: [...]` looks like an explicit list of every label.
                    keys[GroupTemplate(template.route_key, (), True).key_for(alert.labels)] = None
        return tuple(keys)

    def dedup_keys_of(self, alert: Alert) -> tuple[str, ...]:
        return tuple(self._hash(key) for key in self.group_keys_of(alert))

    def _hash(self, group_key: str) -> str:
        # Hashing every alert's keys on every lookup would cost more than the lookup itself.
        digest = self._hashes.get(group_key)
        if digest is None:
            if len(self._hashes) >= self._max:
                self._hashes.clear()
            digest = self._hashes[group_key] = group_dedup_key(group_key)
        return digest

    # -- incidents ---------------------------------------------------------------------------

    def incident_for_alert(self, alert: Alert, incidents: Sequence[Incident]) -> Incident | None:
        """The incident opened for the alert's group: an open one first, then the newest."""
        wanted = set(self.dedup_keys_of(alert))
        if not wanted:
            return None
        found = [i for i in incidents if i.dedup_key and i.dedup_key in wanted]
        if not found:
            return None
        return max(found, key=lambda i: (i.is_open, i.created_at))

    def incidents_for_alert(self, alert: Alert, incidents: Sequence[Incident]) -> list[Incident]:
        """Every incident of the alert's groups (PagerDuty and Opsgenie alike), open first."""
        wanted = set(self.dedup_keys_of(alert))
        found = [i for i in incidents if i.dedup_key and i.dedup_key in wanted]
        return sorted(found, key=lambda i: (not i.is_open, -i.created_at.timestamp()))

    def alerts_for_incident(self, incident: Incident, alerts: Sequence[Alert]) -> list[Alert]:
        """Every alert of the incident's group, including those that joined without a page."""
        if not incident.dedup_key:
            return []
        return [a for a in alerts if incident.dedup_key in self.dedup_keys_of(a)]

    def group_key_of(self, incident: Incident, alerts: Sequence[Alert] = ()) -> str | None:
        """The Alertmanager group key behind the incident: from a notification, else derived
        from one of `alerts` (pass the current alerts to cover groups seen only by polling)."""
        if not incident.dedup_key:
            return None
        known = self._by_hash.get(incident.dedup_key)
        if known is not None:
            return known
        for alert in alerts:
            for key in self.group_keys_of(alert):
                if self._hash(key) == incident.dedup_key:
                    self._index(key)
                    return key
        return None

    def remember_derived(self, alerts: Sequence[Alert]) -> None:
        """Index the derived keys of polled alerts so `group_key_of` also knows their groups."""
        for alert in alerts:
            for key in self.group_keys_of(alert):
                self._index(key)

    def _index(self, group_key: str) -> None:
        digest = self._hash(group_key)
        if digest not in self._by_hash:
            self._by_hash[digest] = group_key
            if len(self._by_hash) > self._max:
                self._by_hash.pop(next(iter(self._by_hash)))


# --- warming up --------------------------------------------------------------------------------


class _StatusReader(Protocol):
    async def status(self) -> AlertmanagerStatus: ...


async def learn_from_log(
    correlator: Correlator, store: LogReader, *, since: datetime, limit: int = 5000
) -> int:
    """Replay the Alertmanager webhooks logged since `since` (after a restart); returns how many."""
    entries = await store.entries(
        since=since, sources=["alertmanager"], kinds=["webhook"], limit=limit, newest_first=False
    )
    return sum(1 for entry in entries if correlator.record_log_entry(entry))


async def learn_routes(correlator: Correlator, client: _StatusReader) -> bool:
    """Take the routing tree from one Alertmanager's running configuration; False if unusable.

    Never raises for a peer that is down or a configuration we cannot read: notifications
    still teach the keys then.
    """
    try:
        status = await client.status()
    except ProviderError:
        return False
    if not status.config_yaml:
        return False
    try:
        correlator.use_routes(status.config_yaml)
    except RouteConfigError:
        return False
    return True
