"""The Silences view: every silence, what it matches now, and which ones need attention.

Rows are keyed by `Silence.key` and updated in place, so the cursor and the marks stay on the same
silences across refreshes. Two flags, each a word and a colour: a silence that expires within the
hour (the noise comes back during this shift) and a silence that matches no alert (it may be
mistyped, or left over). `x` expires and `e` extends the marked silences, or the cursor's silence
when none is marked; both ask first and say how many. The ids are captured at key press, so a
refresh between the key and the confirmation cannot change what is acted on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import ClassVar, Protocol

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import DataTable, Static

from oncall_tui.clock import Clock
from oncall_tui.engine import ActionRequest
from oncall_tui.models import Alert, Matcher, SilenceState, Snapshot
from oncall_tui.ui.confirm import ConfirmScreen
from oncall_tui.ui.messages import SubmitActions
from oncall_tui.ui.silence_rows import (
    SilenceRow,
    clip,
    describe,
    match_counts,
    matchers_text,
    silence_rows,
    visible_comment,
)
from oncall_tui.ui.timefmt import local, relative, span

MATCHERS_WIDTH = 40
COMMENT_WIDTH = 30

_STATE_STYLE = {
    SilenceState.ACTIVE: "green",
    SilenceState.PENDING: "cyan",
    SilenceState.EXPIRED: "dim",
}


class SilencesEngine(Protocol):
    """What the view needs from the engine (the real Engine satisfies it)."""

    read_only: bool

    def alerts_matching(
        self, matchers: Sequence[Matcher], cluster: str | None = None
    ) -> list[Alert]: ...


def _differs(old: Text, new: Text) -> bool:
    # Text equality ignores the base style; a row turning dim must still repaint.
    return (old.plain, str(old.style), old.spans) != (new.plain, str(new.style), new.spans)


class SilenceTable(DataTable[Text], inherit_bindings=False):
    """The table, without DataTable's own `enter`, so the view's remappable `details` gets it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # Same ids as the Alerts table, so one `keys:` entry remaps both.
        Binding("j,down", "cursor_down", "Down", show=False, id="cursor-down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="cursor-up"),
        Binding("g,home", "scroll_top", "Top", show=False, id="cursor-top"),
        Binding("G,end", "scroll_bottom", "Bottom", show=False, id="cursor-bottom"),
        Binding("pagedown", "page_down", "Page down", show=False, id="page-down"),
        Binding("pageup", "page_up", "Page up", show=False, id="page-up"),
        Binding("left", "cursor_left", "", show=False),
        Binding("right", "cursor_right", "", show=False),
    ]


