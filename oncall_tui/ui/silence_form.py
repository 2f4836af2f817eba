"""The silence form: matchers prefilled from an alert's stable labels, with a live preview.

One line of matchers is one silence. From one alert the form starts with one line (the alert's
stable labels, `acknowledge.stable_labels`); from several marked alerts it starts with one line per
distinct matcher set, and says how many silences that makes. While the operator edits, the form
lists every alert the silences would match right now, so that a too-wide silence is seen before it
is sent. The form only returns requests; the caller submits them through the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Protocol

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Select, Static, TextArea

from oncall_tui.clock import Clock
from oncall_tui.config import Config, parse_duration
from oncall_tui.engine import ActionRequest
from oncall_tui.matchers import MatcherSyntaxError, matches_all, parse_matchers, stable_matchers
from oncall_tui.models import Alert, Matcher
from oncall_tui.ui.timefmt import local, relative, span

ALL_CLUSTERS = "\x00all"
DEFAULT_DURATION = "2h"
PREVIEW_ROWS = 200  # enough to judge a silence; more would only slow typing down

SEVERITY_STYLE = {
    "critical": "bold red",
    "error": "red",
    "high": "red",
    "warning": "yellow",
    "info": "cyan",
}


class SilenceEngine(Protocol):
    """What the form needs from the engine (the real Engine satisfies it)."""

    config: Config

    @property
    def clusters(self) -> list[str]: ...

    def alerts_matching(
        self, matchers: Sequence[Matcher], cluster: str | None = None
    ) -> list[Alert]: ...


def severity_text(severity: str) -> Text:
    """Severity as a word and a colour, never colour alone."""
    return Text(severity, style=SEVERITY_STYLE.get(severity.lower(), ""))


def prefill_lines(alerts: Sequence[Alert], stable_labels: Sequence[str]) -> list[str]:
    """One line per distinct matcher set, in the order the alerts were given."""
    lines: dict[str, None] = {}
    for alert in alerts:
        lines.setdefault(", ".join(str(m) for m in stable_matchers(alert, stable_labels)), None)
    return list(lines)


def parse_lines(text: str) -> list[tuple[Matcher, ...]]:
    """Each non-blank line is one silence's matchers; errors name the line if there are several."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise MatcherSyntaxError("no matcher given")
    parsed: list[tuple[Matcher, ...]] = []
    for number, line in enumerate(lines, start=1):
        try:
            matchers = parse_matchers(line)
        except MatcherSyntaxError as exc:
            where = f"line {number}: " if len(lines) > 1 else ""
            raise MatcherSyntaxError(f"{where}{exc}") from None
        if all(matches_all((m,), {}) for m in matchers):
            # Alertmanager refuses these: such a silence would match every alert.
            where = f"line {number}: " if len(lines) > 1 else ""
            raise MatcherSyntaxError(f"{where}at least one matcher must not match the empty string")
        parsed.append(matchers)
    return parsed


