"""A virtualised alerts table: renders only the lines on screen, whatever the number of alerts.

A DataTable rebuild of 10,000 rows costs about a second; this widget keeps its rows in an
`AlertRows` model and draws each visible line on demand (Textual's line API), so a refresh costs a
diff of the alerts plus a repaint of one screen. The cursor and the marks are alert keys, never
row numbers, so they stay on the same alert when a refresh reorders the list.

Alert text is untrusted: every label and annotation goes into `rich.text.Text` as plain text and
is never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from oncall_tui.clock import Clock
from oncall_tui.models import Alert, AlertState
from oncall_tui.ui.alert_rows import AlertRows, GroupRow
from oncall_tui.ui.timefmt import span

_SEVERITY_CLASS = {
    "critical": "sev-critical",
    "error": "sev-error",
    "high": "sev-error",
    "warning": "sev-warning",
    "info": "sev-info",
    "low": "sev-info",
}
_STATE_WORD = {
    AlertState.ACTIVE: "active",
    AlertState.SILENCED: "silenced",
    AlertState.INHIBITED: "inhibited",
    AlertState.UNPROCESSED: "new",
}


def severity_class(severity: str) -> str:
    return _SEVERITY_CLASS.get(severity.lower(), "sev-none")


def _fit(text: str | Text, width: int, style: Style | None = None) -> Text:
    cell = Text(text, style=style or "") if isinstance(text, str) else text
    cell.no_wrap = True
    # One cell of gutter, so that a truncated value never runs into the next column.
    cell.truncate(max(width - 1, 0), overflow="ellipsis")
    cell.pad_right(max(width - cell.cell_len, 0))
    return cell


def detail_of(alert: Alert, group_by: Sequence[str]) -> str:
    """What tells this alert apart from the others of its group: its instance, else its labels."""
    if instance := alert.labels.get("instance"):
        return instance
    skip = {*group_by, "alertname", "severity"}
    rest = [f"{k}={v}" for k, v in sorted(alert.labels.items()) if k not in skip]
    return " ".join(rest)


class AlertTable(ScrollView, can_focus=True):
    """Grouped alerts, one line each, with a cursor and marks kept by alert key."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "cursor_down", "Down", show=False, id="cursor-down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="cursor-up"),
        Binding("g,home", "cursor_top", "Top", show=False, id="cursor-top"),
        Binding("G,end", "cursor_bottom", "Bottom", show=False, id="cursor-bottom"),
        Binding("pagedown", "page_down", "Page down", show=False, id="page-down"),
        Binding("pageup", "page_up", "Page up", show=False, id="page-up"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "alert-table--header",
        "alert-table--group",
        "alert-table--cursor",
        "alert-table--marked",
        "alert-table--mark-glyph",
        "alert-table--dim",
        "alert-table--empty",
        "alert-table--sev-critical",
        "alert-table--sev-error",
        "alert-table--sev-warning",
        "alert-table--sev-info",
        "alert-table--sev-none",
    }

    class CursorMoved(Message):
        """The cursor moved to another alert (or to none): the footer's keys may change."""

        def __init__(self, key: str | None) -> None:
            super().__init__()
            self.key = key

    def __init__(
        self,
        clock: Clock,
        *,
        group_by: Sequence[str] = ("alertname", "service"),
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.model = AlertRows(group_by)
        self.cursor_key: str | None = None
        self.marks: set[str] = set()
        self.empty_message = "Waiting for the first refresh…"
        # Rendered alert lines by what decides their look; a steady refresh repaints from here.
        self._line_cache: LRUCache[tuple[object, ...], tuple[Alert, Strip]] = LRUCache(1024)
        # Component styles by name, and the content width of the frame being drawn: both cost
        # more to look up than drawing a cached line, and a frame asks for them on every line.
        self._styles: dict[str, Style] = {}
        # Width and style for the lines of one render pass: each is costly to look up per line.
        self._frame_width: int | None = None
        self._frame_style: Style | None = None

    # -- data --------------------------------------------------------------------------------

    @property
    def cursor_alert(self) -> Alert | None:
        if self.cursor_key is None or self.model.index_of(self.cursor_key) is None:
            return None
        return self.model.alert(self.cursor_key)

    @property
    def cursor_index(self) -> int | None:
        return None if self.cursor_key is None else self.model.index_of(self.cursor_key)

    def marked_alerts(self) -> list[Alert]:
        """Marked alerts that are still in the snapshot, in the order shown."""
        model = self.model
        found = [(model.index_of(key), key, a) for key in self.marks if (a := model.alert(key))]
        # Shown alerts in screen order, then marked ones a filter now hides.
        found.sort(key=lambda item: (item[0] is None, item[0] or 0, item[1]))
        return [alert for _index, _key, alert in found]

    def set_alerts(self, alerts: Sequence[Alert]) -> set[str]:
        """Take a new snapshot's alerts; keeps the cursor and the marks on the same alerts."""
        old_index = self.cursor_index
        changed = self.model.set_alerts(alerts)
        if changed:
            if self.marks:
                self.marks.intersection_update(a.key for a in alerts)
            self._after_rows_changed(old_index)
        else:
            self.refresh()  # ages move on even when nothing else did
        return changed

    def refilter(self) -> None:
        old_index = self.cursor_index
        self.model.refilter()
        self._after_rows_changed(old_index, prefer_top=True)

    def _after_rows_changed(self, old_index: int | None, *, prefer_top: bool = False) -> None:
        rows = self.model.rows
        self.virtual_size = Size(self.scrollable_content_region.width, len(rows) + 1)
        before = self.cursor_key
        if self.cursor_key is None or self.model.index_of(self.cursor_key) is None:
            # The alert under the cursor left: stay at the same height rather than jump away.
            start = 0 if prefer_top or old_index is None else min(old_index, len(rows) - 1)
            self.cursor_key = self._alert_near(start)
        if self.cursor_key != before:
            self.post_message(self.CursorMoved(self.cursor_key))
        self._scroll_to_cursor()
        self.refresh()

    def _alert_near(self, index: int) -> str | None:
        rows = self.model.rows
        for i in (*range(max(index, 0), len(rows)), *range(min(index, len(rows)) - 1, -1, -1)):
            row = rows[i]
            if isinstance(row, Alert):
                return row.key
        return None

    # -- cursor ------------------------------------------------------------------------------

    def _move_to(self, index: int, step: int) -> None:
        """The first alert from `index` in the direction of `step`, else the other way."""
        rows = self.model.rows
        for direction in (step, -step):
            i = index
            while 0 <= i < len(rows):
                row = rows[i]
                if isinstance(row, Alert):
                    self._set_cursor(row.key)
                    return
                i += direction

    def _set_cursor(self, key: str | None) -> None:
        if key == self.cursor_key:
            self._scroll_to_cursor()
            return
        self.cursor_key = key
        self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.CursorMoved(key))

    def move_cursor_to(self, key: str) -> bool:
        if self.model.index_of(key) is None:
            return False
        self._set_cursor(key)
        return True

    def action_cursor_down(self) -> None:
        index = self.cursor_index
        self._move_to(0 if index is None else index + 1, 1)

    def action_cursor_up(self) -> None:
        index = self.cursor_index
        self._move_to(0 if index is None else index - 1, -1)
        if self.cursor_index is not None and self.cursor_index == 1:
            self.scroll_to(y=0, animate=False)  # show the first group's header too

    def action_cursor_top(self) -> None:
        self._move_to(0, 1)
        self.scroll_to(y=0, animate=False)

    def action_cursor_bottom(self) -> None:
        self._move_to(len(self.model.rows) - 1, -1)

    def _page(self) -> int:
        return max(self.scrollable_content_region.height - 2, 1)

    def action_page_down(self) -> None:
        index = self.cursor_index or 0
        self._move_to(min(index + self._page(), len(self.model.rows) - 1), 1)

    def action_page_up(self) -> None:
        index = self.cursor_index or 0
        self._move_to(max(index - self._page(), 0), -1)

    def toggle_mark(self) -> None:
        if self.cursor_key is None:
            return
        self.marks.symmetric_difference_update({self.cursor_key})
        self.refresh()

    def clear_marks(self) -> None:
        self.marks.clear()
        self.refresh()

    def _scroll_to_cursor(self) -> None:
        index = self.cursor_index
        if index is None:
            return
        visible = max(self.scrollable_content_region.height - 1, 1)  # minus the column header
        top = int(self.scroll_y)
        if index < top:
            # Show the group header above the first alert of a group.
            above = self.model.rows[index - 1] if index > 0 else None
            wanted = index - 1 if isinstance(above, GroupRow) else index
            self.scroll_to(y=wanted, animate=False, immediate=True)
        elif index >= top + visible:
            self.scroll_to(y=index - visible + 1, animate=False, immediate=True)

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.model.rows) + 1)
        self._scroll_to_cursor()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return
        index = int(self.scroll_y) + offset.y - 1
        rows = self.model.rows
        if 0 <= index < len(rows) and isinstance(rows[index], Alert):
            self._set_cursor(rows[index].key)

    # -- rendering ---------------------------------------------------------------------------

    def _widths(self, width: int) -> tuple[int, int, int, int, int, int]:
        mark, severity, state, age = 2, 9, 10, 7
        rest = max(width - mark - severity - state - age, 0)
        detail = min(max(rest * 2 // 5, 12), 30, rest)
        return mark, severity, state, age, detail, rest - detail

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            # Colour-only parts (severity, dim, the mark) must not carry the widget's background,
            # or they would paint over the cursor and mark highlights.
            partial = name.startswith(("sev-", "dim", "mark-glyph"))
            style = self.get_component_rich_style(f"alert-table--{name}", partial=partial)
            self._styles[name] = style
        return style

    def render_lines(self, crop: Region) -> list[Strip]:
        self._frame_width = self.scrollable_content_region.width
        self._frame_style = self.rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._frame_width = None
            self._frame_style = None

    def _line_style(self) -> Style:
        return self._frame_style if self._frame_style is not None else self.rich_style

    def render_line(self, y: int) -> Strip:
        width = self._frame_width
        if width is None:
            width = self.scrollable_content_region.width
        rows = self.model.rows
        if y == 0:
            line = self._header_line(width)
        elif not rows:
            line = self._empty_line(y, width)
        else:
            index = int(self.scroll_y) + y - 1
            if index >= len(rows):
                return Strip.blank(width, self._line_style())
            row = rows[index]
            if isinstance(row, GroupRow):
                line = self._group_line(row, width)
            else:
                return self._cached_alert_strip(row, width)
        segments = list(line.render(self.app.console, end=""))
        return Strip(segments).adjust_cell_length(width, self._line_style())

    def _cached_alert_strip(self, alert: Alert, width: int) -> Strip:
        age = span(self.clock.now() - alert.starts_at)
        key = (
            alert.key,
            width,
            age,
            alert.key == self.cursor_key,
            alert.key in self.marks,
            self.has_focus,
        )
        cached = self._line_cache.get(key)
        if cached is not None and cached[0] is alert:
            return cached[1]
        line = self._alert_line(alert, width)
        strip = Strip(list(line.render(self.app.console, end=""))).adjust_cell_length(
            width, self._line_style()
        )
        self._line_cache[key] = (alert, strip)
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._line_cache.clear()
        self._styles.clear()

    def on_focus(self, event: events.Focus) -> None:
        self._styles.clear()  # styles may depend on :focus
        self.refresh()

    def on_blur(self, event: events.Blur) -> None:
        self._styles.clear()
        self.refresh()

    def _header_line(self, width: int) -> Text:
        mark, severity, state, age, detail, summary = self._widths(width)
        line = Text(no_wrap=True)
        for title, size in (
            ("", mark),
            ("SEVERITY", severity),
            ("STATE", state),
            ("AGE", age),
            ("INSTANCE / LABELS", detail),
            ("SUMMARY", summary),
        ):
            line.append_text(_fit(title, size))
        # A Text's base style is not part of its segments; a span is.
        line.stylize(self._style("header"))
        return line

    def _empty_line(self, y: int, width: int) -> Text:
        if y != 2:
            return Text("")
        line = Text(self.empty_message, no_wrap=True)
        line.align("center", width)
        line.stylize(self._style("empty"))
        return line

    def _group_line(self, row: GroupRow, width: int) -> Text:
        names = " · ".join(value or "—" for value in row.group)
        counts = f"{row.size} alert{'s' if row.size != 1 else ''}"
        if row.active != row.size:
            counts += f", {row.active} active"
        right = Text(f" {counts} ", style=self._style("group"))
        left = Text("▾ ", style=self._style("group"))
        left.append(names, style=self._style(severity_class(row.worst)))
        left.stylize(self._style("group"))
        left = _fit(left, width - right.cell_len)
        return left + right

    def _alert_line(self, alert: Alert, width: int) -> Text:
        mark, severity, state, age, detail, summary = self._widths(width)
        marked = alert.key in self.marks
        dim = alert.state in (AlertState.SILENCED, AlertState.INHIBITED)
        now = self.clock.now()
        line = Text(no_wrap=True)
        line.append_text(_fit("● " if marked else "", mark, self._style("mark-glyph")))
        sev_style = self._style(severity_class(alert.severity))
        line.append_text(_fit(alert.severity, severity, sev_style))
        line.append_text(_fit(_STATE_WORD.get(alert.state, str(alert.state)), state))
        line.append_text(_fit(span(now - alert.starts_at), age))
        line.append_text(_fit(detail_of(alert, self.model.group_by), detail))
        line.append_text(_fit(alert.summary.replace("\n", " "), summary))
        if dim:
            line.stylize(self._style("dim"))
        # Highlights go underneath, so the severity colour still shows on a marked or cursor row.
        if marked:
            line.stylize_before(self._style("marked"))
        if alert.key == self.cursor_key:
            line.stylize_before(self._style("cursor"))
        return line
