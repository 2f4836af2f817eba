"""The log's commands: `log` (read and filter), `log export INCIDENT` and `handoff`.

Kept apart from cli.py (argument parsing, exit codes) so that each reads as one job. Each opens
the log file itself, reads, and closes it: they work while `serve` or the dashboard is running
(the log is SQLite in WAL mode) and when nothing is. No Textual, no engine, no network.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.handoff import handoff_markdown, load_handoff
from oncall_tui.models import LogEntry
from oncall_tui.postmortem import timeline_markdown
from oncall_tui.store import Store
from oncall_tui.timeline import load_timeline


class NoLog(FileNotFoundError):
    """The configured log file does not exist yet."""


def entry_json(entry: LogEntry) -> str:
    return json.dumps(
        {
            "id": entry.id,
            "at": entry.at.isoformat(),
            "source": entry.source,
            "kind": entry.kind,
            "actor": entry.actor,
            "summary": entry.summary,
            "data": entry.data,
        },
        default=str,
        ensure_ascii=False,
    )


def entry_line(entry: LogEntry) -> str:
    at = entry.at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    actor = f" ({entry.actor})" if entry.actor else ""
    return f"{at}  {entry.source:<12} {entry.kind:<18} {entry.summary}{actor}"


async def _open(config: Config, clock: Clock) -> Store:
    path = config.log.file
    if not path.exists():
        raise NoLog(f"no log yet at {path}")
    return await Store.open(path, clock=clock, secrets=config.secrets())


async def read_log(
    config: Config,
    clock: Clock,
    *,
    since: datetime,
    sources: Sequence[str] = (),
    kinds: Sequence[str] = (),
    text: str = "",
    limit: int = 1000,
) -> list[LogEntry]:
    """The newest `limit` matching entries since `since`, oldest first (as a log is read)."""
    store = await _open(config, clock)
    try:
        entries = await store.entries(
            since=since, sources=sources, kinds=kinds, text=text, limit=max(limit, 0)
        )
    finally:
        await store.close()
    return sorted(entries, key=lambda e: (e.at, e.id or 0))


async def export_incident(config: Config, clock: Clock, ref: str) -> str:
    """One incident's postmortem Markdown; raises TimelineError when it is not in the log."""
    store = await _open(config, clock)
    try:
        timeline = await load_timeline(store, ref)
    finally:
        await store.close()
    return timeline_markdown(timeline)


async def shift_handoff(config: Config, clock: Clock, shift: timedelta) -> str:
    """The handoff Markdown for the shift ending now, from the log and its last snapshot."""
    store = await _open(config, clock)
    try:
        snapshot = await store.load_snapshot()
        handoff = await load_handoff(store, snapshot, now=clock.now(), shift=shift)
    finally:
        await store.close()
    return handoff_markdown(handoff)


def write_text(path: Path, text: str) -> None:
    """Write an export; the parent directory must exist (a typo should fail, not create)."""
    path.write_text(text, encoding="utf-8")
