"""Where Alertmanager will send a label set, and how many of its notifications failed.

Both are read from Alertmanager itself (its running configuration from `/api/v2/status` and its
`/metrics`), so a trace can say which route and receivers a test alert takes and, when a stage
does not happen, whether the receiver is failing or has no integration key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from oncall_tui.engine.correlation import Route, RouteConfigError, parse_route_tree

# Receiver integrations that reach a person or a page (a webhook alone reaches only us).
PAGING = ("pagerduty_configs", "opsgenie_configs", "email_configs", "slack_configs")
_FAILED = re.compile(
    r'^alertmanager_notification_requests_failed_total\{integration="(\w+)"\}\s+([0-9.e+]+)',
    re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class Routing:
    """Where Alertmanager's configuration sends a label set."""

    routes: tuple[Route, ...]
    receivers: tuple[str, ...]
    integrations: frozenset[str]  # e.g. {"pagerduty_configs", "webhook_configs"}
    pagerduty_keyed: bool  # every pagerduty_config has a routing or service key
    only_root: bool
    group_keys: tuple[str, ...]  # the group keys Alertmanager will form for the label set


def routing_of(config_yaml: str, labels: Mapping[str, str]) -> Routing:
    """The routes, receivers and integrations of `labels`. Raises RouteConfigError."""
    root = parse_route_tree(config_yaml)
    routes = root.match(labels)
    document = yaml.safe_load(config_yaml)
    if not isinstance(document, Mapping):
        raise RouteConfigError("not a configuration")
    by_name: dict[str, Mapping[str, Any]] = {
        str(r.get("name")): r for r in document.get("receivers") or [] if isinstance(r, Mapping)
    }
    names = tuple(dict.fromkeys(r.receiver for r in routes))
    integrations: set[str] = set()
    keyed = True
    for name in names:
        receiver = by_name.get(name, {})
        integrations.update(k for k, v in receiver.items() if k.endswith("_configs") and v)
        for pd in receiver.get("pagerduty_configs") or []:
            # The running config shows a set key as "<secret>"; an unset one is empty.
            if not (pd.get("routing_key") or pd.get("service_key")):
                keyed = False
    return Routing(
        routes=tuple(routes),
        receivers=names,
        integrations=frozenset(integrations),
        pagerduty_keyed=keyed,
        only_root=routes == [root],
        group_keys=tuple(dict.fromkeys(r.template.key_for(labels) for r in routes)),
    )


def failed_requests(metrics_text: str) -> dict[str, float]:
    """integration -> Alertmanager's count of failed notification requests."""
    return {m.group(1): float(m.group(2)) for m in _FAILED.finditer(metrics_text)}
