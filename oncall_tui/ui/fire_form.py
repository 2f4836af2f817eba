"""Fire a test alert into Alertmanager: a `test_alerts` preset, or labels typed by hand.

The pipeline is proven by sending a real alert through it. Presets come from the config; without
any, the form starts with an alertname and a severity so that a test is one keypress away. The
form only returns the request; the caller submits it through the engine.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from oncall_tui.config import Config, TestAlertPreset
from oncall_tui.engine import ActionRequest

CUSTOM = "\x00custom"
DEFAULT_LABELS = "alertname=TestAlert, severity=warning"
DEFAULT_SUMMARY = "Test alert from oncall-tui"
_LABEL_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LabelSyntaxError(ValueError):
    pass


def parse_labels(text: str) -> dict[str, str]:
    """`k=v, k2="v 2"` as a label set; the error names the part that cannot be read."""
    labels: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep:
            raise LabelSyntaxError(f"expected name=value, got {part!r}")
        if not _LABEL_NAME_RE.match(name):
            raise LabelSyntaxError(f"{name!r} is not a valid label name")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if not value:
            raise LabelSyntaxError(f"label {name} has no value")
        labels[name] = value
    if not labels.get("alertname"):
        raise LabelSyntaxError("an alertname label is required")
    return labels


def format_labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{name}={value}" for name, value in labels.items())


class FireAlertForm(ModalScreen[ActionRequest | None]):
    """Build an `alert.fire` request; dismisses with it, or None when cancelled."""

    CSS_PATH = Path(__file__).with_name("forms.tcss")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="form-cancel"),
        Binding("ctrl+s", "submit", "Fire", id="form-submit", priority=True),
    ]

    def __init__(self, config: Config) -> None:
        super().__init__()
        self._config = config
        self._presets: list[TestAlertPreset] = list(config.test_alerts)
        seen: dict[str, None] = {}
        for am in config.alertmanagers:
            seen.setdefault(am.cluster_name, None)
        self._clusters = list(seen)
        self._labels: dict[str, str] | None = None

    def compose(self) -> ComposeResult:
        dialog = Vertical(classes="form-dialog", id="fire-dialog")
        dialog.border_title = "Fire a test alert"
        first = self._presets[0] if self._presets else None
        with dialog:
            if self._presets:
                with Horizontal(classes="form-row"):
                    yield Label("Preset", classes="form-label")
                    options = [(p.name, str(i)) for i, p in enumerate(self._presets)]
                    yield Select[str](
                        [*options, ("custom labels", CUSTOM)],
                        value="0",
                        allow_blank=False,
                        id="fire-preset",
                        compact=True,
                    )
            with Horizontal(classes="form-row"):
                yield Label("Labels", classes="form-label")
                yield Input(
                    format_labels(first.labels) if first else DEFAULT_LABELS,
                    id="fire-labels",
                    compact=True,
                    placeholder="alertname=X, severity=critical, service=y",
                )
            yield Static("", id="fire-labels-message", classes="form-message")
            with Horizontal(classes="form-row"):
                yield Label("Summary", classes="form-label")
                yield Input(
                    first.annotations.get("summary", "") if first else DEFAULT_SUMMARY,
                    id="fire-summary",
                    compact=True,
                )
            if len(self._clusters) > 1:
                with Horizontal(classes="form-row"):
                    yield Label("Send to", classes="form-label")
                    yield Select[str](
                        [(name, name) for name in self._clusters],
                        value=self._clusters[0],
                        allow_blank=False,
                        id="fire-cluster",
                        compact=True,
                    )
            yield Static("", id="fire-preview")
            with Horizontal(classes="form-buttons"):
                yield Static("ctrl+s fire · esc cancel", classes="form-hint")
                yield Button("Cancel", id="fire-cancel", compact=True)
                yield Button("Fire", id="fire-submit", variant="warning", compact=True)

    def on_mount(self) -> None:
        self._revalidate()
        self.query_one("#fire-labels", Input).focus()

    @property
    def cluster(self) -> str:
        if len(self._clusters) > 1:
            value = self.query_one("#fire-cluster", Select).value
            if isinstance(value, str):
                return value
        return self._clusters[0]

    def _preset(self) -> TestAlertPreset | None:
        if not self._presets:
            return None
        value = self.query_one("#fire-preset", Select).value
        if not isinstance(value, str) or value == CUSTOM:
            return None
        return self._presets[int(value)]

    @on(Select.Changed, "#fire-preset")
    def _preset_changed(self) -> None:
        preset = self._preset()
        if preset is not None:
            self.query_one("#fire-labels", Input).value = format_labels(preset.labels)
            self.query_one("#fire-summary", Input).value = preset.annotations.get("summary", "")
        self._revalidate()

    @on(Input.Changed)
    @on(Select.Changed, "#fire-cluster")
    def _changed(self) -> None:
        self._revalidate()

    def _revalidate(self) -> None:
        message = self.query_one("#fire-labels-message", Static)
        preview = self.query_one("#fire-preview", Static)
        try:
            self._labels = parse_labels(self.query_one("#fire-labels", Input).value)
        except LabelSyntaxError as exc:
            self._labels = None
            message.update(Text(str(exc)))
            message.add_class("-error")
            message.display = True
            preview.display = False
            return
        message.display = False
        preview.display = True
        shown = ", ".join(f'{k}="{v}"' for k, v in self._labels.items())
        preview.update(Text(f"Sends {{{shown}}} to Alertmanager {self.cluster}"))

    def _annotations(self) -> dict[str, str]:
        preset = self._preset()
        annotations = dict(preset.annotations) if preset is not None else {}
        summary = self.query_one("#fire-summary", Input).value.strip()
        if summary:
            annotations["summary"] = summary
        else:
            annotations.pop("summary", None)
        return annotations

    def request(self) -> ActionRequest | None:
        """The request the form would send now, or None (with the problem shown) if invalid."""
        self._revalidate()
        if self._labels is None:
            self.query_one("#fire-labels", Input).focus()
            return None
        return ActionRequest(
            "alert.fire",
            target="",
            params={
                "labels": dict(self._labels),
                "annotations": self._annotations(),
                "to": "alertmanager",
                # The engine sends to every peer of this cluster.
                "cluster": self.cluster,
            },
        )

    @on(Input.Submitted)
    def _input_submitted(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#fire-submit")
    def _submit_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_submit()

    @on(Button.Pressed, "#fire-cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_submit(self) -> None:
        request = self.request()
        if request is not None:
            self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)
