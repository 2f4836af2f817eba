"""The one confirmation dialog: says exactly what will be sent, and starts on Cancel.

An operator woken at 2 AM hits enter by reflex; with Cancel focused at start, that reflex does
nothing harmful. `y` confirms from anywhere, `n` and `escape` cancel. The body is shown as plain
text, never as markup, because it quotes alert labels and comments typed by other people.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """Ask before an action that ends work or changes what others see; dismisses with a bool."""

    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
        background: $background 60%;
    }
    ConfirmScreen > #confirm-dialog {
        width: 72;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    ConfirmScreen.-danger > #confirm-dialog {
        border: thick $error;
    }
    ConfirmScreen #confirm-title {
        text-style: bold;
        width: 100%;
        padding: 0 0 1 0;
    }
    ConfirmScreen #confirm-body-scroll {
        height: auto;
        max-height: 16;
    }
    ConfirmScreen #confirm-body {
        width: 100%;
    }
    ConfirmScreen #confirm-buttons {
        height: auto;
        width: 100%;
        align-horizontal: right;
        padding: 1 0 0 0;
    }
    ConfirmScreen #confirm-buttons Button {
        margin: 0 0 0 2;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "Confirm", id="confirm-yes"),
        Binding("n,escape", "cancel", "Cancel", id="confirm-no"),
        Binding("left,shift+tab", "app.focus_previous", "Previous", show=False),
        Binding("right,tab", "app.focus_next", "Next", show=False),
        Binding("up", "scroll_body(-1)", "Scroll up", show=False),
        Binding("down", "scroll_body(1)", "Scroll down", show=False),
    ]

    def __init__(
        self,
        title: str,
        body: str,
        *,
        confirm_label: str = "Confirm",
        danger: bool = False,
    ) -> None:
        super().__init__(classes="-danger" if danger else None)
        self._title = title
        self._body = body
        self._confirm_label = confirm_label
        self._danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Static(Text(self._title), id="confirm-title")
            with VerticalScroll(id="confirm-body-scroll", can_focus=False):
                yield Static(Text(self._body), id="confirm-body")
            with Horizontal(id="confirm-buttons"):
                yield Button("Cancel", id="cancel", variant="default")
                yield Button(
                    Text(self._confirm_label),
                    id="confirm",
                    variant="error" if self._danger else "primary",
                )

    def on_mount(self) -> None:
        # Never start on the button that acts: enter must be harmless by reflex.
        self.query_one("#cancel", Button).focus()

    def action_scroll_body(self, lines: int) -> None:
        # The body is not focusable (so Cancel keeps focus); long lists still scroll.
        self.query_one("#confirm-body-scroll", VerticalScroll).scroll_relative(
            y=lines, animate=False
        )

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#confirm")
    def _confirmed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def _cancelled(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(False)
