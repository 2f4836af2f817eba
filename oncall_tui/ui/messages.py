"""Messages that views send up to the app, so no view talks to the engine's action door itself."""

from __future__ import annotations

from collections.abc import Sequence

from textual.message import Message

from oncall_tui.engine import ActionRequest


class SubmitActions(Message):
    """Ask the app to run these actions through the engine and report pending/done/failed.

    `description` is what the operator is told ("Expire 3 silences"); confirmation, when one is
    needed, has already happened in the view that posts this.
    """

    def __init__(self, requests: Sequence[ActionRequest], description: str) -> None:
        super().__init__()
        self.requests = tuple(requests)
        self.description = description
