"""The Status page view: what customers see on the public page, and the keys that change it.

Two tables, keyed by Statuspage id and updated in place so the cursors stay on the same rows
across refreshes: every component with its status (the public page's word and a colour), and the
incidents (open first, then those resolved in the last day, dimmed) with their latest update,
shown in full under the table for the incident at the cursor. `u` posts an update to that
incident, `N` opens a new one, `c` changes the status of the component at the components cursor;
each goes through a form whose preview is exactly what customers will read, and a confirmation
that starts on Cancel. The incident or component is captured at key press, so a refresh before
the confirmation cannot change what is acted on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import ClassVar, Protocol

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import DataTable, Static

from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.engine import ActionRequest
from oncall_tui.models import Action, ActionStatus, Component, Snapshot, StatusIncident
from oncall_tui.ui.messages import SubmitActions
from oncall_tui.ui.placeholders import not_configured_text
from oncall_tui.ui.silence_rows import clip
from oncall_tui.ui.silences import SilenceTable
from oncall_tui.ui.status_forms import ComponentStatusForm, StatusPostForm
from oncall_tui.ui.status_post import (
    IMPACT_STYLE,
    STATUS_STYLE,
    StatusPost,
    component_text,
    component_word,
    join_names,
    status_word,
)
from oncall_tui.ui.timefmt import local, relative

SOURCE = "statuspage"
_ACTION_GLYPH = {ActionStatus.PENDING: "…", ActionStatus.DONE: "✓", ActionStatus.FAILED: "✗"}
_ACTION_STYLE = {
    ActionStatus.PENDING: "bold yellow",
    ActionStatus.DONE: "bold green",
    ActionStatus.FAILED: "bold red",
}
_INCIDENT_FIXED = 13 + 8 + 9 + 2 * 5  # status, impact, updated columns and cell padding
_COMPONENT_FIXED = 20 + 2 * 3


class StatuspageEngine(Protocol):
    """What the view needs from the engine (the real Engine satisfies it)."""

    config: Config
    read_only: bool


def statuspage_configured(config: Config) -> bool:
    """As the engine decides it: a key and a page to use it on."""
    sp = config.statuspage
    return sp is not None and sp.api_key is not None and bool(sp.page_id)


def templates_of(engine: StatuspageEngine) -> Mapping[str, str]:
    """The engine's templates in effect (configured over its defaults), else the configured."""
    query = getattr(engine, "status_templates", None)
    if callable(query):
        templates = query()
        if isinstance(templates, Mapping):
            return dict(templates)
    sp = engine.config.statuspage
    return dict(sp.templates) if sp is not None else {}


def sort_incidents(incidents: Sequence[StatusIncident]) -> list[StatusIncident]:
    """Open incidents first, most recently updated first; then the resolved ones."""
    return sorted(
        incidents,
        key=lambda i: (i.status == "resolved", -i.updated_at.timestamp(), i.id),
    )


class StatusTable(SilenceTable):
    """A keyed row table with the shared cursor keys and no own `enter`."""


def _differs(old: Text, new: Text) -> bool:
    return (old.plain, str(old.style), old.spans) != (new.plain, str(new.style), new.spans)


def sync_rows(
    table: DataTable[Text],
    old_order: Sequence[str],
    old_cells: Mapping[str, tuple[Text, ...]],
    order: Sequence[str],
    cells: Mapping[str, tuple[Text, ...]],
) -> None:
    """Bring the table from the old rows to the new ones, keeping the cursor on its row key."""
    columns = list(table.columns)
    if list(order) != list(old_order):
        cursor = old_order[table.cursor_row] if 0 <= table.cursor_row < len(old_order) else None
        old_index = table.cursor_row
        table.clear()
        for key in order:
            table.add_row(*cells[key], key=key)
        if cursor is not None and cursor in cells:
            table.move_cursor(row=list(order).index(cursor), animate=False)
        elif order:
            table.move_cursor(row=min(old_index, len(order) - 1), animate=False)
        return
    for key in order:
        old = old_cells.get(key)
        for index, cell in enumerate(cells[key]):
            if old is None or _differs(old[index], cell):
                table.update_cell(key, columns[index], cell)


