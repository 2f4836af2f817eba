"""Timestamps as an operator reads them: local time zone, relative where that reads faster."""

from __future__ import annotations

from datetime import datetime, timedelta


def to_local(moment: datetime) -> datetime:
    """The moment in the operator's local zone (from TZ / the system)."""
    return moment.astimezone()


def local(moment: datetime, now: datetime) -> str:
    """`14:03:07` for today, `Nov 22 14:03` for another day, `2025-11-22 14:03` for another year."""
    here, today = to_local(moment), to_local(now)
    if here.date() == today.date():
        return here.strftime("%H:%M:%S")
    if here.year == today.year:
        return here.strftime("%b %d %H:%M")
    return here.strftime("%Y-%m-%d %H:%M")


def span(delta: timedelta) -> str:
    """A compact duration: `42s`, `5m`, `3h12m`, `2d4h`."""
    seconds = int(abs(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def relative(moment: datetime, now: datetime) -> str:
    """`5m ago` for the past, `in 45m` for the future, `now` within a second."""
    delta = now - moment
    if abs(delta) < timedelta(seconds=1):
        return "now"
    if delta > timedelta(0):
        return f"{span(delta)} ago"
    return f"in {span(delta)}"
