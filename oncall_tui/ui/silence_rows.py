"""The Silences view's row model: order, match counts and flags. No Textual here.

Kept apart from the widget (as alert_rows.py is for alerts) so that it can be tested and timed on
its own: counts come from each alert's `silenced_by` in one pass, and pending silences are matched
through a label index rather than a scan per silence.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from oncall_tui.matchers import matches_all
from oncall_tui.models import Alert, Silence, SilenceState
from oncall_tui.ui.timefmt import local, relative

EXPIRING_WITHIN = timedelta(hours=1)
_MARKER_RE = re.compile(r"\[oncall-tui:[0-9a-f]+\]")
_STATE_ORDER = {SilenceState.ACTIVE: 0, SilenceState.PENDING: 1, SilenceState.EXPIRED: 2}


@dataclass(frozen=True, slots=True)
class SilenceRow:
    """One silence as the view shows it: the silence, how many alerts it matches, its flags."""

    silence: Silence
    matching: int
    expiring: bool
    unused: bool

    @property
    def key(self) -> str:
        return self.silence.key


def silence_rows(
    silences: Sequence[Silence],
    alerts: Sequence[Alert],
    now: datetime,
    *,
    matching: dict[str, int] | None = None,
) -> list[SilenceRow]:
    """Rows in display order: active, then pending, then expired; soonest to end first.

    Counts come from each alert's `silenced_by` (one pass over the alerts, cheap at 10,000);
    a silence that is not active mutes nothing yet, so `matching` supplies its count.
    """
    muted: Counter[tuple[str, str]] = Counter()
    for alert in alerts:
        for silence_id in alert.silenced_by:
            muted[(alert.cluster, silence_id)] += 1
    rows: list[SilenceRow] = []
    for silence in silences:
        if silence.state == SilenceState.ACTIVE:
            count = muted[(silence.cluster, silence.id)]
        else:
            count = (matching or {}).get(silence.key, 0)
        live = silence.state != SilenceState.EXPIRED
        rows.append(
            SilenceRow(
                silence=silence,
                matching=count,
                expiring=silence.state == SilenceState.ACTIVE
                and silence.ends_at - now <= EXPIRING_WITHIN,
                unused=live and count == 0,
            )
        )
    rows.sort(key=lambda r: (_STATE_ORDER[r.silence.state], r.silence.ends_at, r.key))
    return rows


def match_counts(silences: Sequence[Silence], alerts: Sequence[Alert]) -> dict[str, int]:
    """How many alerts each silence matches, by key, through an index of label values.

    A silence with an equality matcher is checked only against the alerts carrying that label
    value, so many silences over 10,000 alerts stay cheap (a linear scan each would not).
    """
    if not silences:
        return {}
    index: dict[tuple[str, str, str], list[Alert]] = defaultdict(list)
    by_cluster: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        by_cluster[alert.cluster].append(alert)
        for name, value in alert.labels.items():
            index[(alert.cluster, name, value)].append(alert)
    counts: dict[str, int] = {}
    for silence in silences:
        exact = [m for m in silence.matchers if m.is_equal and not m.is_regex and m.value]
        if exact:
            candidates = min(
                (index.get((silence.cluster, m.name, m.value), []) for m in exact), key=len
            )
        else:
            candidates = by_cluster.get(silence.cluster, [])
        counts[silence.key] = sum(1 for a in candidates if matches_all(silence.matchers, a.labels))
    return counts


def matchers_text(silence: Silence) -> str:
    return ", ".join(str(m) for m in silence.matchers)


def visible_comment(comment: str) -> str:
    """The comment without the engine's retry marker, which means nothing to a reader."""
    return " ".join(_MARKER_RE.sub("", comment).split())


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def describe(silence: Silence, now: datetime) -> str:
    """One silence in a few plain lines, for confirmations."""
    ends = f"{local(silence.ends_at, now)} ({relative(silence.ends_at, now)})"
    lines = [
        f"{matchers_text(silence)}",
        f"   cluster {silence.cluster}, ends {ends}, by {silence.created_by or '?'}",
    ]
    if silence.comment:
        lines.append(f"   comment: {visible_comment(silence.comment)}")
    return "\n".join(lines)
