"""The `fire` and `check-config` commands: send a test alert, validate and reach the sources.

Heavy modules (httpx clients, the store) are imported inside the commands, so `--help` and
`check-config` without `--connect` start fast.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from typing import Any

from oncall_tui.cli_common import EXIT_CONFIG, EXIT_RUNTIME, PROG, CliError
from oncall_tui.cli_common import err as _err
from oncall_tui.cli_common import load as _load
from oncall_tui.cli_common import out as _out
from oncall_tui.cli_common import run as _run
from oncall_tui.clock import Clock, SystemClock
from oncall_tui.config import Config, redact, resolve_config_path

TARGETS = ("alertmanager", "pagerduty", "opsgenie")


def _pairs(items: Sequence[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--{what} {item!r}: expected KEY=VALUE", EXIT_CONFIG)
        out[key.strip()] = value
    return out


def fire_labels(
    config: Config, preset: str | None, labels: dict[str, str], annotations: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The alert to fire: a preset (named, or the first when none is named) plus overrides."""
    base_labels: dict[str, str] = {}
    base_annotations: dict[str, str] = {}
    if preset is not None:
        chosen = [p for p in config.test_alerts if p.name.casefold() == preset.casefold()]
        if not chosen:
            names = ", ".join(repr(p.name) for p in config.test_alerts) or "none configured"
            raise CliError(f"no test alert preset named {preset!r} (presets: {names})", 2)
        base_labels, base_annotations = dict(chosen[0].labels), dict(chosen[0].annotations)
    elif not labels and config.test_alerts:
        first = config.test_alerts[0]
        base_labels, base_annotations = dict(first.labels), dict(first.annotations)
    elif not labels.get("alertname"):
        base_labels = {"alertname": "OncallTuiTest", "severity": "info"}
    merged = {**base_labels, **labels}
    if not merged.get("alertname"):
        raise CliError("a test alert needs an alertname label (--label alertname=...)", 2)
    notes = {**base_annotations, **annotations}
    notes.setdefault("summary", f"Test alert fired with {PROG} by {config.actor}")
    return merged, notes


def cmd_fire(args: argparse.Namespace) -> int:
    config = _load(args)
    if args.wait and args.to != "alertmanager":
        raise CliError(
            "--wait follows an alert from Alertmanager through the pipeline: use it without --to",
            EXIT_CONFIG,
        )
    if args.to == "opsgenie" and (config.opsgenie is None or config.opsgenie.api_key is None):
        raise CliError("--to opsgenie: Opsgenie is not configured (opsgenie.api_key)", EXIT_CONFIG)
    if args.to == "pagerduty" and (config.pagerduty is None or not config.pagerduty.routing_key):
        raise CliError(
            "--to pagerduty: no Events API key configured (pagerduty.routing_key)", EXIT_CONFIG
        )
    if config.read_only:
        raise CliError("refused: read-only mode (read_only or --read-only)", EXIT_CONFIG)
    labels, annotations = fire_labels(
        config, args.preset, _pairs(args.label, "label"), _pairs(args.annotation, "annotation")
    )
    if args.wait:
        from oncall_tui.trace_cli import fire_and_wait

        return _run(fire_and_wait(config, labels, annotations, timeout=args.timeout))
    if args.to == "pagerduty":
        return _run(_fire_pagerduty(config, labels, annotations, SystemClock()))
    if args.to == "opsgenie":
        return _run(_fire_opsgenie(config, labels, annotations, SystemClock()))
    return _run(_fire(config, labels, annotations, SystemClock()))


async def _fire_opsgenie(
    config: Config, labels: dict[str, str], annotations: dict[str, str], clock: Clock
) -> int:
    """Create the alert in Opsgenie, wait until Opsgenie processed it; print its alias."""
    from oncall_tui.engine.opsgenie import fire_to_opsgenie
    from oncall_tui.providers.errors import ProviderError
    from oncall_tui.providers.http import make_http_client

    async with make_http_client(timeout=10.0) as http:
        try:
            alias = await fire_to_opsgenie(config, labels, annotations, http=http, clock=clock)
        except ProviderError as exc:
            _err(f"opsgenie: not sent: {exc.message}")
            return EXIT_RUNTIME
    _out(f"opsgenie: created {_label_text(labels)}")
    _out(f"alias: {alias}")
    await _log_quietly(
        config,
        clock,
        "operator",
        "alert.fired",
        f"fired test alert {labels['alertname']} to Opsgenie",
        {"labels": labels, "annotations": annotations, "sent_to": ["opsgenie"], "alias": alias},
    )
    return 0


async def _fire(
    config: Config, labels: dict[str, str], annotations: dict[str, str], clock: Clock
) -> int:
    from oncall_tui.providers.alertmanager import AlertmanagerClient, PostableAlert
    from oncall_tui.providers.errors import ProviderError
    from oncall_tui.providers.http import make_http_client

    alert = PostableAlert(labels=labels, annotations=annotations, starts_at=clock.now())
    sent: list[str] = []
    failed = 0
    async with make_http_client(timeout=10.0) as http:
        for am in config.alertmanagers:
            client = AlertmanagerClient(
                am.name, am.url, http, clock=clock, cluster=am.cluster_name, auth=am.auth
            )
            try:
                await client.post_alerts([alert])
            except ProviderError as exc:
                failed += 1
                _err(f"{am.name}: not sent: {exc.message}")
                continue
            sent.append(am.name)
            _out(f"{am.name}: sent {_label_text(labels)}")
    if sent:
        await _log_quietly(
            config,
            clock,
            "operator",
            "alert.fired",
            f"fired test alert {labels['alertname']} to {', '.join(sent)}",
            {"labels": labels, "annotations": annotations, "sent_to": sent},
        )
    return EXIT_RUNTIME if failed else 0


