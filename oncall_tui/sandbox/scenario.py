"""The demo scenario: plays Prometheus, firing and resolving a realistic mix of alerts over time.

A cycle of a few minutes (repeated while the sandbox runs) has long-lived warnings, a critical
outage that starts and ends, a multi-instance group, an informational notice and one flapping
alert. Start and end times get a seeded jitter, so a given seed always plays the same night.

The story the demo tells (DESIGN.md section 9, issue 6), with the cycle's default 600 s:

1. ~20 s: payment-service goes down (`ServiceDown`, critical, pay-1). Alertmanager's critical
   route pages PagerDuty (dedup_key = sha256 of the group key) and notifies our listener; with
   Statuspage automation on, a public incident opens for the payment-service component.
2. nobody acknowledges: PagerDuty escalates level by level on its compressed clock.
3. ~60 s: a second instance (pay-2) fails too. It joins the same alert group, so PagerDuty
   folds it into the open incident without a new page; the pipeline panel still lists it.
4. ~90 s on: checkout's error rate follows (its own group and incident).
5. ~45% of the cycle: payment-service recovers, both alerts resolve, Alertmanager resolves the
   incident, and the public incident resolves after the automation's quiet period.

`story(seed)` names these beats with their times for a seed, for the demo and the tests.

Like Prometheus, every round re-sends each firing alert with an `endsAt` a few rounds ahead
(so a stopped scenario lets its alerts resolve on their own) and sends resolved alerts with
`endsAt` set to when they resolved, to every Alertmanager of the sandbox. The scenario posts
raw API v2 JSON on purpose: it stands in for Prometheus, not for oncall-tui's own client.
Time comes from the injected Clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from oncall_tui.clock import Clock
from oncall_tui.sandbox.standin import format_time

log = logging.getLogger(__name__)

CYCLE_SECONDS = 600.0
RUNBOOKS = "https://runbooks.example.com"
GENERATOR = "http://prometheus.sandbox.invalid/graph"
POST_TIMEOUT = 5.0
# Prometheus keeps re-sending a resolved alert for a while; a few rounds are enough here.
RESOLVED_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class Spell:
    """One alert's firing interval within a cycle; `end` None means it never resolves."""

    start: float
    end: float | None


@dataclass(frozen=True, slots=True)
class ScenarioAlert:
    labels: dict[str, str]
    annotations: dict[str, str]
    spells: tuple[Spell, ...]

    def firing_spell(self, at: float) -> Spell | None:
        for spell in self.spells:
            if spell.start <= at and (spell.end is None or at < spell.end):
                return spell
        return None

    def last_resolved(self, at: float) -> Spell | None:
        """The spell that most recently ended at or before `at`."""
        ended = [s for s in self.spells if s.end is not None and s.end <= at]
        return max(ended, key=lambda s: s.end or 0.0) if ended else None


def _annotations(summary: str, description: str, runbook: str) -> dict[str, str]:
    return {
        "summary": summary,
        "description": description,
        "runbook_url": f"{RUNBOOKS}/{runbook}",
    }


