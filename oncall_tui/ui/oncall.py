"""The On-call view: per escalation policy, who is on call at each level now, until when, who next.

Below (or, on a wide terminal, beside) the policies: a 7-day look-ahead of every schedule, so the
operator sees their next shift and who takes over from them. The operator's own entries are
marked "you". Everything is drawn from the engine's snapshot; PagerDuty's `earliest` on-calls give
"next", the rendered schedules give the look-ahead. Names are plain text, never markup.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import ClassVar, Protocol

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.models import OnCall, Shift, Snapshot, SourceHealth
from oncall_tui.ui.incident_details import covers, incidents_on
from oncall_tui.ui.placeholders import not_configured_text
from oncall_tui.ui.timefmt import local, relative, span, to_local

LOOK_AHEAD = timedelta(days=7)
WIDE = 140  # from here on policies and schedules sit side by side
WHEN_WIDTH = 14  # "09:00 (in 23h)"
MAX_NAME_WIDTH = 22
GAP = 1  # between columns (rich adds it to each column's width): 80 columns must fit


class OncallEngine(Protocol):
    """What the view needs from the engine (the real Engine satisfies it)."""

    config: Config


def when(moment: datetime | None, now: datetime) -> str:
    """`08:00 (in 6h)` within a day, else `Tue 08:00`: a weekday reads faster than a date."""
    if moment is None:
        return "always"
    here = to_local(moment)
    delta = moment - now
    if abs(delta) >= timedelta(days=1):
        return here.strftime("%a %H:%M")  # the weekday says enough
    if abs(delta) >= timedelta(hours=1):
        # Whole hours: the clock time beside it gives the minutes.
        hours = int(abs(delta).total_seconds() // 3600)
        ago = f"in {hours}h" if delta > timedelta(0) else f"{hours}h ago"
        return f"{here.strftime('%H:%M')} ({ago})"
    return f"{here.strftime('%H:%M')} ({relative(moment, now)})"


class OnCallOperator:
    """Who "you" is: the configured operator's email or name."""

    def __init__(self, config: Config) -> None:
        self.email = config.operator.email.lower()
        self.name = config.operator.name.lower()

    def is_me(self, user: str, email: str = "") -> bool:
        if self.email and email and email.lower() == self.email:
            return True
        return bool(self.name) and user.lower() == self.name

    def person(self, user: str, email: str = "") -> Text:
        text = Text(user or "nobody", style="bold" if user else "dim")
        if self.is_me(user, email):
            text.append(" ")
            text.append("you", style="bold black on yellow")
        return text


def _table(title: str) -> Table:
    # Fixed column widths (not expand), so the tables of several policies line up.
    return Table(
        title=Text(title, style="bold"),
        title_justify="left",
        title_style="bold",
        box=None,
        padding=(0, GAP, 0, 0),
        header_style="bold dim",
    )


def policy_table(
    policy: str, oncalls: Sequence[OnCall], now: datetime, me: OnCallOperator, names: int
) -> Table:
    """One escalation policy: a row per level with now / until / next."""
    table = _table(policy)
    table.add_column("lvl", no_wrap=True, width=3, style="bold")
    table.add_column("on call now", overflow="fold", width=names)
    table.add_column("until", no_wrap=True, width=WHEN_WIDTH)
    table.add_column("next", overflow="fold", width=names)
    table.add_column("from", no_wrap=True, width=WHEN_WIDTH)
    levels: dict[int, list[OnCall]] = defaultdict(list)
    for oncall in oncalls:
        levels[oncall.level].append(oncall)
    for level in sorted(levels):
        entries = levels[level]
        current = [o for o in entries if covers(o, now)]
        ends = [o.end for o in current]
        until = None if not current or None in ends else min(e for e in ends if e is not None)
        upcoming = sorted(
            (o for o in entries if o.start is not None and o.start > now),
            key=lambda o: (o.start or now, o.user),
        )
        now_text = Text()
        for index, o in enumerate(dict((o.user, o) for o in current).values()):
            if index:
                now_text.append(", ")
            now_text.append_text(me.person(o.user, o.user_email))
        if not current:
            now_text = Text("nobody", style="bold red")
        next_text, start_text = Text("—", style="dim"), Text("")
        if upcoming:
            first = upcoming[0]
            next_text = me.person(first.user, first.user_email)
            start_text = Text(when(first.start, now), style="dim")
        table.add_row(
            Text(f"L{level}"),
            now_text,
            Text(when(until, now) if current else "—", style="dim"),
            next_text,
            start_text,
        )
    return table