async def _fire_pagerduty(
    config: Config, labels: dict[str, str], annotations: dict[str, str], clock: Clock
) -> int:
    """Trigger the alert straight through PagerDuty's Events API; print its dedup_key."""
    from oncall_tui.providers.errors import ProviderError
    from oncall_tui.providers.http import make_http_client
    from oncall_tui.providers.pagerduty_events import PagerDutyEventsClient, event_severity

    pagerduty = config.pagerduty
    if pagerduty is None or pagerduty.routing_key is None:  # checked before; for the types
        raise CliError("--to pagerduty: no Events API key configured", EXIT_CONFIG)
    async with make_http_client(timeout=10.0) as http:
        events = PagerDutyEventsClient(
            pagerduty.events_url, pagerduty.routing_key.get_secret_value(), http, clock=clock
        )
        try:
            dedup_key = await events.trigger(
                summary=annotations["summary"],
                source=labels.get("instance") or labels.get("service") or PROG,
                severity=event_severity(labels.get("severity", "")),
                custom_details={
                    "labels": labels,
                    "annotations": annotations,
                    "fired_by": config.actor,
                },
                component=labels.get("service", ""),
                group=labels.get("team", ""),
                class_=labels["alertname"],
            )
        except ProviderError as exc:
            _err(f"pagerduty: not sent: {exc.message}")
            return EXIT_RUNTIME
    _out(f"pagerduty: triggered {_label_text(labels)}")
    _out(f"dedup_key: {dedup_key}")
    await _log_quietly(
        config,
        clock,
        "operator",
        "alert.fired",
        f"fired test alert {labels['alertname']} to PagerDuty",
        {
            "labels": labels,
            "annotations": annotations,
            "sent_to": ["pagerduty"],
            "dedup_key": dedup_key,
        },
    )
    return 0


def _label_text(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


async def _log_quietly(
    config: Config, clock: Clock, source: str, kind: str, summary: str, data: dict[str, Any]
) -> None:
    """Record what the command did; a log that cannot be written is reported, not fatal."""
    from oncall_tui.store import Store, StoreError

    try:
        store = await Store.open(config.log.file, clock=clock, secrets=config.secrets())
    except StoreError as exc:
        _err(f"warning: not logged: {exc}")
        return
    try:
        await store.append(source, kind, summary, actor=config.actor, data=data)
    finally:
        await store.close()


def config_summary(config: Config, source: str) -> list[str]:
    """What the config sets up, without any secret value."""

    def state(section: object) -> str:
        return "configured" if section is not None else "not configured"

    lines = [f"{source}: valid"]
    operator = config.operator
    lines.append(f"operator: {operator.name or '-'} <{operator.email or '-'}>")
    for am in config.alertmanagers:
        auth = "none"
        if am.auth is not None:
            auth = "bearer token" if am.auth.bearer_token is not None else "basic"
        lines.append(f"alertmanager {am.name}: {am.url} (cluster {am.cluster_name}, auth {auth})")
    lines.append(f"pagerduty: {state(config.pagerduty)}")
    lines.append(f"opsgenie: {state(config.opsgenie)}")
    lines.append(f"statuspage: {state(config.statuspage)}")
    hooks = config.webhooks
    token = "token set" if hooks.alertmanager_token is not None else "no token"
    listening = f"listen {hooks.listen}, {token}" if hooks.enabled else "off"
    lines.append(f"webhooks: {listening}")
    poll = config.poll
    lines.append(f"poll: alerts every {poll.alerts:g}s")
    lines.append(f"log: {config.log.file}")
    presets = ", ".join(p.name for p in config.test_alerts) or "none"
    lines.append(f"test alerts: {presets}")
    if config.read_only:
        lines.append("read-only: yes")
    return [redact(line, config.secrets()) for line in lines]


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args, args.path)
    source = str(resolve_config_path(args.path or getattr(args, "config", None)))
    for line in config_summary(config, source):
        _out(line)
    if not args.connect:
        return 0
    return _run(_connect(config, SystemClock()))


async def _connect(config: Config, clock: Clock) -> int:
    from oncall_tui.providers.alertmanager import AlertmanagerClient
    from oncall_tui.providers.errors import ProviderError
    from oncall_tui.providers.http import make_http_client

    async with make_http_client(timeout=5.0) as http:

        async def check(am: Any) -> tuple[str, bool]:
            client = AlertmanagerClient(
                am.name, am.url, http, clock=clock, cluster=am.cluster_name, auth=am.auth
            )
            try:
                status = await client.status()
            except ProviderError as exc:
                return f"alertmanager {am.name}: FAILED: {exc.message}", False
            peers = len(status.peers)
            return (
                f"alertmanager {am.name}: ok, version {status.version or 'unknown'}, "
                f"cluster {status.cluster_status}, {peers} peer{'s' if peers != 1 else ''}",
                True,
            )

        results = await asyncio.gather(*(check(am) for am in config.alertmanagers))
    for line, _ in results:
        _out(redact(line, config.secrets()))
    for section, name in (
        (config.pagerduty, "pagerduty"),
        (config.opsgenie, "opsgenie"),
        (config.statuspage, "statuspage"),
    ):
        if section is not None:
            _out(f"{name}: not checked yet (support is coming)")
    failed = [line for line, ok in results if not ok]
    if failed:
        _err(f"{len(failed)} of {len(results)} sources could not be reached")
        return EXIT_RUNTIME
    return 0
