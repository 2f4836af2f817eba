"""`oncall-tui fire --wait`: fire a test alert and print each pipeline stage as it happens.

The notification stage needs our webhook listener: when no dashboard or `serve` holds the
configured listen address, this command serves it itself for the duration (logging what
arrives, exactly as the engine's listener does); otherwise the running one logs it and we read
the shared log. The result is logged too (`trace.passed` / `trace.broken`), so the Log view and
the handoff see scheduled pipeline checks. Exit status: 0 when every expected stage happened,
1 when one did not (so it can run from cron).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TextIO

from oncall_tui.clock import Clock, SystemClock
from oncall_tui.config import Config
from oncall_tui.engine.intake import WebhookIntake
from oncall_tui.engine.trace import Tracer
from oncall_tui.engine.trace_result import (
    BROKEN,
    OK,
    SKIPPED,
    WAITING,
    Stage,
    Trace,
    trace_data,
    trace_summary,
)
from oncall_tui.models import LogEntry
from oncall_tui.providers.http import make_http_client
from oncall_tui.store import Store
from oncall_tui.webhooks import WebhookServer, make_webhook_app

EXIT_BROKEN = 1
MARKS = {OK: "ok", BROKEN: "BROKEN", SKIPPED: "skip", WAITING: "..."}


def stage_line(stage: Stage) -> str:
    """One printed line: mark, stage, latency, what was seen or why it broke."""
    latency = f"+{stage.latency:6.2f}s" if stage.latency is not None else " " * 8
    text = stage.cause if stage.status == BROKEN else stage.detail
    return f"  {MARKS[stage.status]:<6} {latency}  {stage.title:<26} {text}".rstrip()


async def _noop(entry: LogEntry) -> None:
    return None


async def own_listener(config: Config, store: Store, clock: Clock) -> WebhookServer | None:
    """Serve the configured listener unless something (the engine) already does."""
    hooks = config.webhooks
    if not hooks.enabled:
        return None
    token = hooks.alertmanager_token.get_secret_value() if hooks.alertmanager_token else None
    pd_secrets = []
    if config.pagerduty is not None and config.pagerduty.webhook_secret is not None:
        pd_secrets.append(config.pagerduty.webhook_secret.get_secret_value())
    app = make_webhook_app(
        WebhookIntake(store, clock, _noop), alertmanager_token=token, pagerduty_secrets=pd_secrets
    )
    server = WebhookServer(app, hooks.host, hooks.port)
    try:
        await server.start()
    except OSError:
        return None  # taken: the dashboard or `serve` listens and logs
    return server


async def fire_and_wait(
    config: Config,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    *,
    timeout: float = 60.0,  # noqa: ASYNC109 - the stages' deadline, not a cancel scope
    clock: Clock | None = None,
    out: TextIO | None = None,
) -> int:
    """Fire the alert, print every stage with its time; 0 if the pipeline worked, else 1."""
    clock = clock or SystemClock()
    stream = out or sys.stdout
    printed: set[str] = set()

    def show(trace: Trace) -> None:
        # Stages print as they happen; the skipped ones (known before the alert is fired) last.
        for stage in trace.stages:
            if stage.status == SKIPPED and not trace.finished:
                continue
            if stage.status != WAITING and stage.name not in printed:
                printed.add(stage.name)
                stream.write(stage_line(stage) + "\n")
                stream.flush()

    store = await Store.open(config.log.file, clock=clock, secrets=config.secrets())
    server = await own_listener(config, store, clock)
    try:
        async with make_http_client(timeout=10.0) as http:
            shown = ", ".join(f"{k}={v}" for k, v in labels.items())
            stream.write(f"firing {{{shown}}}, waiting up to {timeout:.0f}s\n")
            tracer = Tracer(config, http=http, clock=clock, log=store, on_update=show)
            trace = await tracer.run(labels, annotations, within=timeout)
        stream.write(trace_summary(trace) + "\n")
        await store.append(
            "operator",
            "trace.passed" if trace.ok else "trace.broken",
            trace_summary(trace),
            actor=config.actor,
            data=trace_data(trace),
        )
    finally:
        if server is not None:
            await server.stop()
        await store.close()
    return 0 if trace.ok else EXIT_BROKEN
