"""Merging what the peers of one Alertmanager HA cluster report into one view of the cluster.

The peers gossip silences but not alerts: every client posts alerts to every peer, as
Prometheus does, so each peer holds its own copy and one that was down holds fewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from oncall_tui.models import Alert, Silence


def merge_cluster_alerts(per_peer: Sequence[tuple[str, Sequence[Alert]]]) -> list[Alert]:
    """Merge the alerts that the peers of one cluster report into one list.

    Deduplicated by fingerprint; `seen_by` names every peer that reported the alert, in the
    order given. Where peers disagree (e.g. a silence has not reached one of them yet), the
    most recently updated copy wins; on a tie the first peer's copy. A peer that is down is
    simply left out (or given with no alerts) and contributes nothing.
    """
    chosen: dict[str, Alert] = {}
    seen: dict[str, list[str]] = {}
    for peer, alerts in per_peer:
        for alert in alerts:
            key = alert.fingerprint
            peers = seen.setdefault(key, [])
            if peer not in peers:
                peers.append(peer)
            current = chosen.get(key)
            if current is None or alert.updated_at > current.updated_at:
                chosen[key] = alert
    return [_with_seen_by(alert, tuple(seen[key])) for key, alert in chosen.items()]


def _with_seen_by(alert: Alert, seen_by: tuple[str, ...]) -> Alert:
    # Most alerts already say who saw them (one peer, or the same set as last time): copying
    # 10,000 frozen dataclasses for nothing is most of a refresh's cost.
    return alert if alert.seen_by == seen_by else replace(alert, seen_by=seen_by)


def merge_cluster_silences(per_peer: Sequence[tuple[str, Sequence[Silence]]]) -> list[Silence]:
    """Merge the silences of one cluster's peers: one per id, the most recently updated copy.

    Peers gossip silences, so they normally agree; right after a change one peer may still hold
    the older version, which the newer `updatedAt` replaces. A copy without `updatedAt` loses.
    """
    chosen: dict[str, Silence] = {}
    oldest = datetime.min.replace(tzinfo=UTC)
    for _peer, silences in per_peer:
        for silence in silences:
            current = chosen.get(silence.id)
            if current is None or (silence.updated_at or oldest) > (current.updated_at or oldest):
                chosen[silence.id] = silence
    return list(chosen.values())
