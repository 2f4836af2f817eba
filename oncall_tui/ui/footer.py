"""The key footer: redrawn only when the keys it shows change, and never cut off at `? Help`.

Textual's Footer rebuilds every key widget whenever any widget asks for a bindings refresh, and
the views ask after each snapshot and cursor move (a key may have become available). With
refreshes every second and an alert storm, that rebuild was the largest part of a repaint; here
it happens only when a key appears, disappears, or is enabled or disabled, or the width changes.

On a narrow terminal the keys do not all fit in one line, and the footer cut off whatever came
last: the help and quit keys. Here the keys that do not fit are left out from the right, except
those two; the help screen (`?`) lists every key.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

ALWAYS_SHOWN = frozenset({"help", "quit"})  # actions whose key stays in the footer at any width


def shown_keys(screen: Screen[Any]) -> tuple[tuple[object, ...], ...]:
    """What a footer on `screen` would show: each key, its action and text, and whether enabled."""
    keys = []
    for key, active in screen.active_bindings.items():
        binding = active.binding
        node = id(active.node)
        keys.append((key, node, binding.action, binding.description, binding.show, active.enabled))
    return tuple(keys)


def key_width(key: FooterKey) -> int:
    """Cells a compact footer key takes: `k Description` and the margin after it."""
    text = cell_len(key.key_display)
    if key.description:
        text += 1 + cell_len(key.description)
    return text + 1


def fit_keys(widgets: list[Widget], width: int) -> list[Widget]:
    """`widgets` without the rightmost keys that do not fit in `width` cells (but help and quit)."""
    kept = list(widgets)
    used = sum(key_width(w) for w in kept if isinstance(w, FooterKey))
    for index in reversed(range(len(kept))):
        if used <= width:
            break
        widget = kept[index]
        if isinstance(widget, FooterKey) and widget.action not in ALWAYS_SHOWN:
            used -= key_width(widget)
            del kept[index]
    return kept


class KeyFooter(Footer):
    """The app's footer: compact, no command-palette key, redrawn only on a change."""

    def __init__(self) -> None:
        super().__init__(compact=True, show_command_palette=False)
        self._drawn: tuple[object, ...] | None = None

    def _width(self) -> int:
        return self.size.width or self.app.size.width

    def compose(self) -> ComposeResult:
        yield from fit_keys(list(super().compose()), self._width())

    def bindings_changed(self, screen: Screen[Any]) -> None:
        will_draw = screen.app.app_focus and self.is_attached and screen is self.screen
        if will_draw:
            drawn = (self._width(), shown_keys(screen))
            if drawn == self._drawn:
                return
            self._drawn = drawn
        super().bindings_changed(screen)

    def on_resize(self) -> None:
        if self.is_attached and self._drawn is not None:
            self.bindings_changed(self.screen)