class SilenceDetails(ModalScreen[None]):
    """Everything about one silence, and every alert it matches now, as plain text."""

    DEFAULT_CSS = """
    SilenceDetails { align: center middle; background: $background 60%; }
    SilenceDetails > #silence-details-dialog {
        width: 100; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    SilenceDetails #silence-details-body { height: auto; max-height: 40; }
    SilenceDetails #silence-details-hint { width: 100%; text-align: right; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close", id="details-close"),
    ]

    def __init__(self, row: SilenceRow, alerts: Sequence[Alert], now: datetime) -> None:
        super().__init__()
        self._row = row
        self._alerts = alerts
        self._now = now

    def compose(self) -> ComposeResult:
        silence, now = self._row.silence, self._now
        dialog = Vertical(id="silence-details-dialog")
        dialog.border_title = f"Silence {silence.id}"
        lines = [
            f"state       {silence.state.value}",
            f"cluster     {silence.cluster}",
            "matchers",
            *(f"  {m}" for m in silence.matchers),
            f"starts      {local(silence.starts_at, now)} ({relative(silence.starts_at, now)})",
            f"ends        {local(silence.ends_at, now)} ({relative(silence.ends_at, now)})",
            f"created by  {silence.created_by}",
            f"comment     {silence.comment}",
            f"matches     {len(self._alerts)} alert{'s' if len(self._alerts) != 1 else ''} now",
            *(
                f"  {a.severity:<9}{a.alertname} {a.labels.get('service', '')} {a.summary}"
                for a in self._alerts[:200]
            ),
        ]
        with dialog:
            with VerticalScroll(id="silence-details-body"):
                yield Static(Text("\n".join(lines)))
            yield Static(Text("esc close", style="dim"), id="silence-details-hint")

    def action_close(self) -> None:
        self.dismiss(None)


class SilencesView(Widget):
    """List of silences with flags, marks and the expire/extend actions."""

    DEFAULT_CSS = """
    SilencesView {
        height: 1fr;
        width: 100%;
    }
    SilencesView > #silences-status {
        height: auto;
        width: 100%;
        padding: 0 1;
        color: $text-muted;
    }
    SilencesView > SilenceTable {
        height: 1fr;
        width: 100%;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "x",
            "expire",
            "Expire",
            id="silences-expire",
            tooltip="Expire the marked silences (or this one), after showing what ends",
        ),
        Binding(
            "e",
            "extend",
            "Extend",
            id="silences-extend",
            tooltip="Extend the marked silences (or this one) by a duration you choose",
        ),
        Binding("space", "mark", "Mark", id="mark", tooltip="Mark or unmark the silence"),
        Binding(
            "enter",
            "details",
            "Details",
            id="details",
            tooltip="Everything about the silence and every alert it matches now",
        ),
        Binding(
            "i",
            "toggle_expired",
            "Expired",
            id="silences-show-expired",
            tooltip="Show or hide expired silences",
        ),
        Binding("escape", "clear", "Clear", id="silences-clear", tooltip="Clear the marks"),
    ]

    show_expired: reactive[bool] = reactive(False, bindings=True)

    def __init__(self, engine: SilencesEngine, clock: Clock, *, id: str = "silences") -> None:
        super().__init__(id=id)
        self._engine = engine
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._rows: dict[str, SilenceRow] = {}
        self._order: list[str] = []
        self._cells: dict[str, tuple[Text, ...]] = {}
        self.marked: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Static("", id="silences-status")
        yield SilenceTable(id="silences-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.table
        table.add_column("", width=1, key="mark")
        table.add_column("state", width=7, key="state")
        table.add_column("flags", key="flags")
        table.add_column("alerts", width=6, key="alerts")
        table.add_column("matchers", key="matchers")
        table.add_column("ends", key="ends")
        table.add_column("created by", key="created_by")
        table.add_column("comment", width=COMMENT_WIDTH, key="comment")
        table.add_column("cluster", key="cluster")
        if self._snapshot is not None:
            self._render_rows()
        else:
            self._update_status()

    @property
    def table(self) -> SilenceTable:
        return self.query_one("#silences-table", SilenceTable)

    # -- data ----------------------------------------------------------------------------------

    def update_snapshot(self, snapshot: Snapshot) -> None:
        """Show a new snapshot, changing only the rows and cells that differ."""
        self._snapshot = snapshot
        if self.is_mounted:
            self._render_rows()

    def watch_show_expired(self) -> None:
        if self._snapshot is not None and self.is_mounted:
            self._render_rows()

    def _visible_rows(self, snapshot: Snapshot, now: datetime) -> list[SilenceRow]:
        silences = [
            s for s in snapshot.silences if self.show_expired or s.state != SilenceState.EXPIRED
        ]
        # Only pending silences need a match pass; expired ones (Alertmanager keeps them for
        # days) get no count, so showing them stays cheap with thousands of alerts.
        pending = [s for s in silences if s.state == SilenceState.PENDING]
        matching = match_counts(pending, snapshot.alerts)
        return silence_rows(silences, snapshot.alerts, now, matching=matching)

    def _cells_of(self, row: SilenceRow, now: datetime) -> tuple[Text, ...]:
        silence = row.silence
        expired = silence.state == SilenceState.EXPIRED
        dim = "dim" if expired else ""
        flags = Text()
        if row.expiring:
            flags.append("EXPIRING", style="bold black on yellow")
        if row.unused:
            if flags:
                flags.append(" ")
            flags.append("NO MATCH", style="bold black on magenta")
        when = relative(silence.ends_at, now)
        if silence.state == SilenceState.PENDING:
            when += f" (starts {relative(silence.starts_at, now)})"
        return (
            Text("●" if row.key in self.marked else " ", style="bold"),
            Text(silence.state.value, style=_STATE_STYLE[silence.state]),
            flags,
            Text("-" if expired else str(row.matching), style=dim, justify="right"),
            Text(clip(matchers_text(silence), MATCHERS_WIDTH), style=dim),
            Text(f"{local(silence.ends_at, now)} {when}", style=dim),
            Text(silence.created_by, style=dim),
            Text(clip(visible_comment(silence.comment), COMMENT_WIDTH), style=dim),
            Text(silence.cluster, style=dim),
        )

    def _render_rows(self) -> None:
        assert self._snapshot is not None
        now = self._clock.now()
        rows = self._visible_rows(self._snapshot, now)
        table = self.table
        cursor_key = self.cursor_key
        new_order = [row.key for row in rows]
        new_cells = {row.key: self._cells_of(row, now) for row in rows}
        self._rows = {row.key: row for row in rows}
        # Marks on silences that are gone (or now hidden) would act on what nobody can see.
        self.marked &= set(new_order)
        columns = list(table.columns)
        with self.app.batch_update():
            if new_order != self._order:
                old_index = table.cursor_row
                table.clear()
                for key in new_order:
                    table.add_row(*new_cells[key], key=key)
                if cursor_key in self._rows:
                    table.move_cursor(row=table.get_row_index(cursor_key), animate=False)
                elif new_order:
                    # The cursor's silence left: stay at the same height rather than jump.
                    table.move_cursor(row=min(old_index, len(new_order) - 1), animate=False)
            else:
                for key in new_order:
                    old = self._cells.get(key)
                    for index, cell in enumerate(new_cells[key]):
                        if old is None or _differs(old[index], cell):
                            table.update_cell(key, columns[index], cell)
        self._order = new_order
        self._cells = new_cells
        self._update_status()
        self.refresh_bindings()

    def _update_status(self) -> None:
        snapshot = self._snapshot
        silences = snapshot.silences if snapshot else ()
        counts = Counter(s.state for s in silences)
        rows = self._rows.values()
        parts = [f"{counts[SilenceState.ACTIVE]} active"]
        if counts[SilenceState.PENDING]:
            parts.append(f"{counts[SilenceState.PENDING]} pending")
        expiring = sum(1 for r in rows if r.expiring)
        unused = sum(1 for r in rows if r.unused)
        if expiring:
            parts.append(f"{expiring} expiring within 1h")
        if unused:
            parts.append(f"{unused} matching no alert")
        expired = counts[SilenceState.EXPIRED]
        if expired:
            parts.append(f"{expired} expired {'shown' if self.show_expired else 'hidden'}")
        if self.marked:
            parts.append(f"{len(self.marked)} marked")
        if snapshot is None:
            parts = ["Waiting for the first refresh from Alertmanager…"]
        elif not silences:
            parts = ["No silences."]
        self.query_one("#silences-status", Static).update(Text(" · ".join(parts)))

    # -- cursor and targets --------------------------------------------------------------------

    @property
    def cursor_key(self) -> str | None:
        table = self.table
        if not self._order or not 0 <= table.cursor_row < len(self._order):
            return None
        return self._order[table.cursor_row]

    def targets(self) -> list[SilenceRow]:
        """The marked rows, or the cursor's row when none is marked, in display order."""
        keys = [k for k in self._order if k in self.marked] if self.marked else []
        if not keys and (cursor := self.cursor_key) is not None:
            keys = [cursor]
        return [self._rows[k] for k in keys]

    def _live_targets(self) -> list[SilenceRow]:
        return [r for r in self.targets() if r.silence.state != SilenceState.EXPIRED]

    @on(DataTable.RowHighlighted)
    def _cursor_moved(self) -> None:
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("expire", "extend"):
            if self._engine.read_only:
                return False
            # Shown but greyed out when the cursor is on an expired silence.
            return True if self._live_targets() else None
        if action in ("mark", "details"):
            return True if self._order else None
        if action == "clear":
            return True if self.marked else None
        return True

    # -- actions -------------------------------------------------------------------------------

    def action_clear(self) -> None:
        if not self.marked:
            return
        self.marked.clear()
        if self._snapshot is not None:
            self._render_rows()

    def action_toggle_expired(self) -> None:
        self.show_expired = not self.show_expired

    def action_mark(self) -> None:
        key = self.cursor_key
        if key is None:
            return
        if key in self.marked:
            self.marked.discard(key)
        else:
            self.marked.add(key)
        self.table.update_cell(key, "mark", self._cells_of(self._rows[key], self._clock.now())[0])
        self.table.action_cursor_down()
        self._update_status()
        self.refresh_bindings()

    def action_details(self) -> None:
        key = self.cursor_key
        if key is None:
            return
        row = self._rows[key]
        alerts = self._engine.alerts_matching(row.silence.matchers, row.silence.cluster)
        self.app.push_screen(SilenceDetails(row, alerts, self._clock.now()))

    def action_expire(self) -> None:
        if self._engine.read_only:
            self.notify("Read-only mode: silences cannot be expired.", severity="warning")
            return
        rows = self._live_targets()
        if not rows:
            return
        now = self._clock.now()
        count = len(rows)
        noun = "silence" if count == 1 else "silences"
        alerts = sum(r.matching for r in rows)
        body = "\n".join(f"{i}. {describe(r.silence, now)}" for i, r in enumerate(rows, start=1))
        body += (
            f"\n\nAlertmanager will stop muting {alerts} alert{'s' if alerts != 1 else ''}"
            " that these silences match now; they will notify again."
        )
        keys = [r.key for r in rows]  # captured now: a refresh must not change the targets

        def done(confirmed: bool | None) -> None:
            if not confirmed:
                return
            self.marked.difference_update(keys)
            self.post_message(
                SubmitActions(
                    [ActionRequest("silence.expire", target=key) for key in keys],
                    f"Expire {count} {noun}",
                )
            )
            if self._snapshot is not None:
                self._render_rows()

        self.app.push_screen(
            ConfirmScreen(
                f"Expire {count} {noun}?", body, confirm_label=f"Expire {count}", danger=True
            ),
            done,
        )

    def action_extend(self) -> None:
        if self._engine.read_only:
            self.notify("Read-only mode: silences cannot be extended.", severity="warning")
            return
        rows = self._live_targets()
        if not rows:
            return
        count = len(rows)
        noun = "silence" if count == 1 else "silences"
        keys = [r.key for r in rows]
        silences = [r.silence for r in rows]

        def confirm(seconds: float | None) -> None:
            if seconds is None:
                return
            now = self._clock.now()
            lines: list[str] = []
            for silence in silences:
                # The engine extends from the later of the current end and now.
                new_end = max(silence.ends_at, now) + timedelta(seconds=seconds)
                lines.append(
                    f"{len(lines) + 1}. {matchers_text(silence)}\n"
                    f"   ends {local(silence.ends_at, now)}"
                    f" -> {local(new_end, now)} ({relative(new_end, now)})"
                )
            body = "\n".join(lines)
            by = span(timedelta(seconds=seconds))

            def done(confirmed: bool | None) -> None:
                if not confirmed:
                    return
                self.marked.difference_update(keys)
                self.post_message(
                    SubmitActions(
                        [
                            ActionRequest(
                                "silence.extend", target=key, params={"duration_seconds": seconds}
                            )
                            for key in keys
                        ],
                        f"Extend {count} {noun} by {by}",
                    )
                )
                if self._snapshot is not None:
                    self._render_rows()

            self.app.push_screen(
                ConfirmScreen(
                    f"Extend {count} {noun} by {by}?", body, confirm_label=f"Extend {count}"
                ),
                done,
            )

        from oncall_tui.ui.silence_form import ExtendScreen  # when first opened, see alerts.py

        self.app.push_screen(ExtendScreen(count), confirm)
