"""Alertmanager as a source: poll every peer, merge each HA cluster, track health and changes.

Polling is the source of truth; webhooks only wake the loop early (DESIGN.md section 6). A peer
that fails keeps its cluster alive through the other peers; a cluster whose peers all fail keeps
its last known alerts, marked stale, rather than showing an empty list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from oncall_tui.clock import Clock
from oncall_tui.engine.cluster_merge import merge_cluster_alerts, merge_cluster_silences
from oncall_tui.models import Alert, Silence, SourceHealth
from oncall_tui.providers.errors import ProviderError

if TYPE_CHECKING:
    from oncall_tui.providers.alertmanager import AlertmanagerClient

OFFLOAD_ALERTS = 1000


@dataclass(slots=True)
class ClusterState:
    name: str
    peers: list[AlertmanagerClient]
    alerts: list[Alert] = field(default_factory=list)
    silences: list[Silence] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AlertChange:
    """What one poll changed, for the log and for notifications."""

    fired: tuple[Alert, ...] = ()
    resolved: tuple[Alert, ...] = ()
    state_changed: tuple[tuple[Alert, str], ...] = ()  # (alert, previous state)
    silences_added: tuple[Silence, ...] = ()
    silences_ended: tuple[Silence, ...] = ()

    def __bool__(self) -> bool:
        return bool(
            self.fired
            or self.resolved
            or self.state_changed
            or self.silences_added
            or self.silences_ended
        )


class AlertmanagerSource:
    def __init__(self, peers: Sequence[AlertmanagerClient], clock: Clock) -> None:
        self._clock = clock
        self.clusters: dict[str, ClusterState] = {}
        for peer in peers:
            self.clusters.setdefault(peer.cluster, ClusterState(peer.cluster, [])).peers.append(
                peer
            )
        self.health: dict[str, SourceHealth] = {
            peer.name: SourceHealth(name=peer.name, kind="alertmanager", detail=peer.url)
            for peer in peers
        }
        self.polled: set[str] = set()

    def restore(self, alerts: Sequence[Alert], silences: Sequence[Silence]) -> None:
        """Seed with the last known snapshot so the first poll logs only real changes."""
        for alert in alerts:
            if alert.cluster in self.clusters:
                self.clusters[alert.cluster].alerts.append(alert)
        for silence in silences:
            if silence.cluster in self.clusters:
                self.clusters[silence.cluster].silences.append(silence)

    def restore_health(self, health: Sequence[SourceHealth]) -> None:
        for item in health:
            if item.name in self.health:
                # Known from before, but nothing has answered yet in this run.
                self.health[item.name] = replace(
                    self.health[item.name],
                    last_success=item.last_success,
                    reachable=None,
                    stale_since=item.last_success,
                )

    @property
    def alerts(self) -> list[Alert]:
        return [alert for cluster in self.clusters.values() for alert in cluster.alerts]

    @property
    def silences(self) -> list[Silence]:
        return [s for cluster in self.clusters.values() for s in cluster.silences]

    def peer(self, cluster: str) -> list[AlertmanagerClient]:
        """Peers of a cluster, the ones that answered last time first."""
        state = self.clusters.get(cluster)
        if state is None:
            raise KeyError(cluster)
        return sorted(state.peers, key=lambda p: self.health[p.name].reachable is not True)

    @property
    def polled_once(self) -> bool:
        """Every cluster has been polled at least once (successfully or not) in this run."""
        return self.polled >= self.clusters.keys()

    async def poll(self) -> AlertChange:
        """Poll every cluster at once (the engine polls each on its own loop instead)."""
        results = await asyncio.gather(*(self.poll_cluster(name) for name in self.clusters))
        merged = AlertChange()
        for change in results:
            merged = AlertChange(
                fired=merged.fired + change.fired,
                resolved=merged.resolved + change.resolved,
                state_changed=merged.state_changed + change.state_changed,
                silences_added=merged.silences_added + change.silences_added,
                silences_ended=merged.silences_ended + change.silences_ended,
            )
        return merged

    async def poll_cluster(self, name: str) -> AlertChange:
        """Poll every peer of one cluster and merge them; a peer that fails adds nothing."""
        cluster = self.clusters[name]
        try:
            fetched = await asyncio.gather(*(self._poll_peer(peer) for peer in cluster.peers))
        finally:
            self.polled.add(name)
        answered = [(peer, data) for peer, data, _ in fetched if data is not None]
        if not answered:
            self._mark_all(fetched)
            return AlertChange()

        def merge() -> tuple[list[Alert], list[Silence], AlertChange]:
            alerts = merge_cluster_alerts([(peer, data[0]) for peer, data in answered])
            silences = merge_cluster_silences([(peer, data[1]) for peer, data in answered])
            alerts = [a if a.cluster == name else replace(a, cluster=name) for a in alerts]
            # Hand on the previous object for an alert that did not change at all, so that the
            # dashboard can skip it with an identity check instead of comparing it again.
            previous = {a.fingerprint: a for a in cluster.alerts}
            alerts = [_same_or_new(previous.get(a.fingerprint), a) for a in alerts]
            silences = [s if s.cluster == name else replace(s, cluster=name) for s in silences]
            return alerts, silences, _diff(cluster.alerts, alerts, cluster.silences, silences)

        size = sum(len(data[0]) for _, data in answered)
        # Merging and comparing thousands of alerts would stall the dashboard's event loop.
        alerts, silences, change = (
            merge() if size < OFFLOAD_ALERTS else await asyncio.to_thread(merge)
        )
        # Health and alerts change together: a snapshot taken in between would show the peer
        # as just answered over the alerts of before (a first start: "ok" over "All quiet").
        self._mark_all(fetched)
        cluster.alerts = alerts
        cluster.silences = silences
        return change

    async def _poll_peer(
        self, peer: AlertmanagerClient
    ) -> tuple[str, tuple[list[Alert], list[Silence]] | None, str]:
        """(peer, its alerts and silences or None, the error if it failed)."""
        try:
            alerts, silences = await asyncio.gather(peer.alerts(), peer.silences())
        except ProviderError as exc:
            return peer.name, None, str(exc)
        return peer.name, (alerts, silences), ""

    def _mark_all(
        self, fetched: Sequence[tuple[str, tuple[list[Alert], list[Silence]] | None, str]]
    ) -> None:
        for name, _, error in fetched:
            self._mark(name, error=error)

    def _mark(self, name: str, *, error: str) -> None:
        now = self._clock.now()
        old = self.health[name]
        if error:
            stale_since = old.stale_since or old.last_success or now
            self.health[name] = replace(old, reachable=False, stale_since=stale_since, error=error)
        else:
            self.health[name] = replace(
                old, reachable=True, last_success=now, stale_since=None, error=""
            )

    def edges(self, before: Mapping[str, SourceHealth]) -> list[tuple[SourceHealth, bool]]:
        """Peers whose reachability flipped in the last poll: (health, now_reachable)."""
        flipped: list[tuple[SourceHealth, bool]] = []
        for name, now in self.health.items():
            was = before.get(name)
            prior = was.reachable if was else None
            if now.reachable is None or prior == now.reachable:
                continue
            if prior is None and now.reachable:
                continue  # first contact going well is not news
            flipped.append((now, bool(now.reachable)))
        return flipped


def _same_or_new(old: Alert | None, new: Alert) -> Alert:
    return old if old is not None and old == new else new


def _diff(
    old_alerts: Sequence[Alert],
    new_alerts: Sequence[Alert],
    old_silences: Sequence[Silence],
    new_silences: Sequence[Silence],
) -> AlertChange:
    old_by_key = {a.fingerprint: a for a in old_alerts}
    new_by_key = {a.fingerprint: a for a in new_alerts}
    fired = tuple(a for key, a in new_by_key.items() if key not in old_by_key)
    resolved = tuple(a for key, a in old_by_key.items() if key not in new_by_key)
    state_changed = tuple(
        (a, old_by_key[key].state.value)
        for key, a in new_by_key.items()
        if key in old_by_key and old_by_key[key].state != a.state
    )
    old_active = {s.id: s for s in old_silences if s.state.value != "expired"}
    new_active = {s.id: s for s in new_silences if s.state.value != "expired"}
    added = tuple(s for sid, s in new_active.items() if sid not in old_active)
    ended = tuple(s for sid, s in old_active.items() if sid not in new_active)
    return AlertChange(fired, resolved, state_changed, added, ended)
