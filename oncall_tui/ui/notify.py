"""Telling the operator that something new needs them: in the app, with the bell, on the desktop.

The desktop notification goes through the terminal itself (OSC 9, understood by iTerm2, kitty,
WezTerm, Windows Terminal; OSC 777, understood by urxvt, foot, VTE terminals), so it works over
ssh and inside tmux with passthrough, with no dependency on a local notification daemon.
`notify.only_when_on_call` needs on-call data (a later issue); until then the operator is treated
as on call, which errs on the side of waking them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from textual.app import App

from oncall_tui.config import NotifyConfig
from oncall_tui.models import Alert, severity_rank

BELL = "\a"
# Control characters would end the escape sequence early or inject others; `;` separates
# OSC 777 fields.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f;]")
MAX_TEXT = 200


def _clean(text: str) -> str:
    return _UNSAFE.sub(" ", text).strip()[:MAX_TEXT]


def osc9(body: str) -> str:
    return f"\x1b]9;{_clean(body)}\a"


def osc777(title: str, body: str) -> str:
    return f"\x1b]777;notify;{_clean(title)};{_clean(body)}\a"


def describe(alerts: Sequence[Alert]) -> tuple[str, str]:
    """Title and body of one notification for these alerts."""
    worst = min(alerts, key=lambda a: severity_rank(a.severity))
    count = len(alerts)
    title = f"{count} new {worst.severity} alert{'s' if count != 1 else ''}"
    lines = []
    for alert in alerts[:3]:
        where = alert.labels.get("service") or alert.labels.get("instance") or ""
        line = alert.alertname + (f" ({where})" if where else "")
        if alert.summary:
            line += f": {alert.summary}"
        lines.append(line)
    if count > 3:
        lines.append(f"and {count - 3} more")
    return title, "\n".join(lines)


class Notifier:
    """Raises notifications per `notify:`; `write` sends raw bytes to the terminal."""

    def __init__(
        self,
        app: App[Any],
        config: NotifyConfig,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.config = config
        self.write = write or self._write_to_terminal

    def _write_to_terminal(self, data: str) -> None:
        driver = self.app._driver
        if driver is not None and not self.app.is_headless:
            driver.write(data)
            driver.flush()

    def alerts_raised(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        title, body = describe(alerts)
        critical = any(severity_rank(a.severity) == 0 for a in alerts)
        self.app.notify(
            body,
            title=title,
            severity="error" if critical else "warning",
            timeout=15,
            markup=False,
        )
        if self.config.bell:
            self.write(BELL)
        if self.config.desktop:
            first_line = body.splitlines()[0] if body else ""
            self.write(osc9(f"{title}: {first_line}"))
            self.write(osc777(title, body.replace("\n", " · ")))
