"""Every action the operator can take, read from the live bindings: the palette and help use it.

There is no second list to keep in step: the catalogue walks the app and the views, applies the
user's keymap (`keys:` in the config) exactly as Textual does, and asks each node's
`check_action` whether the action is available (read-only mode hides changing actions).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.actions import parse
from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode
from textual.widget import Widget


@dataclass(frozen=True, slots=True)
class Command:
    section: str
    keys: tuple[str, ...]
    description: str
    help: str
    action: str
    node: DOMNode
    enabled: bool
    binding_id: str

    @property
    def key_text(self) -> str:
        return ", ".join(self.keys)


def _state(node: DOMNode, action: str) -> bool | None:
    _namespace, name, params = parse(action)
    return node.check_action(name, params)


def _own_nodes(root: Widget) -> Iterator[Widget]:
    """The view and the widgets it is made of that are ours (not Textual's inputs and lists)."""
    for node in root.walk_children(with_self=True):
        if isinstance(node, Widget) and type(node).__module__.startswith("oncall_tui."):
            yield node


def node_commands(app: App[Any], node: DOMNode, section: str) -> list[Command]:
    """The node's bindings as the user has them (keymap applied), one entry per action."""
    bindings = node._bindings.copy()
    keymap = app._keymap
    if keymap:
        bindings.apply_keymap(keymap)
    grouped: dict[str, list[Binding]] = {}
    for _key, binding in bindings:
        if binding.system or not binding.description:
            continue
        grouped.setdefault(binding.id or binding.action, []).append(binding)
    found: list[Command] = []
    for ident, group in grouped.items():
        # The binding with an id is ours; Textual's own (ctrl+q) may share its action.
        group.sort(key=lambda b: b.id is None)
        first = group[0]
        state = _state(node, first.action)
        if state is False:
            continue
        keys = tuple(dict.fromkeys(app.get_key_display(b) for b in group))
        found.append(
            Command(
                section=section,
                keys=keys,
                description=first.description,
                help=first.tooltip or first.description,
                action=first.action,
                node=node,
                enabled=state is True,
                binding_id=ident,
            )
        )
    return found


def catalogue(app: App[Any], views: Iterable[tuple[str, Widget]]) -> list[Command]:
    """Global commands, then each view's (the current view first, as `views` gives them)."""
    commands = node_commands(app, app, "Global")
    for section, view in views:
        for node in _own_nodes(view):
            commands.extend(node_commands(app, node, section))
    return commands


class OperatorCommands(Provider):
    """The command palette: every action available here, with its key."""

    def _commands(self) -> list[Command]:
        app = self.app
        views_of = getattr(app, "views_for_catalogue", None)
        views = views_of()[:1] if views_of is not None else []
        return [c for c in catalogue(app, views) if c.enabled and c.action != "command_palette"]

    def _run(self, command: Command) -> None:
        self.app.call_later(self.app.run_action, command.action, command.node)

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(
                f"{command.section}: {command.help}",
                partial(self._run, command),
                help=f"key: {command.key_text}",
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            text = f"{command.section}: {command.help}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(text),
                    partial(self._run, command),
                    text=text,
                    help=f"key: {command.key_text}",
                )
