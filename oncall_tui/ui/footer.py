"""The key footer, redrawn only when the keys it shows change.

Textual's Footer rebuilds every key widget whenever any widget asks for a bindings refresh, and
the views ask after each snapshot and cursor move (a key may have become available). With
refreshes every second and an alert storm, that rebuild was the largest part of a repaint; here
it happens only when a key appears, disappears, or is enabled or disabled.
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer


def shown_keys(screen: Screen[Any]) -> tuple[tuple[object, ...], ...]:
    """What a footer on `screen` would show: each key, its action and text, and whether enabled."""
    keys = []
    for key, active in screen.active_bindings.items():
        binding = active.binding
        node = id(active.node)
        keys.append((key, node, binding.action, binding.description, binding.show, active.enabled))
    return tuple(keys)


class KeyFooter(Footer):
    """The app's footer: compact, no command-palette key, redrawn only on a change."""

    def __init__(self) -> None:
        super().__init__(compact=True, show_command_palette=False)
        self._drawn: tuple[tuple[object, ...], ...] | None = None

    def bindings_changed(self, screen: Screen[Any]) -> None:
        will_draw = screen.app.app_focus and self.is_attached and screen is self.screen
        if will_draw:
            keys = shown_keys(screen)
            if keys == self._drawn:
                return
            self._drawn = keys
        super().bindings_changed(screen)
