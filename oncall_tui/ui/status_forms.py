"""The Statuspage forms: post an update, open an incident, change one component's status.

What these send is read by customers, so nothing may surprise the operator: the preview and the
request are built from one `StatusPost`, the message is shown as it will be sent (a template is
rendered into the message box when chosen, not at send time), a placeholder left unfilled stops
the form, and the confirmation repeats the preview with Cancel focused. A component already
affected by an incident cannot be set to "not affected": Statuspage keeps it on the incident, so
offering that would preview something customers would not see. The forms only return what was
chosen; the view turns it into action requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from oncall_tui.models import Component, StatusIncident
from oncall_tui.ui.confirm import ConfirmScreen
from oncall_tui.ui.status_post import (
    COMPONENT_STATUSES,
    IMPACTS,
    INCIDENT_STATUSES,
    MAX_BODY,
    MAX_NAME,
    NOT_AFFECTED,
    StatusPost,
    component_text,
    component_word,
    derived_impact,
    join_names,
    preview_lines,
    preview_text,
    render_template,
    status_word,
    unfilled,
)

FORM_CSS: list[str | PurePath] = [
    Path(__file__).with_name("forms.tcss"),
    Path(__file__).with_name("statuspage.tcss"),
]


class StatusPostForm(ModalScreen[StatusPost | None]):
    """Post an update to an incident, or open one; dismisses with the confirmed post or None."""

    CSS_PATH = FORM_CSS

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="form-cancel"),
        Binding("ctrl+s", "submit", "Preview", id="form-submit", priority=True),
    ]

    def __init__(
        self,
        components: Sequence[Component],
        *,
        incident: StatusIncident | None = None,
        templates: Mapping[str, str] | None = None,
        automation: bool = False,
    ) -> None:
        super().__init__()
        self._automation = automation  # whether automation runs (and may own this incident)
        self._components = list(components)
        self._by_id = {c.id: c for c in self._components}
        self._incident = incident
        # `title` names an incident; the others are messages.
        self._templates = {k: v for k, v in (templates or {}).items() if k != "title"}
        self._impact_chosen = False

    # -- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        incident = self._incident
        dialog = Vertical(classes="form-dialog", id="sp-post-dialog")
        dialog.border_title = "New public incident" if incident is None else "Post a public update"
        with dialog:
            with Horizontal(classes="form-row"):
                yield Label("Incident", classes="form-label")
                if incident is None:
                    yield Input(
                        "",
                        id="sp-name",
                        compact=True,
                        max_length=MAX_NAME,
                        placeholder="what customers see as the title",
                    )
                else:
                    yield Static(Text(incident.name), id="sp-name-fixed")
            yield Static("", id="sp-name-message", classes="form-message")
            with Horizontal(classes="form-row"):
                yield Label("Status", classes="form-label")
                yield Select[str](
                    [(status_word(s), s) for s in self._statuses()],
                    value=self._default_status(),
                    allow_blank=False,
                    id="sp-status",
                    compact=True,
                )
                if incident is None:
                    yield Label("Impact", classes="form-label sp-impact-label")
                    yield Select[str](
                        [(i, i) for i in IMPACTS],
                        value="none",
                        allow_blank=False,
                        id="sp-impact",
                        compact=True,
                    )
            if self._templates:
                with Horizontal(classes="form-row"):
                    yield Label("Template", classes="form-label")
                    yield Select[str](
                        [(name, name) for name in self._templates],
                        prompt="none: type the message",
                        id="sp-template",
                        compact=True,
                    )
            with Horizontal(classes="form-row"):
                yield Label("Message", classes="form-label")
                yield TextArea(
                    "",
                    id="sp-body",
                    compact=True,
                    soft_wrap=True,
                    tab_behavior="focus",
                    highlight_cursor_line=False,
                    placeholder="what customers should know (required)",
                )
            yield Static("", id="sp-body-message", classes="form-message")
            with VerticalScroll(id="sp-components", can_focus=False):
                for index, component in enumerate(self._components):
                    with Horizontal(classes="form-row sp-component-row"):
                        label = "Components" if index == 0 else ""
                        yield Label(label, classes="form-label")
                        yield Label(Text(component.name), classes="sp-component-name")
                        yield Select[str](
                            self._component_options(component),
                            value=self._default_component(component),
                            allow_blank=False,
                            id=f"sp-component-{index}",
                            compact=True,
                        )
            yield Static("", id="sp-components-message", classes="form-message")
            yield Static("Customers will see:", id="sp-preview-title")
            with VerticalScroll(id="sp-preview-scroll", can_focus=False):
                yield Static("", id="sp-preview")
            with Horizontal(classes="form-buttons"):
                yield Static("ctrl+s review · esc cancel", classes="form-hint")
                yield Button("Cancel", id="sp-cancel", compact=True)
                label = "Post update" if incident is not None else "Open incident"
                yield Button(f"{label}…", id="sp-submit", variant="warning", compact=True)

    def _statuses(self) -> tuple[str, ...]:
        # Statuspage refuses to open an incident that is already resolved.
        return INCIDENT_STATUSES if self._incident is not None else INCIDENT_STATUSES[:-1]

    def _default_status(self) -> str:
        if self._incident is None or self._incident.status not in INCIDENT_STATUSES:
            return "investigating"
        return self._incident.status

    def _affected(self, component: Component) -> bool:
        return self._incident is not None and component.id in self._incident.component_ids

    def _component_options(self, component: Component) -> list[tuple[str, str]]:
        options = [(component_word(s), s) for s in COMPONENT_STATUSES]
        if self._affected(component):
            return options
        return [("not affected", NOT_AFFECTED), *options]

    def _default_component(self, component: Component) -> str:
        if self._affected(component) and component.status in COMPONENT_STATUSES:
            return component.status
        return NOT_AFFECTED if not self._affected(component) else "operational"

    def on_mount(self) -> None:
        for message in self.query(".form-message"):
            message.display = False
        self.refresh_preview()
        first = "#sp-name" if self._incident is None else "#sp-body"
        self.query_one(first).focus()

    # -- state ---------------------------------------------------------------------------------

    def _value(self, selector: str) -> str:
        value = self.query_one(selector, Select).value
        return value if isinstance(value, str) else ""

    def chosen_components(self) -> tuple[tuple[str, str], ...]:
        chosen: list[tuple[str, str]] = []
        for index, component in enumerate(self._components):
            status = self._value(f"#sp-component-{index}")
            if status and status != NOT_AFFECTED:
                chosen.append((component.id, status))
        return tuple(chosen)

    def post(self) -> StatusPost:
        """The post as the form has it now (not validated)."""
        incident = self._incident
        components = self.chosen_components()
        if incident is None:
            name = self.query_one("#sp-name", Input).value.strip()
            impact: str | None = self._value("#sp-impact")
        else:
            name, impact = incident.name, None
        return StatusPost(
            incident_id=incident.id if incident is not None else None,
            name=name,
            status=self._value("#sp-status"),
            # Sent stripped, so the preview and the page agree on every character.
            body=self.query_one("#sp-body", TextArea).text.strip(),
            components=components,
            impact=impact,
            kept=tuple(
                cid
                for cid in (incident.component_ids if incident else ())
                if cid not in self._by_id
            ),
        )

    def problems(self, post: StatusPost) -> list[tuple[str, str]]:
        """(widget selector, what is wrong) for everything that stops the post."""
        found: list[tuple[str, str]] = []
        if self._incident is None and not post.name:
            found.append(("#sp-name", "an incident needs a name"))
        if not post.body:
            found.append(("#sp-body", "a message is required: customers read it"))
        elif len(post.body) > MAX_BODY:
            found.append(("#sp-body", f"the message is longer than {MAX_BODY} characters"))
        elif left := unfilled(post.body):
            found.append(("#sp-body", f"fill in {', '.join(left)}: customers would read it as is"))
        return found

    def refresh_preview(self) -> None:
        post = self.post()
        self.query_one("#sp-preview", Static).update(preview_text(post, self._by_id))
        still = [
            self._by_id[cid].name
            for cid, status in post.components
            if status != "operational" and cid in self._by_id
        ]
        note = ""
        if post.status == "resolved" and still:
            note = f"still shown as not operational after resolving: {join_names(still)}"
        self._set_message("#sp-components-message", note)

    def _set_message(self, selector: str, message: str, *, error: bool = False) -> None:
        widget = self.query_one(selector, Static)
        widget.update(Text(message))
        widget.set_class(error, "-error")
        widget.display = bool(message)

    @on(Input.Changed, "#sp-name")
    def _name_changed(self) -> None:
        self._set_message("#sp-name-message", "")
        self.refresh_preview()

    @on(TextArea.Changed, "#sp-body")
    def _body_changed(self) -> None:
        self._set_message("#sp-body-message", "")
        self.refresh_preview()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        select_id = event.select.id or ""
        if select_id == "sp-template":
            self._apply_template()
        elif select_id == "sp-impact":
            self._impact_chosen = self._impact_chosen or event.value != self._auto_impact()
        elif select_id == "sp-status" and event.value == "resolved":
            # Resolving puts the affected components back, unless the operator says otherwise.
            for index, component in enumerate(self._components):
                if self._affected(component):
                    self.query_one(f"#sp-component-{index}", Select).value = "operational"
        if select_id.startswith("sp-component-") and self._incident is None:
            self._follow_impact()
        self.refresh_preview()

    def _auto_impact(self) -> str:
        return derived_impact([s for _, s in self.chosen_components()])

    def _follow_impact(self) -> None:
        # Until the operator picks an impact, it follows the components, as the vendor's does.
        if not self._impact_chosen:
            with self.prevent(Select.Changed):
                self.query_one("#sp-impact", Select).value = self._auto_impact()

    def _apply_template(self) -> None:
        name = self._value("#sp-template")
        if name not in self._templates:
            return
        post = self.post()
        names = [self._by_id[cid].name for cid, _ in post.components if cid in self._by_id]
        # The engine's automation fills the same `{component}`; its alert placeholders
        # (`{count}`, `{started}`, `{label}`) mean nothing here and are left for the operator.
        values = {"component": join_names(names)} if names else {}
        body = self.query_one("#sp-body", TextArea)
        body.text = render_template(self._templates[name], values)
        body.focus()

    # -- actions -------------------------------------------------------------------------------

    @on(Button.Pressed, "#sp-submit")
    def _submit_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_submit()

    @on(Button.Pressed, "#sp-cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    @on(Input.Submitted)
    def _input_submitted(self) -> None:
        self.query_one("#sp-body", TextArea).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        post = self.post()
        problems = self.problems(post)
        if problems:
            for selector, problem in problems:
                self._set_message(f"{selector}-message", problem, error=True)
            self.query_one(problems[0][0]).focus()
            return
        # deliver_notifications is left at the vendor's default (true) by the engine.
        notes = ["", "Statuspage notifies the page's subscribers."]
        if self._automation and post.incident_id is not None:
            # Automation resolves only what no operator has edited since it opened it.
            notes.append("If automation opened this incident, resolving it is yours from now on.")
        body = "\n".join([*preview_lines(post, self._by_id), *notes])
        if post.incident_id is None:
            title = "Open this incident on the public status page?"
            label = "Open incident"
        else:
            title = "Post this update on the public status page?"
            label = "Post update"

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.dismiss(post)

        self.app.push_screen(ConfirmScreen(title, body, confirm_label=label), done)


class ComponentStatusForm(ModalScreen[str | None]):
    """Choose one component's new status; dismisses with it after the confirmation, or None."""

    CSS_PATH = FORM_CSS

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="form-cancel"),
        Binding("ctrl+s", "submit", "Review", id="form-submit", priority=True),
    ]

    def __init__(self, component: Component, incidents: Sequence[StatusIncident] = ()) -> None:
        super().__init__()
        self._component = component
        self._incidents = [i for i in incidents if component.id in i.component_ids]

    def compose(self) -> ComposeResult:
        component = self._component
        dialog = Vertical(classes="form-dialog", id="sp-component-dialog")
        dialog.border_title = "Change a component's status"
        with dialog:
            with Horizontal(classes="form-row"):
                yield Label("Component", classes="form-label")
                yield Static(Text(component.name), id="sp-component-name")
            with Horizontal(classes="form-row"):
                yield Label("Now", classes="form-label")
                yield Static(component_text(component.status), id="sp-component-now")
            with Horizontal(classes="form-row"):
                yield Label("New status", classes="form-label")
                yield Select[str](
                    [(component_word(s), s) for s in COMPONENT_STATUSES],
                    value=self._default(),
                    allow_blank=False,
                    id="sp-component-status",
                    compact=True,
                )
            yield Static("", id="sp-component-preview", classes="form-message")
            with Horizontal(classes="form-buttons"):
                yield Static("ctrl+s review · esc cancel", classes="form-hint")
                yield Button("Cancel", id="sp-component-cancel", compact=True)
                yield Button("Change…", id="sp-component-submit", variant="warning", compact=True)

    def _default(self) -> str:
        # The current status is never the default: "change" with nothing changed is a no-op.
        return "operational" if self._component.status != "operational" else "degraded_performance"

    def on_mount(self) -> None:
        self.query_one("#sp-component-status", Select).focus()
        self._update_preview()

    @property
    def status(self) -> str:
        value = self.query_one("#sp-component-status", Select).value
        return value if isinstance(value, str) else ""

    def preview(self) -> str:
        component, status = self._component, self.status
        if status == component.status:
            return f"{component.name} is already {component_word(status)}: nothing changes."
        text = (
            f"Customers will see {component.name} as {component_word(status)}"
            f" (now {component_word(component.status)}). No incident is posted."
        )
        if self._incidents:
            names = join_names([f'"{i.name}"' for i in self._incidents])
            text += f"\nIt is affected by the open incident {names}."
        return text

    def _update_preview(self) -> None:
        widget = self.query_one("#sp-component-preview", Static)
        widget.update(Text(self.preview()))

    @on(Select.Changed, "#sp-component-status")
    def _changed(self) -> None:
        self._update_preview()

    @on(Button.Pressed, "#sp-component-submit")
    def _submit_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_submit()

    @on(Button.Pressed, "#sp-component-cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        status = self.status
        if status == self._component.status:
            return
        title = f"Set {self._component.name} to {component_word(status)}?"

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.dismiss(status)

        self.app.push_screen(
            ConfirmScreen(title, self.preview(), confirm_label="Change status"), done
        )
