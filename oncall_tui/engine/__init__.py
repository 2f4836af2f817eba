"""The engine: sources, correlation, the log and operator actions, shared by UI and `serve`."""

from oncall_tui.engine.actions import ActionRequest
from oncall_tui.engine.core import Engine

__all__ = ["ActionRequest", "Engine"]