def schedule_table(
    schedule: str, shifts: Sequence[Shift], now: datetime, me: OnCallOperator, names: int
) -> Table:
    """One schedule's next 7 days, one line per shift."""
    table = _table(schedule)
    table.add_column("from", no_wrap=True, width=12)
    table.add_column("to", no_wrap=True, width=12)
    table.add_column("who", overflow="fold", width=names)
    table.add_column("for", no_wrap=True, justify="right")
    horizon = now + LOOK_AHEAD
    for shift in sorted(shifts, key=lambda s: (s.start, s.user)):
        if shift.end <= now or shift.start >= horizon:
            continue
        current = shift.start <= now < shift.end
        start = Text("now", style="bold green") if current else Text(_day_time(shift.start))
        table.add_row(
            start,
            Text(_day_time(shift.end)),
            me.person(shift.user),
            Text(span(shift.end - shift.start), style="dim"),
        )
    if not table.row_count:
        table.add_row(Text("—"), Text(""), Text("no shifts in the next 7 days", style="dim"), "")
    return table


def name_width(names: Iterable[str]) -> int:
    """Wide enough for the longest name and " you", within reason (longer names fold)."""
    return min(max((len(n) for n in names), default=6) + 4, MAX_NAME_WIDTH)


def _stale(health: SourceHealth, now: datetime) -> str:
    since = health.stale_since or health.last_success
    return f"stale: {health.name}" + (f" since {local(since, now)}" if since else "")


def _day_time(moment: datetime) -> str:
    return to_local(moment).strftime("%a %d %H:%M")


# Who is on call comes from PagerDuty's escalation policies and Opsgenie's schedules: each under
# its own heading, so that an Opsgenie schedule is never read as an escalation policy.
SECTIONS = (("pagerduty", "Escalation policies (PagerDuty)"), ("opsgenie", "Schedules (Opsgenie)"))


def policies_renderable(snapshot: Snapshot, now: datetime, me: OnCallOperator) -> RenderableType:
    if not snapshot.oncalls:
        return Text("No escalation policy or schedule reported anyone on call.", style="dim")
    names = name_width(o.user for o in snapshot.oncalls)
    parts: list[RenderableType] = []
    for system, title in SECTIONS:
        by_policy: dict[str, list[OnCall]] = defaultdict(list)
        for oncall in snapshot.oncalls:
            if oncall.system == system:
                by_policy[oncall.policy].append(oncall)
        if not by_policy:
            continue
        parts.append(Text(title, style="bold underline"))
        for policy in sorted(by_policy, key=str.lower):
            parts.append(policy_table(policy, by_policy[policy], now, me, names))
            parts.append(Text(""))
    return Group(*parts)


def schedules_renderable(snapshot: Snapshot, now: datetime, me: OnCallOperator) -> RenderableType:
    by_schedule: dict[str, list[Shift]] = defaultdict(list)
    for shift in snapshot.shifts:
        by_schedule[shift.schedule].append(shift)
    if not by_schedule:
        return Text("No schedule to look ahead in.", style="dim")
    names = name_width(s.user for s in snapshot.shifts)
    parts: list[RenderableType] = [Text("Schedules, next 7 days", style="bold underline")]
    for schedule in sorted(by_schedule, key=str.lower):
        parts.append(schedule_table(schedule, by_schedule[schedule], now, me, names))
        parts.append(Text(""))
    return Group(*parts)


