"""The Log view's dialogs: one entry in full, an incident's timeline, and the shift handoff.

The timeline and the handoff are the same Markdown documents `oncall-tui log export` and
`oncall-tui handoff` print (oncall_tui/timeline.py, oncall_tui/handoff.py), shown with Textual's
Markdown widget; untrusted text in them is already escaped for Markdown by those modules, and
Markdown is never parsed as Rich markup. The entry details are plain `Text`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from oncall_tui.models import LogEntry
from oncall_tui.ui.timefmt import local, relative

_DIALOG_CSS = """
{name} {{ align: center middle; background: $background 60%; }}
{name} > Vertical {{
    width: 120; max-width: 100%; height: 100%; max-height: 46;
    border: thick $primary; background: $surface; padding: 0 1;
}}
{name} VerticalScroll {{ height: 1fr; }}
{name} .dialog-hint {{ width: 100%; height: 1; text-align: right; color: $text-muted; }}
"""


class EntryDetails(ModalScreen[None]):
    """Every field of one log entry, its data as indented JSON."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="EntryDetails")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close", id="details-close"),
    ]

    def __init__(self, entry: LogEntry, now: datetime, *, has_incident: bool) -> None:
        super().__init__()
        self._entry = entry
        self._now = now
        self._has_incident = has_incident

    def compose(self) -> ComposeResult:
        entry = self._entry
        at = f"{local(entry.at, self._now)} ({relative(entry.at, self._now)})"
        lines = [
            f"at       {at}   {entry.at.isoformat()}",
            f"source   {entry.source}",
            f"kind     {entry.kind}",
            f"actor    {entry.actor or '—'}",
            f"summary  {entry.summary}",
            "data",
            json.dumps(entry.data, indent=2, sort_keys=True, default=str, ensure_ascii=False),
        ]
        dialog = Vertical(id="entry-details-dialog")
        dialog.border_title = f"Log entry {entry.id}"
        hint = "p timeline of its incident · esc close" if self._has_incident else "esc close"
        with dialog:
            with VerticalScroll(id="entry-details-body"):
                yield Static(Text("\n".join(lines)))
            yield Static(Text(hint), classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)


class DocumentScreen(ModalScreen[None]):
    """A Markdown document (a postmortem timeline or the handoff) in a scrolling dialog."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="DocumentScreen")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close", id="document-close"),
        Binding("j,down", "scroll('down')", "Down", show=False, id="document-down"),
        Binding("k,up", "scroll('up')", "Up", show=False, id="document-up"),
    ]

    def __init__(self, title: str, markdown: str, *, hint: str = "") -> None:
        super().__init__()
        self._title = title
        self._markdown = markdown
        self._hint = hint

    def compose(self) -> ComposeResult:
        dialog = Vertical(id="document-dialog")
        dialog.border_title = self._title
        with dialog:
            with VerticalScroll(id="document-body"):
                # Imported when first shown: Markdown parsing is not needed for the first frame.
                from textual.widgets import Markdown

                yield Markdown(self._markdown, id="document")
            hint = f"{self._hint} · esc close" if self._hint else "esc close"
            yield Static(Text(hint), classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#document-body", VerticalScroll).focus()

    @property
    def markdown(self) -> str:
        return self._markdown

    def action_scroll(self, direction: str) -> None:
        body = self.query_one("#document-body", VerticalScroll)
        if direction == "down":
            body.scroll_down(animate=False)
        else:
            body.scroll_up(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
