"""The `?` help: every key as it is bound right now, remaps and read-only mode included.

It is generated from the live bindings (oncall_tui/ui/commands.py), so it cannot disagree with
what the keys do. Keys that need a selection are shown dimmed while nothing is selected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from oncall_tui.ui.commands import Command

NAVIGATION_NOTE = (
    "Actions apply to the marked rows, or to the row under the cursor when none is marked. "
    "Remap any key under `keys:` in the config with the id shown here."
)


def help_tables(commands: Sequence[Command]) -> list[Table]:
    """One table per section, with fixed key and id columns so that the sections line up."""
    tables: dict[str, Table] = {}
    for command in commands:
        table = tables.get(command.section)
        if table is None:
            table = tables[command.section] = Table.grid(padding=(0, 1))
            table.title = command.section
            table.title_justify = "left"
            table.title_style = "bold underline"
            table.add_column(no_wrap=True, style="bold", width=12)
            table.add_column(overflow="fold", ratio=1)
            table.add_column(no_wrap=True, style="dim", width=24, overflow="ellipsis")
        style = "" if command.enabled else "dim"
        table.add_row(
            Text(command.key_text, style=style),
            Text(command.help, style=style),
            Text(command.binding_id),
        )
    return list(tables.values())


class HelpScreen(ModalScreen[None]):
    """Keys by section; escape, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss_help", "Close", id="help-close"),
        Binding("j,down", "scroll_down", "Down", show=False, id="cursor-down"),
        Binding("k,up", "scroll_up", "Up", show=False, id="cursor-up"),
    ]

    def __init__(self, commands: Sequence[Command]) -> None:
        super().__init__()
        self.commands = list(commands)

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            title = Text("Keys", style="bold")
            title.append("   escape closes · j/k scroll", style="dim")
            yield Static(title, id="help-title")
            with VerticalScroll(id="help-body"):
                for index, table in enumerate(help_tables(self.commands)):
                    yield Static(table, id=f"help-section-{index}")
                yield Static(Text(NAVIGATION_NOTE, style="dim"), id="help-note")

    def on_mount(self) -> None:
        self.query_one("#help-body", VerticalScroll).focus()

    def action_dismiss_help(self) -> None:
        self.dismiss(None)

    def action_scroll_down(self) -> None:
        self.query_one("#help-body", VerticalScroll).scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self.query_one("#help-body", VerticalScroll).scroll_up(animate=False)