class OnCallScroll(VerticalScroll):
    """The view's body; scrolls with the same keys (and ids) as the tables' cursors."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "scroll_down", "Down", show=False, id="cursor-down"),
        Binding("k,up", "scroll_up", "Up", show=False, id="cursor-up"),
        Binding("g,home", "scroll_home", "Top", show=False, id="cursor-top"),
        Binding("G,end", "scroll_end", "Bottom", show=False, id="cursor-bottom"),
        Binding("pagedown", "page_down", "Page down", show=False, id="page-down"),
        Binding("pageup", "page_up", "Page up", show=False, id="page-up"),
    ]


class OncallView(Widget):
    """View 3: escalation levels now and next, and the schedules' week ahead."""

    def __init__(self, engine: OncallEngine, clock: Clock, *, id: str = "oncall") -> None:
        config = engine.config
        super().__init__(id=id, classes="" if incidents_on(config) else "-unconfigured")
        self._config = config
        self._clock = clock
        self._me = OnCallOperator(config)
        self._snapshot: Snapshot | None = None
        self._shown: tuple[object, ...] = ()

    @property
    def configured(self) -> bool:
        return incidents_on(self._config)

    def compose(self) -> ComposeResult:
        if not self.configured:
            yield Static(not_configured_text("oncall", self._config), classes="placeholder-text")
            return
        yield Static("", id="oncall-status")
        with OnCallScroll(id="oncall-body"), Container(id="oncall-columns"):
            yield Static("", id="oncall-policies")
            yield Static("", id="oncall-schedules")

    def on_mount(self) -> None:
        self._redraw()

    def on_resize(self) -> None:
        self.set_class(self.size.width >= WIDE, "-wide")

    def update_snapshot(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._redraw()

    def tick(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        if not self.configured or not self.is_mounted:
            return
        snapshot = self._snapshot
        now = self._clock.now()
        # "in 3h" moves on by the minute: redraw only when the text or the data would change.
        key = (
            now.replace(second=0, microsecond=0),
            None if snapshot is None else (snapshot.oncalls, snapshot.shifts, snapshot.health),
        )
        if key == self._shown:
            return
        self._shown = key
        self.query_one("#oncall-status", Static).update(self._status(snapshot, now))
        if snapshot is None:
            return
        self.query_one("#oncall-policies", Static).update(
            policies_renderable(snapshot, now, self._me)
        )
        self.query_one("#oncall-schedules", Static).update(
            schedules_renderable(snapshot, now, self._me)
        )

    def _status(self, snapshot: Snapshot | None, now: datetime) -> Text:
        health = None
        if snapshot is not None:
            health = snapshot.health_of("pagerduty") or snapshot.health_of("opsgenie")
        if snapshot is None or not (
            snapshot.restored or snapshot.oncalls or (health and health.last_success)
        ):
            return Text("Waiting for the first refresh…")
        mine = [
            o for o in snapshot.oncalls if covers(o, now) and self._me.is_me(o.user, o.user_email)
        ]
        policies = {o.policy for o in snapshot.oncalls if o.system == "pagerduty"}
        opsgenie = {o.policy for o in snapshot.oncalls if o.system == "opsgenie"}
        schedules = {s.schedule for s in snapshot.shifts}
        text = Text()
        # Staleness first: at 80 columns the end of the line may be cut.
        if snapshot.restored:
            text.append("stale: restored snapshot · ", style="bold yellow")
        elif health is not None and health.reachable is False:
            text.append(_stale(health, now) + " · ", style="bold yellow")
        # Then the operator's own status, which matters most; the counts last.
        if mine:
            where = ", ".join(dict.fromkeys(f"{o.policy} L{o.level}" for o in mine))
            text.append("you are on call now: ", style="bold")
            text.append(where + " · ")
        elif self._me.email or self._me.name:
            upcoming = sorted(
                (
                    o
                    for o in snapshot.oncalls
                    if o.start and o.start > now and self._me.is_me(o.user, o.user_email)
                ),
                key=lambda o: o.start or now,
            )
            if upcoming:
                text.append(f"your next shift: {when(upcoming[0].start, now)} · ")
            else:
                text.append("you are not on call · ")
        counts = [f"{len(policies)} escalation policies"] if policies or not opsgenie else []
        if opsgenie:
            counts.append(f"{len(opsgenie)} Opsgenie schedules")
        counts.append(f"{len(schedules)} schedules ahead")
        text.append(" · ".join(counts))
        return text