def build_alerts(seed: int, cycle: float = CYCLE_SECONDS) -> list[ScenarioAlert]:
    """The alerts of one cycle for this seed; the same seed gives the same list."""
    rng = random.Random(seed)

    def jitter(value: float, spread: float = 0.15) -> float:
        return round(max(0.0, value * (1 + rng.uniform(-spread, spread))), 1)

    def base(
        alertname: str, severity: str, service: str, team: str, **extra: str
    ) -> dict[str, str]:
        return {
            "alertname": alertname,
            "severity": severity,
            "service": service,
            "team": team,
            "env": "sandbox",
            **extra,
        }

    outage_start, outage_end = jitter(20), jitter(cycle * 0.45)
    alerts: list[ScenarioAlert] = [
        ScenarioAlert(
            base("ServiceDown", "critical", "payment-service", "platform", instance="pay-1:8080"),
            _annotations(
                "payment-service is down",
                "No healthy payment-service instance has answered its health check for 2m.",
                "service-down",
            ),
            (Spell(outage_start, outage_end),),
        ),
        # The second instance joins the open group: folded into the incident, no new page.
        ScenarioAlert(
            base("ServiceDown", "critical", "payment-service", "platform", instance="pay-2:8080"),
            _annotations(
                "payment-service is down",
                "No healthy payment-service instance has answered its health check for 2m.",
                "service-down",
            ),
            (Spell(outage_start + 40.0, outage_end - 5.0),),
        ),
        ScenarioAlert(
            base("HighLatency", "warning", "payment-service", "platform", instance="pay-2:8080"),
            _annotations(
                "payment-service p99 latency above 800ms",
                "p99 latency of POST /charge has been above 800ms for 10m.",
                "high-latency",
            ),
            (Spell(0.0, jitter(cycle * 0.7)),),
        ),
        ScenarioAlert(
            base("DiskSpaceLow", "warning", "postgres", "data", instance="db-primary:9100"),
            _annotations(
                "db-primary has less than 10% disk left",
                "/var/lib/postgresql is 91% full and growing 1% an hour.",
                "disk-space-low",
            ),
            (Spell(0.0, None),),
        ),
        ScenarioAlert(
            base("CertificateExpiringSoon", "info", "auth-service", "identity"),
            _annotations(
                "TLS certificate of auth.example.com expires in 12 days",
                "Renewal is automated; this is a reminder in case it fails.",
                "certificate-expiry",
            ),
            (Spell(0.0, None),),
        ),
    ]
    # One incident seen from three instances: a group of three alerts.
    errors_start, errors_end = jitter(cycle * 0.15), jitter(cycle * 0.55)
    for index in range(3):
        alerts.append(
            ScenarioAlert(
                base(
                    "HighErrorRate",
                    "critical",
                    "checkout",
                    "storefront",
                    instance=f"checkout-{index}:8080",
                ),
                _annotations(
                    "checkout is failing more than 5% of requests",
                    "HTTP 5xx ratio above 5% for 5m, mostly upstream timeouts to payment-service.",
                    "high-error-rate",
                ),
                (Spell(errors_start + 5 * index, errors_end + 10 * index),),
            )
        )
    for index in range(2):
        alerts.append(
            ScenarioAlert(
                base(
                    "KafkaConsumerLag",
                    "warning",
                    "order-queue",
                    "data",
                    consumergroup=f"orders-{index}",
                ),
                _annotations(
                    "order consumers are more than 10k messages behind",
                    "Lag is growing; orders are confirmed late but none are lost.",
                    "kafka-consumer-lag",
                ),
                (Spell(jitter(cycle * 0.25), jitter(cycle * 0.8)),),
            )
        )
    alerts.append(
        ScenarioAlert(
            base("PodCrashLooping", "warning", "search", "discovery", pod="search-7d9f-x2k4q"),
            _annotations(
                "search pod restarting repeatedly",
                "The pod was OOM-killed 4 times in 10m; it comes and goes.",
                "pod-crash-looping",
            ),
            _flapping(rng, cycle),
        )
    )
    return alerts


def story(seed: int, cycle: float = CYCLE_SECONDS) -> list[tuple[float, str]]:
    """The payment-service outage's beats for this seed: (seconds into the cycle, what)."""
    outage = [
        a
        for a in build_alerts(seed, cycle)
        if a.labels["alertname"] == "ServiceDown" and a.labels["service"] == "payment-service"
    ]
    first, joined = outage[0].spells[0], outage[1].spells[0]
    assert first.end is not None  # the outage always ends within the cycle
    return [
        (first.start, "payment-service down: PagerDuty paged, public incident opened"),
        (joined.start, "second payment-service instance joins the open incident, no new page"),
        (first.end, "payment-service recovers: alerts and incidents resolve"),
    ]