class StatuspageView(Widget):
    """View 4: the public status page's components and incidents, and posting to it."""

    DEFAULT_CSS = """
    StatuspageView { layout: vertical; height: 1fr; width: 100%; }
    StatuspageView.-unconfigured { align: center middle; }
    StatuspageView > .placeholder-text {
        width: 72; max-width: 100%; height: auto; padding: 1 2;
        border: round $panel-lighten-2;
    }
    StatuspageView > #statuspage-status {
        height: 1; width: 100%; padding: 0 1; color: $text-muted; background: $panel;
    }
    StatuspageView > #statuspage-action {
        height: auto; max-height: 2; width: 100%; padding: 0 1; background: $panel;
    }
    StatuspageView > .statuspage-title {
        height: 1; width: 100%; padding: 0 1; text-style: bold;
    }
    StatuspageView > #statuspage-components { height: auto; max-height: 40%; width: 100%; }
    StatuspageView > #statuspage-incidents { height: 1fr; min-height: 3; width: 100%; }
    StatuspageView > #statuspage-latest {
        height: auto; max-height: 5; width: 100%; padding: 0 1; background: $panel;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "u",
            "update",
            "Post update",
            id="statuspage-update",
            tooltip="Post a public update to the incident at the cursor, after a preview",
        ),
        Binding(
            "c",
            "component",
            "Component status",
            id="statuspage-component",
            tooltip="Change the public status of the component at the cursor",
        ),
        Binding(
            "N",
            "new",
            "New incident",
            id="statuspage-new",
            tooltip="Open a new public incident, after a preview",
        ),
    ]

    def __init__(self, engine: StatuspageEngine, clock: Clock, *, id: str = "statuspage") -> None:
        configured = statuspage_configured(engine.config)
        super().__init__(id=id, classes="" if configured else "-unconfigured")
        self._engine = engine
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._components: dict[str, Component] = {}
        self._incidents: dict[str, StatusIncident] = {}
        self._component_order: list[str] = []
        self._incident_order: list[str] = []
        self._component_cells: dict[str, tuple[Text, ...]] = {}
        self._incident_cells: dict[str, tuple[Text, ...]] = {}
        self._width = 0
        self.last_action: Action | None = None

    @property
    def configured(self) -> bool:
        return statuspage_configured(self._engine.config)

    def compose(self) -> ComposeResult:
        if not self.configured:
            text = not_configured_text("statuspage", self._engine.config)
            yield Static(text, classes="placeholder-text")
            return
        yield Static("", id="statuspage-status")
        yield Static("", id="statuspage-action")
        yield Static("Components", classes="statuspage-title")
        yield StatusTable(id="statuspage-components", cursor_type="row", zebra_stripes=True)
        yield Static("Incidents", classes="statuspage-title")
        yield StatusTable(id="statuspage-incidents", cursor_type="row", zebra_stripes=True)
        yield Static("", id="statuspage-latest")

    def on_mount(self) -> None:
        if not self.configured:
            return
        components = self.components_table
        components.add_column("status", width=20, key="status")
        components.add_column("component", key="name")
        components.add_column("open incident", width=34, key="incident")
        incidents = self.incidents_table
        incidents.add_column("status", width=13, key="status")
        incidents.add_column("impact", width=8, key="impact")
        incidents.add_column("incident", key="name")
        incidents.add_column("updated", width=9, key="updated")
        incidents.add_column("latest update", key="latest")
        self._show_action()
        self._show()

    def on_resize(self) -> None:
        if self.configured and self.size.width != self._width:
            self._width = self.size.width
            # Clipping depends on the width: rebuild every cell.
            self._component_cells, self._incident_cells = {}, {}
            self._show()

    @property
    def components_table(self) -> StatusTable:
        return self.query_one("#statuspage-components", StatusTable)

    @property
    def incidents_table(self) -> StatusTable:
        return self.query_one("#statuspage-incidents", StatusTable)

    # -- data ----------------------------------------------------------------------------------

    def update_snapshot(self, snapshot: Snapshot) -> None:
        """Show a new snapshot, changing only the rows and cells that differ."""
        self._snapshot = snapshot
        if self.is_mounted and self.configured:
            self._show()

    def action_changed(self, action: Action) -> None:
        """A Statuspage action (the operator's or automation's) is pending, done or failed."""
        if not action.kind.startswith("statuspage."):
            return
        self.last_action = action
        if self.is_mounted and self.configured:
            self._show_action()

    def tick(self) -> None:
        """Ages move on with the clock."""
        if self.is_mounted and self.configured and self._snapshot is not None:
            self._show()

    def _show_action(self) -> None:
        widget = self.query_one("#statuspage-action", Static)
        action = self.last_action
        widget.display = action is not None
        if action is None:
            return
        text = Text()
        text.append(
            f"{_ACTION_GLYPH[action.status]} {action.status.value} ",
            style=_ACTION_STYLE[action.status],
        )
        who = f"{action.actor}: " if action.actor == "automation" else ""
        text.append(f"{who}{self._describe(action)}")
        # Done needs no more words; why it failed, or when it retries, does.
        if action.result and action.status != ActionStatus.DONE:
            text.append(f" · {action.result}", style="dim")
        widget.update(text)

    def _describe(self, action: Action) -> str:
        params = action.params
        if action.kind == "statuspage.incident.create":
            return f"open incident {str(params.get('name', ''))!r}"
        if action.kind == "statuspage.incident.update":
            incident = self._incidents.get(action.target)
            name = incident.name if incident is not None else action.target
            return f"{status_word(str(params.get('status') or 'post'))} update to {name!r}"
        if action.kind == "statuspage.component.status":
            component = self._components.get(action.target)
            name = component.name if component is not None else action.target
            return f"set {name} to {component_word(str(params.get('status', '')))}"
        return f"{action.kind} {action.target}".strip()

    def _show(self) -> None:
        snapshot = self._snapshot
        now = self._clock.now()
        components = list(snapshot.components) if snapshot else []
        incidents = sort_incidents(snapshot.status_incidents) if snapshot else []
        self._components = {c.id: c for c in components}
        self._incidents = {i.id: i for i in incidents}
        open_by_component: dict[str, list[str]] = {}
        for incident in incidents:
            if incident.status != "resolved":
                for cid in incident.component_ids:
                    open_by_component.setdefault(cid, []).append(incident.name)
        width = max(self.size.width, 80)
        name_width = max(16, (width - _COMPONENT_FIXED) // 2)
        component_cells: dict[str, tuple[Text, ...]] = {
            c.id: (
                component_text(c.status),
                Text(clip(c.name, name_width)),
                Text(clip(join_names(open_by_component.get(c.id, [])), name_width), style="dim"),
            )
            for c in components
        }
        longest = max((len(i.name) for i in incidents), default=16)
        # The name first: the latest update is shown in full under the table anyway.
        title_width = max(16, min(longest, width - _INCIDENT_FIXED - 12))
        latest_width = max(10, width - _INCIDENT_FIXED - title_width - 2)
        incident_cells = {
            i.id: self._incident_cells_of(i, now, title_width, latest_width) for i in incidents
        }
        component_order = [c.id for c in components]
        incident_order = [i.id for i in incidents]
        with self.app.batch_update():
            sync_rows(
                self.components_table,
                self._component_order,
                self._component_cells,
                component_order,
                component_cells,
            )
            sync_rows(
                self.incidents_table,
                self._incident_order,
                self._incident_cells,
                incident_order,
                incident_cells,
            )
        self._component_order, self._component_cells = component_order, component_cells
        self._incident_order, self._incident_cells = incident_order, incident_cells
        self._update_status(now)
        self._update_latest(now)
        self.refresh_bindings()

    @staticmethod
    def _incident_cells_of(
        incident: StatusIncident, now: datetime, title_width: int, latest_width: int
    ) -> tuple[Text, ...]:
        resolved = incident.status == "resolved"
        dim = "dim" if resolved else ""
        latest = " ".join(incident.latest_update.split())
        return (
            Text(
                status_word(incident.status),
                style="dim" if resolved else STATUS_STYLE.get(incident.status, ""),
            ),
            Text(incident.impact, style=dim or IMPACT_STYLE.get(incident.impact, "")),
            Text(clip(incident.name, title_width), style=dim),
            Text(relative(incident.updated_at, now), style=dim),
            Text(clip(latest, latest_width), style=dim),
        )

    def _update_status(self, now: datetime) -> None:
        snapshot = self._snapshot
        status = self.query_one("#statuspage-status", Static)
        health = snapshot.health_of(SOURCE) if snapshot else None
        if snapshot is None or (health is None and not snapshot.components):
            status.update(Text("Waiting for the first refresh from Statuspage…"))
            return
        open_count = sum(1 for i in self._incidents.values() if i.status != "resolved")
        resolved = len(self._incidents) - open_count
        degraded = sum(1 for c in self._components.values() if c.status != "operational")
        parts = [
            f"{len(self._components)} components",
            f"{degraded} not operational" if degraded else "all operational",
            f"{open_count} open incident{'s' if open_count != 1 else ''}",
        ]
        if resolved:
            parts.append(f"{resolved} resolved in 24h")
        text = Text(" · ".join(parts))
        if health is not None and health.stale_since is not None:
            text.append(
                f" · stale since {local(health.stale_since, now)}"
                f" ({relative(health.stale_since, now)})",
                style="bold yellow",
            )
        elif snapshot.restored:
            text.append(" · restored from the log, not refreshed yet", style="bold yellow")
        status.update(text)

    def _update_latest(self, now: datetime) -> None:
        latest = self.query_one("#statuspage-latest", Static)
        incident = self.cursor_incident
        if incident is None:
            latest.update(Text("No open incident on the public page.", style="dim"))
            return
        names = [self._components[c].name for c in incident.component_ids if c in self._components]
        text = Text()
        text.append(incident.name, style="bold")
        text.append(f" · {status_word(incident.status)}", style=STATUS_STYLE.get(incident.status))
        text.append(f" · updated {local(incident.updated_at, now)}")
        if names:
            text.append(f" · affects {join_names(names)}")
        text.append("\n")
        text.append(incident.latest_update or "(no message)")
        latest.update(text)

    # -- cursor and targets --------------------------------------------------------------------

    @property
    def cursor_incident(self) -> StatusIncident | None:
        if not self.configured or not self.is_mounted:
            return None
        row = self.incidents_table.cursor_row
        if not 0 <= row < len(self._incident_order):
            return None
        return self._incidents[self._incident_order[row]]

    @property
    def cursor_component(self) -> Component | None:
        if not self.configured or not self.is_mounted:
            return None
        row = self.components_table.cursor_row
        if not 0 <= row < len(self._component_order):
            return None
        return self._components[self._component_order[row]]

    @on(DataTable.RowHighlighted)
    def _cursor_moved(self) -> None:
        if self.configured:
            self._update_latest(self._clock.now())
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("update", "component", "new"):
            if self._engine.read_only or not self.configured:
                return False
            if action == "update":
                incident = self.cursor_incident
                # Greyed out on a resolved incident: reopening one is not a key-press decision.
                return True if incident is not None and incident.status != "resolved" else None
            if action == "component":
                return True if self.cursor_component is not None else None
        return True

    # -- actions -------------------------------------------------------------------------------

    def _automation_on(self) -> bool:
        sp = self._engine.config.statuspage
        return sp is not None and sp.automation.enabled and not self._engine.read_only

    def _components_in_order(self) -> list[Component]:
        return [self._components[cid] for cid in self._component_order]

    def _open_incidents(self) -> list[StatusIncident]:
        return [i for i in self._incidents.values() if i.status != "resolved"]

    def action_update(self) -> None:
        if self.check_action("update", ()) is not True:
            return
        incident = self.cursor_incident
        assert incident is not None
        form = StatusPostForm(
            self._components_in_order(),
            incident=incident,
            templates=templates_of(self._engine),
            automation=self._automation_on(),
        )
        self.app.push_screen(form, self._posted)

    def action_new(self) -> None:
        if self.check_action("new", ()) is not True:
            return
        form = StatusPostForm(self._components_in_order(), templates=templates_of(self._engine))
        self.app.push_screen(form, self._posted)

    def _posted(self, post: StatusPost | None) -> None:
        if post is None:
            return
        if post.incident_id is None:
            description = f"Open public incident {post.name!r}"
        else:
            description = f"Post {status_word(post.status)} update to {post.name!r}"
        self.post_message(SubmitActions([post.request()], description))

    def action_component(self) -> None:
        if self.check_action("component", ()) is not True:
            return
        component = self.cursor_component
        assert component is not None

        def done(status: str | None) -> None:
            if status is None:
                return
            request = ActionRequest(
                "statuspage.component.status", target=component.id, params={"status": status}
            )
            description = f"Set {component.name} to {component_word(status)}"
            self.post_message(SubmitActions([request], description))

        self.app.push_screen(ComponentStatusForm(component, self._open_incidents()), done)
