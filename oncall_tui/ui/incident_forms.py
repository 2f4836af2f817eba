"""The small incident forms: a note, and the reassign picker.

Both name the incidents they act on, so a refresh that moved the cursor after the key press is
visible before anything is sent. They only return what was chosen; the Incidents view turns that
into action requests. Names typed by other people are shown as plain text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path, PurePath
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from oncall_tui.clock import Clock
from oncall_tui.models import Incident
from oncall_tui.ui.incident_details import clip

Target = tuple[str, str, str]  # (kind "user" | "escalation_policy", id, name)
Search = Callable[[str], Awaitable[list[Target]]]
MAX_NOTE = 2000  # far below PagerDuty's limit; a note is read by someone paged at night
PICKER_ROWS = 50
NAME_WIDTH = 28
FORM_CSS: list[str | PurePath] = [
    Path(__file__).with_name("forms.tcss"),
    Path(__file__).with_name("incidents.tcss"),
]


def _names(incidents: Sequence[Incident]) -> str:
    first = incidents[0]
    number = f"#{first.number} " if first.number is not None else ""
    text = f"{number}{first.title}"
    if len(incidents) > 1:
        text += f" and {len(incidents) - 1} more"
    return text


class NoteForm(ModalScreen[str | None]):
    """One line of text added as a note; enter adds it, escape cancels."""

    CSS_PATH = FORM_CSS

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="form-cancel"),
    ]

    def __init__(self, incidents: Sequence[Incident], clock: Clock) -> None:
        super().__init__()
        self._incidents = list(incidents)
        self._clock = clock

    def compose(self) -> ComposeResult:
        dialog = Vertical(classes="form-dialog", id="note-dialog")
        count = len(self._incidents)
        dialog.border_title = f"Add a note to {count} incident{'s' if count != 1 else ''}"
        with dialog:
            yield Static(Text(_names(self._incidents)), classes="form-message", id="note-for")
            with Horizontal(classes="form-row"):
                yield Label("Note", classes="form-label")
                yield Input(
                    placeholder="what you found, what you are doing",
                    max_length=MAX_NOTE,
                    id="note-content",
                    compact=True,
                )
            yield Static("", id="note-message", classes="form-message")
            with Horizontal(classes="form-buttons"):
                yield Static("enter add · esc cancel", classes="form-hint")
                yield Button("Cancel", id="note-cancel", compact=True)
                yield Button("Add note", id="note-submit", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#note-content", Input).focus()

    @on(Input.Submitted, "#note-content")
    @on(Button.Pressed, "#note-submit")
    def _submit(self, event: Input.Submitted | Button.Pressed) -> None:
        event.stop()
        content = self.query_one("#note-content", Input).value.strip()
        if not content:
            message = self.query_one("#note-message", Static)
            message.update("a note needs some text")
            message.add_class("-error")
            return
        self.dismiss(content)

    @on(Button.Pressed, "#note-cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ReassignForm(ModalScreen[Target | None]):
    """Type to search users and escalation policies; enter on one reassigns to it."""

    CSS_PATH = FORM_CSS

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="form-cancel"),
        Binding("down", "pick_next", "Next", show=False),
        Binding("up", "pick_previous", "Previous", show=False),
    ]

    def __init__(self, incidents: Sequence[Incident], search: Search) -> None:
        super().__init__()
        self._incidents = list(incidents)
        self._search = search
        self.choices: list[Target] = []

    def compose(self) -> ComposeResult:
        dialog = Vertical(classes="form-dialog", id="reassign-dialog")
        count = len(self._incidents)
        dialog.border_title = f"Reassign {count} incident{'s' if count != 1 else ''}"
        with dialog:
            yield Static(Text(_names(self._incidents)), classes="form-message", id="reassign-for")
            with Horizontal(classes="form-row"):
                yield Label("To", classes="form-label")
                yield Input(placeholder="name of a user or escalation policy", id="reassign-query")
            yield OptionList(id="reassign-choices")
            yield Static("", id="reassign-message", classes="form-message")
            with Horizontal(classes="form-buttons"):
                yield Static("↑↓ pick · enter reassign · esc cancel", classes="form-hint")
                yield Button("Cancel", id="reassign-cancel", compact=True)
                yield Button("Reassign", id="reassign-submit", variant="primary", compact=True)

    def on_mount(self) -> None:
        box = self.query_one("#reassign-query", Input)
        box.compact = True
        box.focus()
        self._lookup("")

    @on(Input.Changed, "#reassign-query")
    def _query_changed(self, event: Input.Changed) -> None:
        self._lookup(event.value)

    @work(group="reassign-search", exclusive=True, exit_on_error=False)
    async def _lookup(self, query: str) -> None:
        message = self.query_one("#reassign-message", Static)
        try:
            choices = await self._search(query)
        except Exception as exc:  # shown in the form; the operator may retry by typing
            message.update(Text(f"could not search: {exc}"))
            message.add_class("-error")
            return
        message.remove_class("-error")
        self.choices = choices[:PICKER_ROWS]
        picker = self.query_one("#reassign-choices", OptionList)
        picker.clear_options()
        for kind, _id, name in self.choices:
            label = Text(clip(name, NAME_WIDTH).ljust(NAME_WIDTH + 2))
            label.append("user" if kind == "user" else "escalation policy", style="dim")
            picker.add_option(Option(label))
        if self.choices:
            picker.highlighted = 0
            more = len(choices) - len(self.choices)
            message.update(
                f"{len(choices)} found" + (f", first {PICKER_ROWS} shown" if more else "")
            )
        else:
            message.update("nobody found; type part of a name")

    def _move(self, delta: int) -> None:
        picker = self.query_one("#reassign-choices", OptionList)
        if not self.choices:
            return
        current = picker.highlighted or 0
        picker.highlighted = max(0, min(len(self.choices) - 1, current + delta))

    def action_pick_next(self) -> None:
        self._move(1)

    def action_pick_previous(self) -> None:
        self._move(-1)

    def _chosen(self) -> Target | None:
        index = self.query_one("#reassign-choices", OptionList).highlighted
        if index is None or not 0 <= index < len(self.choices):
            return None
        return self.choices[index]

    @on(Input.Submitted, "#reassign-query")
    @on(Button.Pressed, "#reassign-submit")
    @on(OptionList.OptionSelected, "#reassign-choices")
    def _submit(self, event: Input.Submitted | Button.Pressed | OptionList.OptionSelected) -> None:
        event.stop()
        if isinstance(event, OptionList.OptionSelected):
            self.query_one("#reassign-choices", OptionList).highlighted = event.option_index
        choice = self._chosen()
        if choice is None:
            message = self.query_one("#reassign-message", Static)
            message.update("pick someone first")
            message.add_class("-error")
            return
        self.dismiss(choice)

    @on(Button.Pressed, "#reassign-cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