def _flapping(rng: random.Random, cycle: float) -> tuple[Spell, ...]:
    spells: list[Spell] = []
    at = rng.uniform(5, 20)
    while at < cycle - 30:
        length = rng.uniform(15, 45)
        spells.append(Spell(round(at, 1), round(min(at + length, cycle - 1), 1)))
        at += length + rng.uniform(15, 40)
    return tuple(spells)


@dataclass
class Scenario:
    """Posts the scenario's alerts to every Alertmanager URL, one round per `interval`."""

    urls: Sequence[str]
    clock: Clock
    seed: int = 0
    interval: float = 5.0
    cycle: float = CYCLE_SECONDS
    http: httpx.AsyncClient | None = None
    origin: datetime | None = None
    rounds: int = 0
    failures: int = 0
    alerts: list[ScenarioAlert] = field(init=False)

    def __post_init__(self) -> None:
        self.alerts = build_alerts(self.seed, self.cycle)

    def payload(self, now: datetime) -> list[dict[str, Any]]:
        """What Prometheus would send at `now`: the firing alerts and the recently resolved."""
        if self.origin is None:
            self.origin = now
        elapsed = max(0.0, (now - self.origin).total_seconds())
        number, at = divmod(elapsed, self.cycle)
        cycle_start = self.origin + timedelta(seconds=number * self.cycle)
        keep = RESOLVED_ROUNDS * self.interval
        out: list[dict[str, Any]] = []
        for alert in self.alerts:
            spell = alert.firing_spell(at)
            if spell is not None:
                # Alerts that never end started at the very beginning, not at each cycle.
                started = self.origin if spell.end is None else _at(cycle_start, spell.start)
                ends = now + timedelta(seconds=4 * self.interval)
                out.append(self._alert(alert, started, ends))
                continue
            resolved = alert.last_resolved(at)
            if resolved is not None and resolved.end is not None and at - resolved.end <= keep:
                started = _at(cycle_start, resolved.start)
                out.append(self._alert(alert, started, _at(cycle_start, resolved.end)))
        return out

    def _alert(self, alert: ScenarioAlert, starts: datetime, ends: datetime) -> dict[str, Any]:
        return {
            "labels": dict(alert.labels),
            "annotations": dict(alert.annotations),
            "startsAt": format_time(starts),
            "endsAt": format_time(ends),
            "generatorURL": f"{GENERATOR}?g0.expr=ALERTS%7Balertname%3D%22"
            f"{alert.labels['alertname']}%22%7D",
        }

    async def step(self) -> int:
        """Post one round to every Alertmanager; returns how many accepted it."""
        body = self.payload(self.clock.now())
        client = self.http
        if client is None:
            async with httpx.AsyncClient(timeout=POST_TIMEOUT) as own:
                return await self._post_all(own, body)
        return await self._post_all(client, body)

    async def _post_all(self, client: httpx.AsyncClient, body: list[dict[str, Any]]) -> int:
        async def post(url: str) -> bool:
            try:
                response = await client.post(
                    f"{url.rstrip('/')}/api/v2/alerts", json=body, timeout=POST_TIMEOUT
                )
            except httpx.HTTPError as exc:
                log.warning("scenario could not reach %s: %s", url, type(exc).__name__)
                return False
            if response.status_code != 200:
                log.warning("scenario post to %s answered %s", url, response.status_code)
                return False
            return True

        results = await asyncio.gather(*(post(url) for url in self.urls))
        self.rounds += 1
        self.failures += results.count(False)
        return results.count(True)

    async def run(self) -> None:
        """Post a round every `interval` until cancelled (one HTTP client for the whole run)."""
        if self.http is not None:
            await self._loop()
            return
        async with httpx.AsyncClient(timeout=POST_TIMEOUT) as client:
            self.http = client
            try:
                await self._loop()
            finally:
                self.http = None

    async def _loop(self) -> None:
        while True:
            await self.step()
            await self.clock.sleep(self.interval)


def _at(start: datetime, seconds: float) -> datetime:
    return start + timedelta(seconds=seconds)
