"""Follows one fired test alert through every configured stage of the pipeline (issue 6).

Detect -> notify -> escalate -> communicate, each stage with the time it was seen and its
latency since the alert was fired:

1. accepted   - every Alertmanager peer shows the alert (GET /api/v2/alerts, by its trace label);
2. routed     - the routes and receivers its labels take, from the peer's running configuration
                (`/api/v2/status` `config.original`, the routing tree of engine/correlation.py);
3. notified   - our webhook listener logged a notification of its group (the group key);
4. pagerduty  - an incident whose `incident_key` is sha256(group key) (DESIGN.md section 6);
5. paged      - who that incident is assigned to;
6. opsgenie   - the alert whose alias is sha256(group key);
7. statuspage - the automation's public incident for the alert's component.

A stage is expected only when the routing (or the automation rules) say it should happen; one
that does not happen before the deadline is reported broken with the likely cause, read from
Alertmanager itself where it can be: no route matched, a receiver failing (Alertmanager's
`alertmanager_notification_requests_failed_total` grew), no integration key, automation
disabled or the component not mapped.

The alert carries a unique `trace_id` label, so this alert (not another of its group) is followed.
Network errors while watching are remembered as the stage's cause, never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import httpx

from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.engine.correlation import RouteConfigError, group_dedup_key
from oncall_tui.engine.trace_result import (
    BROKEN,
    OK,
    SKIPPED,
    STAGES,
    WAITING,
    Stage,
    Trace,
    new_trace_id,
)
from oncall_tui.engine.trace_routing import PAGING, Routing, failed_requests, routing_of
from oncall_tui.matchers import matches_all
from oncall_tui.models import Incident, Matcher
from oncall_tui.providers.alertmanager import AlertmanagerAuth, AlertmanagerClient, PostableAlert
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.http import make_http_client
from oncall_tui.providers.opsgenie import OpsgenieClient
from oncall_tui.providers.pagerduty import PagerDutyClient
from oncall_tui.providers.statuspage import StatuspageClient
from oncall_tui.timeline import LogReader

TRACE_LABEL = "trace_id"
POLL_INTERVAL = 0.25
JOIN_SLACK = 2.0


class Tracer:
    """Fires one test alert and watches every stage until all are settled or the deadline."""

    def __init__(
        self,
        config: Config,
        *,
        http: httpx.AsyncClient,
        clock: Clock,
        log: LogReader | None,
        on_update: Callable[[Trace], None] | None = None,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.config = config
        self._http = http
        self._clock = clock
        self._log = log
        self._on_update = on_update
        self._poll = poll_interval
        self._peers = [
            AlertmanagerClient(
                am.name, am.url, http, clock=clock, cluster=am.cluster_name, auth=am.auth
            )
            for am in config.alertmanagers
        ]
        self._auth = {am.name: AlertmanagerAuth.from_config(am.auth) for am in config.alertmanagers}
        self._routing: Routing | None = None
        self._failed_before: dict[str, float] = {}
        self._incident: Incident | None = None
        self._errors: dict[str, str] = {}
        self._am_receivers: tuple[str, ...] = ()

    # -- the run -----------------------------------------------------------------------------

    async def run(
        self, labels: Mapping[str, str], annotations: Mapping[str, str], *, within: float
    ) -> Trace:
        trace_id = new_trace_id()
        labels = {**labels, TRACE_LABEL: trace_id}
        self._failed_before = await self._failed_counts()
        await self._learn_routing(labels)
        fired_at = self._clock.now()
        trace = Trace(trace_id, labels, fired_at, tuple(Stage(n) for n in STAGES))
        trace = self._settle_expectations(trace)
        sent = 0
        for peer in self._peers:
            try:
                await peer.post_alerts(
                    [PostableAlert(dict(labels), dict(annotations), starts_at=fired_at)]
                )
                sent += 1
            except ProviderError as exc:
                self._errors["accepted"] = f"{peer.name}: {exc.message}"
        if not sent:
            trace = self._set(trace, "accepted", BROKEN, cause=self._errors["accepted"])
            return await self._finish(trace)
        self._emit(trace)
        deadline = self._clock.monotonic() + within
        while any(s.status == WAITING for s in trace.stages):
            trace = await self._observe(trace)
            if self._clock.monotonic() >= deadline or not any(
                s.status == WAITING for s in trace.stages
            ):
                break
            await self._clock.sleep(self._poll)
        return await self._finish(trace)

    async def _finish(self, trace: Trace) -> Trace:
        waiting = [s.name for s in trace.stages if s.status == WAITING]
        if waiting:
            failed = await self._failed_counts()
            for name in waiting:
                trace = self._set(trace, name, BROKEN, cause=self._cause(name, trace, failed))
        trace = replace(trace, finished=True)
        self._emit(trace)
        return trace

    def _emit(self, trace: Trace) -> None:
        if self._on_update is not None:
            self._on_update(trace)

    def _set(self, trace: Trace, name: str, status: str, **changes: Any) -> Trace:
        stages = []
        for stage in trace.stages:
            if stage.name == name:
                at = changes.get("at")
                latency = (at - trace.fired_at).total_seconds() if at is not None else None
                stage = replace(stage, status=status, latency=latency, **changes)
            stages.append(stage)
        return replace(trace, stages=tuple(stages))

    # -- what should happen ------------------------------------------------------------------

    async def _learn_routing(self, labels: Mapping[str, str]) -> None:
        for peer in self._peers:
            try:
                status = await peer.status()
                self._routing = routing_of(status.config_yaml, labels)
                return
            except (ProviderError, RouteConfigError, AttributeError) as exc:
                self._errors["routed"] = f"{peer.name}: {exc}"

    def _settle_expectations(self, trace: Trace) -> Trace:
        """Mark the stages that are not expected for this alert as skipped, saying why."""
        routing = self._routing
        integrations = routing.integrations if routing else frozenset()

        def skip(name: str, why: str) -> None:
            nonlocal trace
            trace = self._set(trace, name, SKIPPED, detail=why)

        if routing is not None and "webhook_configs" not in integrations:
            skip("notified", f"receivers {', '.join(routing.receivers)} have no webhook to us")
        elif not self.config.webhooks.enabled or self._log is None:
            skip("notified", "webhook listener not enabled")
        if routing is None:
            unknown = "not checked: Alertmanager's routing could not be read"
            for name in ("pagerduty", "paged", "opsgenie"):
                skip(name, unknown)
        elif "pagerduty_configs" not in integrations:
            skip("pagerduty", "not routed to PagerDuty")
            skip("paged", "not routed to PagerDuty")
        elif self.config.pagerduty is None or self.config.pagerduty.api_token is None:
            skip("pagerduty", "routed to PagerDuty; no pagerduty.api_token to check it")
            skip("paged", "no pagerduty.api_token")
        if routing is not None and "opsgenie_configs" not in integrations:
            skip("opsgenie", "not routed to Opsgenie")
        elif routing is not None and (
            self.config.opsgenie is None or self.config.opsgenie.api_key is None
        ):
            skip("opsgenie", "routed to Opsgenie; no opsgenie.api_key to check it")
        why_not = self._statuspage_reason(trace.labels)
        if why_not:
            skip("statuspage", why_not)
        return trace

    def _statuspage_reason(self, labels: Mapping[str, str]) -> str:
        sp = self.config.statuspage
        if sp is None or sp.api_key is None or not sp.page_id:
            return "Statuspage not configured"
        rules = sp.automation
        if not rules.enabled:
            return "automation disabled (statuspage.automation.enabled)"
        wanted = [Matcher(k, v) for k, v in rules.match.items()]
        if not matches_all(wanted, labels):
            shown = ", ".join(f"{k}={v}" for k, v in rules.match.items())
            return f"alert does not match automation.match ({shown})"
        value = labels.get(rules.component_label, "")
        if value not in sp.components:
            return f"component not mapped: {rules.component_label}={value!r} not in components"
        return ""

    # -- watching ----------------------------------------------------------------------------

    async def _observe(self, trace: Trace) -> Trace:
        waiting = {s.name for s in trace.stages if s.status == WAITING}
        if "accepted" in waiting:
            trace = await self._watch_accepted(trace)
        if "routed" in waiting:
            trace = self._watch_routed(trace)
        if "notified" in waiting:
            trace = await self._watch_notified(trace)
        if waiting & {"pagerduty", "paged"}:
            trace = await self._watch_pagerduty(trace)
        if "opsgenie" in waiting:
            trace = await self._watch_opsgenie(trace)
        if "statuspage" in waiting:
            trace = await self._watch_statuspage(trace)
        if {s.name for s in trace.stages if s.status == WAITING} != waiting:
            self._emit(trace)
        return trace

    async def _watch_accepted(self, trace: Trace) -> Trace:
        seen = 0
        receivers: set[str] = set()
        received: list[datetime] = []
        for peer in self._peers:
            try:
                found = await peer.alerts(filters=[Matcher(TRACE_LABEL, trace.trace_id)])
            except ProviderError as exc:
                self._errors["accepted"] = f"{peer.name}: {exc.message}"
                continue
            if found:
                seen += 1
                receivers.update(found[0].receivers)
                received.append(found[0].updated_at)
        if seen < len(self._peers):
            return trace
        detail = f"{seen} of {len(self._peers)} peers; receivers {', '.join(sorted(receivers))}"
        self._am_receivers = tuple(sorted(receivers))
        now = self._clock.now()
        # Alertmanager's updatedAt is when it took the alert; our poll only sees it later.
        at = max(received)
        at = at if trace.fired_at <= at <= now else now
        return self._set(trace, "accepted", OK, at=at, detail=detail)

    def _watch_routed(self, trace: Trace) -> Trace:
        if trace.stage("accepted").status != OK:
            return trace
        at = trace.stage("accepted").at
        routing = self._routing
        if routing is None:
            shown = ", ".join(self._am_receivers) or "none"
            return self._set(
                trace, "routed", OK, at=at, detail=f"receivers {shown} (routing tree unreadable)"
            )
        paging = self.config.pagerduty is not None or self.config.opsgenie is not None
        if routing.only_root and paging and not routing.integrations & set(PAGING):
            return self._set(
                trace,
                "routed",
                BROKEN,
                cause=f"no route matched: only the root route's receiver "
                f"{routing.receivers[0]!r}, which pages nobody",
            )
        keys = " ".join(r.key for r in routing.routes)
        detail = f"route {keys} -> {', '.join(routing.receivers)}"
        return self._set(trace, "routed", OK, at=at, detail=detail)

    async def _watch_notified(self, trace: Trace) -> Trace:
        assert self._log is not None
        entries = await self._log.entries(
            since=trace.fired_at, sources=["alertmanager"], kinds=["webhook"], newest_first=False
        )
        for entry in entries:
            for alert in entry.data.get("alerts") or []:
                labels = alert.get("labels") if isinstance(alert, Mapping) else None
                if isinstance(labels, Mapping) and labels.get(TRACE_LABEL) == trace.trace_id:
                    group_key = str(entry.data.get("group_key") or "")
                    trace = replace(trace, group_key=group_key)
                    detail = f"receiver {entry.data.get('receiver', '?')}, group {group_key}"
                    return self._set(trace, "notified", OK, at=entry.at, detail=detail)
        return trace

    def _dedup_keys(self, trace: Trace) -> set[str]:
        keys = {trace.dedup_key} if trace.dedup_key else set()
        if self._routing is not None:
            keys.update(group_dedup_key(k) for k in self._routing.group_keys)
        return keys

    async def _watch_pagerduty(self, trace: Trace) -> Trace:
        pd = self.config.pagerduty
        assert pd is not None
        assert pd.api_token is not None
        if self._incident is None:
            client = PagerDutyClient(
                pd.api_url, pd.api_token.get_secret_value(), self._http, clock=self._clock
            )
            try:
                incidents = await client.incidents(statuses=("triggered", "acknowledged"))
            except ProviderError as exc:
                self._errors["pagerduty"] = f"PagerDuty: {exc.message}"
                return trace
            wanted = self._dedup_keys(trace)
            found = [i for i in incidents if i.dedup_key in wanted]
            if not found:
                return trace
            self._incident = found[0]
            now = self._clock.now()
            created = self._incident.created_at
            # Vendors keep whole seconds: only an incident clearly older than the alert was
            # already open (the alert joined it without a new page).
            joined = (trace.fired_at - created).total_seconds() > JOIN_SLACK
            # A whole-second creation time older than the alert says only "by now".
            first_seen = created if trace.fired_at <= created <= now else now
            number = f"#{self._incident.number}" if self._incident.number else self._incident.id
            what = "joined open incident" if joined else "incident"
            detail = f"{what} {number} {self._incident.status} on {self._incident.service}"
            trace = self._set(trace, "pagerduty", OK, at=first_seen, detail=detail)
        incident = self._incident
        at = trace.stage("pagerduty").at
        if incident.assignee and at is not None:
            policy = f" ({incident.escalation_policy})" if incident.escalation_policy else ""
            return self._set(trace, "paged", OK, at=at, detail=f"{incident.assignee}{policy}")
        return trace

    async def _watch_opsgenie(self, trace: Trace) -> Trace:
        og = self.config.opsgenie
        assert og is not None
        assert og.api_key is not None
        client = OpsgenieClient(
            og.api_url, og.api_key.get_secret_value(), self._http, clock=self._clock
        )
        for alias in self._dedup_keys(trace):
            try:
                alert = await client.alert(alias, "alias")
            except ProviderError as exc:
                if exc.status != 404:
                    self._errors["opsgenie"] = f"Opsgenie: {exc.message}"
                continue
            at = max(trace.fired_at, min(alert.created_at, self._clock.now()))
            number = f"#{alert.number}" if alert.number else alert.id
            detail = f"alert {number} {alert.status}, alias {alias[:12]}..."
            return self._set(trace, "opsgenie", OK, at=at, detail=detail)
        return trace

    async def _watch_statuspage(self, trace: Trace) -> Trace:
        sp = self.config.statuspage
        assert sp is not None
        assert sp.api_key is not None
        component = sp.components[trace.labels[sp.automation.component_label]]
        client = StatuspageClient(
            sp.api_url, sp.page_id, sp.api_key.get_secret_value(), self._http, clock=self._clock
        )
        try:
            open_incidents = await client.unresolved_incidents()
        except ProviderError as exc:
            self._errors["statuspage"] = f"Statuspage: {exc.message}"
            return trace
        for incident in open_incidents:
            if component in incident.component_ids:
                detail = f"{incident.name!r} {incident.status} ({incident.impact})"
                return self._set(trace, "statuspage", OK, at=self._clock.now(), detail=detail)
        return trace

    # -- why it did not happen ---------------------------------------------------------------

    async def _failed_counts(self) -> dict[str, float]:
        for peer in self._peers:
            auth = self._auth.get(peer.name)
            headers = auth.headers() if auth is not None else {}
            try:
                response = await self._http.get(f"{peer.url}/metrics", headers=headers, timeout=5)
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                return failed_requests(response.text)
        return {}

    def _cause(self, name: str, trace: Trace, failed: Mapping[str, float]) -> str:
        def grew(integration: str) -> float:
            return failed.get(integration, 0.0) - self._failed_before.get(integration, 0.0)

        error = self._errors.get(name, "")
        if name == "accepted":
            return error or "Alertmanager does not show the alert"
        if name == "routed":
            return error or "Alertmanager did not accept the alert"
        if name == "notified":
            if grew("webhook") > 0:
                return f"receiver error: {grew('webhook'):.0f} failed webhook requests"
            return "no notification reached the webhook listener (group_wait? listener down?)"
        if name in ("pagerduty", "paged"):
            if name == "paged" and trace.stage("pagerduty").status == OK:
                return "the incident is assigned to nobody"
            if self._routing is not None and not self._routing.pagerduty_keyed:
                return "no integration key: the receiver's pagerduty_configs has no routing_key"
            if grew("pagerduty") > 0:
                return f"receiver error: {grew('pagerduty'):.0f} failed PagerDuty requests"
            return error or "no incident with the group's dedup_key (wrong integration key?)"
        if name == "opsgenie":
            if grew("opsgenie") > 0:
                return f"receiver error: {grew('opsgenie'):.0f} failed Opsgenie requests"
            return error or "no Opsgenie alert with the group's alias"
        if name == "statuspage":
            return error or "automation did not open it (is `serve` or the dashboard running?)"
        return error or "did not happen in time"


async def trace_test_alert(
    config: Config,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    *,
    clock: Clock,
    log: LogReader | None,
    within: float,
    on_update: Callable[[Trace], None] | None = None,
) -> Trace:
    """Fire and follow one test alert with a client of its own (what the dashboard calls)."""
    async with make_http_client(timeout=10.0) as http:
        tracer = Tracer(config, http=http, clock=clock, log=log, on_update=on_update)
        return await tracer.run(labels, annotations, within=within)