class SilenceForm(ModalScreen[list[ActionRequest] | None]):
    """Create one or more silences; dismisses with the requests, or None when cancelled."""

    CSS_PATH = Path(__file__).with_name("forms.tcss")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="form-cancel"),
        Binding("ctrl+s", "submit", "Create", id="form-submit", priority=True),
    ]

    def __init__(self, engine: SilenceEngine, clock: Clock, *, alerts: Sequence[Alert]) -> None:
        super().__init__()
        self._engine = engine
        self._clock = clock
        self._alerts = tuple(alerts)
        self._stable = list(engine.config.acknowledge.stable_labels)
        self._lines = prefill_lines(self._alerts, self._stable)
        self._clusters = list(engine.clusters)
        self._matchers: list[tuple[Matcher, ...]] = []
        self._matcher_error = ""
        self._duration: float | None = None
        self._preview_keys: list[str] = []

    # -- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        count = len(self._alerts)
        dialog = Vertical(classes="form-dialog", id="silence-dialog")
        dialog.border_title = (
            f"Silence {count} alert{'s' if count != 1 else ''}" if count else "New silence"
        )
        with dialog:
            with Horizontal(classes="form-row"):
                yield Label("Matchers", classes="form-label")
                yield TextArea(
                    "\n".join(self._lines),
                    id="silence-matchers",
                    compact=True,
                    soft_wrap=True,
                    tab_behavior="focus",
                    highlight_cursor_line=False,
                    placeholder='alertname="X", service=~"pay.*"',
                )
            yield Static("", id="silence-matchers-message", classes="form-message")
            with Horizontal(classes="form-row"):
                yield Label("Duration", classes="form-label")
                yield Input(DEFAULT_DURATION, id="silence-duration", compact=True)
                yield Static("", id="silence-ends", classes="form-after")
            if len(self._clusters) > 1:
                with Horizontal(classes="form-row"):
                    yield Label("Cluster", classes="form-label")
                    yield Select[str](
                        self._cluster_options(),
                        value=self._default_cluster(),
                        allow_blank=False,
                        id="silence-cluster",
                        compact=True,
                    )
            with Horizontal(classes="form-row"):
                yield Label("Comment", classes="form-label")
                yield Input("", id="silence-comment", compact=True, placeholder="why (required)")
            yield Static("", id="silence-comment-message", classes="form-message")
            with Horizontal(classes="form-row"):
                yield Label("Created by", classes="form-label")
                yield Static(Text(self._engine.config.actor), id="silence-created-by")
            yield Static("", id="silence-preview-count")
            yield DataTable(id="silence-preview", cursor_type="none", zebra_stripes=False)
            with Horizontal(classes="form-buttons"):
                yield Static("ctrl+s create · esc cancel", classes="form-hint")
                yield Button("Cancel", id="silence-cancel", compact=True)
                yield Button("Create", id="silence-submit", variant="warning", compact=True)

    def _cluster_options(self) -> list[tuple[str, str]]:
        options = [(name, name) for name in self._clusters]
        return [*options, (f"all {len(self._clusters)} clusters", ALL_CLUSTERS)]

    def _default_cluster(self) -> str:
        of_alerts = {alert.cluster for alert in self._alerts if alert.cluster}
        if len(of_alerts) == 1:
            (only,) = of_alerts
            if only in self._clusters:
                return only
        if len(of_alerts) > 1:
            return ALL_CLUSTERS
        return self._clusters[0] if self._clusters else ""

    def on_mount(self) -> None:
        table = self.query_one("#silence-preview", DataTable)
        table.add_column("severity", width=8, key="severity")
        table.add_column("state", width=8, key="state")
        table.add_column("alertname", width=18, key="alertname")
        table.add_column("service", width=16, key="where")
        table.add_column("summary", key="summary")
        for message in self.query(".form-message"):
            message.display = False
        self._revalidate()
        # Most of the time the matchers are right; the comment is what is left to type.
        self.query_one("#silence-comment", Input).focus()

    # -- state ---------------------------------------------------------------------------------

    @property
    def cluster(self) -> str | None:
        """The chosen cluster, or None for every cluster."""
        if len(self._clusters) <= 1:
            return self._clusters[0] if self._clusters else None
        value = self.query_one("#silence-cluster", Select).value
        if value == ALL_CLUSTERS or not isinstance(value, str):
            return None
        return value

    def _target_clusters(self) -> list[str]:
        chosen = self.cluster
        return [chosen] if chosen is not None else list(self._clusters)

    @on(TextArea.Changed, "#silence-matchers")
    @on(Select.Changed, "#silence-cluster")
    def _matchers_changed(self) -> None:
        self._revalidate_matchers()
        self._update_preview()

    @on(Input.Changed, "#silence-duration")
    def _duration_changed(self) -> None:
        self._revalidate_duration()

    @on(Input.Changed, "#silence-comment")
    def _comment_changed(self, event: Input.Changed) -> None:
        if event.value.strip():
            self._set_message("#silence-comment-message", "")

    def _revalidate(self) -> None:
        self._revalidate_matchers()
        self._revalidate_duration()
        self._update_preview()

    def _revalidate_matchers(self) -> None:
        text = self.query_one("#silence-matchers", TextArea).text
        try:
            self._matchers = parse_lines(text)
            self._matcher_error = ""
        except MatcherSyntaxError as exc:
            self._matchers = []
            self._matcher_error = str(exc)
        if self._matcher_error:
            self._set_message("#silence-matchers-message", self._matcher_error, error=True)
            return
        silences = len(self._matchers) * len(self._target_clusters())
        if silences > 1:
            note = f"{silences} silences will be created"
            if len(self._matchers) > 1:
                note += " (one per line)"
            self._set_message("#silence-matchers-message", note)
        else:
            self._set_message("#silence-matchers-message", "")

    def _revalidate_duration(self) -> None:
        text = self.query_one("#silence-duration", Input).value
        ends = self.query_one("#silence-ends", Static)
        try:
            self._duration = parse_duration(text.strip())
        except ValueError:
            self._duration = None
            ends.update(Text("e.g. 30m, 2h, 1d", style="bold red"))
            return
        now = self._clock.now()
        end = now + timedelta(seconds=self._duration)
        ends.update(Text(f"ends {local(end, now)} ({relative(end, now)})"))

    def _set_message(self, selector: str, message: str, *, error: bool = False) -> None:
        widget = self.query_one(selector, Static)
        widget.update(Text(message))
        widget.set_class(error, "-error")
        widget.display = bool(message)

    def matched_alerts(self) -> list[Alert]:
        """Every alert at least one of the silences would match now, each once."""
        seen: dict[str, Alert] = {}
        cluster = self.cluster
        for matchers in self._matchers:
            for alert in self._engine.alerts_matching(matchers, cluster):
                seen.setdefault(alert.key, alert)
        return list(seen.values())

    def _update_preview(self) -> None:
        table = self.query_one("#silence-preview", DataTable)
        count_label = self.query_one("#silence-preview-count", Static)
        if self._matcher_error:
            table.clear()
            self._preview_keys = []
            count_label.update(Text("Preview: fix the matchers to see what they match"))
            return
        alerts = self.matched_alerts()
        already = sum(1 for a in alerts if a.silenced_by)
        noun = "alert" if len(alerts) == 1 else "alerts"
        summary = f"Preview: {len(alerts)} {noun} would be silenced"
        if already:
            summary += f" ({already} already silenced)"
        if not alerts:
            summary = "Preview: matches no alert right now"
        if len(alerts) > PREVIEW_ROWS:
            summary += f"; first {PREVIEW_ROWS} shown"
        count_label.update(Text(summary))
        shown = alerts[:PREVIEW_ROWS]
        keys = [a.key for a in shown]
        if keys == self._preview_keys:
            return
        self._preview_keys = keys
        with self.app.batch_update():
            table.clear()
            for alert in shown:
                where = alert.labels.get("service") or alert.labels.get("instance") or ""
                table.add_row(
                    severity_text(alert.severity),
                    Text(alert.state.value),
                    Text(alert.alertname),
                    Text(where),
                    Text(alert.summary),
                    key=alert.key,
                )

    # -- actions -------------------------------------------------------------------------------

    @on(Input.Submitted)
    def _input_submitted(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#silence-submit")
    def _submit_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_submit()

    @on(Button.Pressed, "#silence-cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def requests(self) -> list[ActionRequest] | None:
        """The requests the form would send now, or None (with the problem shown) if invalid."""
        self._revalidate()
        comment = self.query_one("#silence-comment", Input).value.strip()
        problems: list[str] = []
        if self._matcher_error:
            problems.append("#silence-matchers")
        if self._duration is None:
            problems.append("#silence-duration")
        if not comment:
            self._set_message("#silence-comment-message", "a comment is required", error=True)
            problems.append("#silence-comment")
        if problems:
            self.query_one(problems[0]).focus()
            return None
        assert self._duration is not None
        return [
            ActionRequest(
                "silence.create",
                target="",
                params={
                    "cluster": cluster,
                    "matchers": [str(m) for m in matchers],
                    "duration_seconds": self._duration,
                    "comment": comment,
                },
            )
            for matchers in self._matchers
            for cluster in self._target_clusters()
        ]

    def action_submit(self) -> None:
        requests = self.requests()
        if requests is not None:
            self.dismiss(requests)


class ExtendScreen(ModalScreen[float | None]):
    """Ask by how long to extend silences; dismisses with seconds, or None when cancelled."""

    CSS_PATH = Path(__file__).with_name("forms.tcss")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="form-cancel"),
    ]

    def __init__(self, count: int, *, default: str = DEFAULT_DURATION) -> None:
        super().__init__()
        self._count = count
        self._default = default

    def compose(self) -> ComposeResult:
        dialog = Vertical(classes="form-dialog", id="extend-dialog")
        noun = "silence" if self._count == 1 else "silences"
        dialog.border_title = f"Extend {self._count} {noun}"
        with dialog:
            with Horizontal(classes="form-row"):
                yield Label("Extend by", classes="form-label")
                yield Input(self._default, id="extend-duration", compact=True)
            yield Static("", id="extend-message", classes="form-message")
            with Horizontal(classes="form-buttons"):
                yield Static("enter next · esc cancel", classes="form-hint")
                yield Button("Cancel", id="extend-cancel", compact=True)
                yield Button("Next", id="extend-submit", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#extend-duration", Input).focus()
        self._check(self._default)

    def _check(self, text: str) -> float | None:
        message = self.query_one("#extend-message", Static)
        try:
            seconds = parse_duration(text.strip())
        except ValueError as exc:
            message.update(Text(f"{exc} (e.g. 30m, 2h, 1d)"))
            message.add_class("-error")
            return None
        message.update(Text(f"each silence ends {span_text(seconds)} later"))
        message.remove_class("-error")
        return seconds

    @on(Input.Changed, "#extend-duration")
    def _changed(self, event: Input.Changed) -> None:
        self._check(event.value)

    @on(Input.Submitted, "#extend-duration")
    @on(Button.Pressed, "#extend-submit")
    def _submit(self, event: Input.Submitted | Button.Pressed) -> None:
        event.stop()
        seconds = self._check(self.query_one("#extend-duration", Input).value)
        if seconds is not None:
            self.dismiss(seconds)

    @on(Button.Pressed, "#extend-cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def span_text(seconds: float) -> str:
    return span(timedelta(seconds=seconds))
