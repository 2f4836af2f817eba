"""Bad answers from the APIs: a clear ProviderError (or a tolerated answer), never a crash.

Each client talks to its real fake (the Alertmanager stand-in, the fake PagerDuty, Statuspage
and Opsgenie) through a transport that spoils the answer on the way back: malformed JSON, an
HTML error page (with 502, and with 200 as a login portal would), an empty body, JSON of the
wrong type, and the fake's own JSON with a field removed, given an unexpected enum value or a
value of the wrong type. Every read a poller makes is called under every spoiler; the only
acceptable outcomes are a result or a ProviderError whose message is one short line without
markup. Then the engine: a source answering HTML shows as down with that message in its
health and in the log, and the poll loop keeps going.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from am_harness import FastClock
from faults_harness import wait_until

from oncall_tui.clock import SystemClock
from oncall_tui.config import load_config_text
from oncall_tui.engine import Engine
from oncall_tui.providers.alertmanager import AlertmanagerClient
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.opsgenie import OpsgenieClient
from oncall_tui.providers.pagerduty import PagerDutyClient
from oncall_tui.providers.pagerduty_events import PagerDutyEventsClient
from oncall_tui.providers.statuspage import StatuspageClient
from oncall_tui.sandbox.fake_opsgenie import FakeOpsgenie
from oncall_tui.sandbox.fake_pagerduty import FakePagerDuty
from oncall_tui.sandbox.fake_statuspage import FakeStatuspage
from oncall_tui.sandbox.standin import StandinAlertmanager

PD_TOKEN = "pd-token-answers-0001"
ROUTING_KEY = "A" * 32
SP_KEY = "sp-key-answers-0001"
OG_KEY = "og-key-answers-0001"
OPERATOR = "demo@example.com"
NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
    b"Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
LOGIN_PAGE = b"<!doctype html><html><body><form action='/login'>Sign in</form></body></html>"

Answer = tuple[int, str, bytes]
Spoiler = Callable[[Answer], Answer]

_DROP = object()


def _replace(answer: Answer, status: int, kind: str, body: bytes) -> Answer:
    return status, kind, body


def _rewrite(key: str, value: Any) -> Spoiler:
    """Every object in the JSON answer that has `key`: drop it, or set it to `value`."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: walk(v) for k, v in node.items()}
            if key in out:
                if value is _DROP:
                    del out[key]
                else:
                    out[key] = value
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    def spoil(answer: Answer) -> Answer:
        status, kind, body = answer
        try:
            data = json.loads(body)
        except ValueError:
            return answer
        return status, kind, json.dumps(walk(data)).encode()

    return spoil


GENERIC: dict[str, Spoiler] = {
    "malformed JSON": lambda a: (200, "application/json", b'{"data": [{"id": '),
    "HTML 502 page": lambda a: (502, "text/html", NGINX_502),
    "HTML login page, 200": lambda a: (200, "text/html; charset=utf-8", LOGIN_PAGE),
    "empty 200": lambda a: (200, "application/json", b""),
    "JSON null": lambda a: (200, "application/json", b"null"),
    "JSON string": lambda a: (200, "application/json", b'"down for maintenance"'),
    "JSON list of junk": lambda a: (200, "application/json", b'[1, "x", null, {}]'),
    "JSON object of junk": lambda a: (200, "application/json", b'{"unexpected": true}'),
}

FIELDS: dict[str, list[tuple[str, Any]]] = {
    "alertmanager": [
        ("labels", _DROP),
        ("fingerprint", _DROP),
        ("status", _DROP),
        ("state", "exploded"),
        ("labels", "not a map"),
        ("startsAt", "yesterday"),
        ("endsAt", 17),
        ("matchers", [{"name": 1}]),
        ("cluster", None),
    ],
    "pagerduty": [
        ("id", _DROP),
        ("status", "on_fire"),
        ("urgency", "whenever"),
        ("assignments", "nobody"),
        ("created_at", "soon"),
        ("incidents", {"not": "a list"}),
        ("oncalls", None),
        ("escalation_level", "high"),
        ("user", None),
    ],
    "statuspage": [
        ("status", _DROP),
        ("status", "melting"),
        ("impact", "apocalyptic"),
        ("components", "x"),
        ("updated_at", "later"),
        ("id", 7),
        ("incident_updates", None),
    ],
    "opsgenie": [
        ("status", "weird"),
        ("id", _DROP),
        ("data", "x"),
        ("createdAt", "now-ish"),
        ("tags", 5),
        ("rules", None),
    ],
}


def _spoilers(system: str) -> dict[str, Spoiler]:
    spoilers = dict(GENERIC)
    for key, value in FIELDS[system]:
        what = "without" if value is _DROP else f"{value!r} as"
        spoilers[f"{what} {key}"] = _rewrite(key, value)
    return spoilers


class Spoiling(httpx.AsyncBaseTransport):
    """Routes by host to in-process apps; spoils each answer while `spoiler` is set."""

    def __init__(self, apps: Mapping[str, Any]) -> None:
        self._routes = {host: httpx.ASGITransport(app=app) for host, app in apps.items()}
        self.spoiler: Spoiler | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._routes[request.url.host].handle_async_request(request)
        if self.spoiler is None:
            return response
        body = await response.aread()
        kind = response.headers.get("content-type", "application/json")
        status, kind, body = self.spoiler((response.status_code, kind, body))
        return httpx.Response(status, headers={"content-type": kind}, content=body)


Calls = dict[str, Callable[[], Awaitable[Any]]]


async def _world(system: str, clock: FastClock) -> tuple[Spoiling, httpx.AsyncClient, Calls]:
    if system == "alertmanager":
        standin = StandinAlertmanager(clock=SystemClock())
        transport = Spoiling({"am.test": standin.app})
        http = httpx.AsyncClient(transport=transport)
        alert = {"labels": {"alertname": "Probe", "severity": "critical"}}
        (await http.post("http://am.test/api/v2/alerts", json=[alert])).raise_for_status()
        am = AlertmanagerClient("am", "http://am.test", http, clock=clock)
        return transport, http, {"alerts": am.alerts, "silences": am.silences, "status": am.status}
    if system == "pagerduty":
        fake = FakePagerDuty(
            clock=SystemClock(),
            api_token=PD_TOKEN,
            routing_keys=[ROUTING_KEY],
            operator_email=OPERATOR,
        )
        transport = Spoiling({"pd.test": fake.app})
        http = httpx.AsyncClient(transport=transport)
        events = PagerDutyEventsClient("http://pd.test", ROUTING_KEY, http, clock=clock)
        await events.trigger(summary="Payments failing", source="probe", severity="critical")
        pd = PagerDutyClient("http://pd.test", PD_TOKEN, http, clock=clock, from_email=OPERATOR)
        incident_id = fake.incidents[0].id
        return (
            transport,
            http,
            {
                "incidents": pd.incidents,
                "incident": lambda: pd.incident(incident_id),
                "notes": lambda: pd.notes(incident_id),
                "oncalls": pd.oncalls,
                "escalation_policies": pd.escalation_policies,
                "schedules": pd.schedules,
            },
        )
    if system == "statuspage":
        components = {"API": "cmp0api0000001", "Checkout": "cmp0checkout01"}
        sp_fake = FakeStatuspage(
            clock=SystemClock(), api_key=SP_KEY, page_id="page00000001", components=components
        )
        transport = Spoiling({"sp.test": sp_fake.app})
        http = httpx.AsyncClient(transport=transport)
        sp = StatuspageClient("http://sp.test/v1", "page00000001", SP_KEY, http, clock=clock)
        await sp.create_incident(
            name="Checkout errors",
            status="investigating",
            body="Looking into it.",
            components={"cmp0checkout01": "partial_outage"},
        )
        return (
            transport,
            http,
            {
                "components": sp.components,
                "unresolved_incidents": sp.unresolved_incidents,
                "unresolved_incident_details": sp.unresolved_incident_details,
            },
        )
    og_fake = FakeOpsgenie(clock=SystemClock(), api_key=OG_KEY)
    transport = Spoiling({"og.test": og_fake.app})
    http = httpx.AsyncClient(transport=transport)
    og = OpsgenieClient("http://og.test", OG_KEY, http, clock=clock)
    return (
        transport,
        http,
        {"alerts": og.alerts, "schedules": og.schedules, "escalations": og.escalations},
    )


@pytest.mark.parametrize("system", ["alertmanager", "pagerduty", "statuspage", "opsgenie"])
async def test_bad_answers_give_a_clear_error_never_a_crash(system: str) -> None:
    clock = FastClock()
    transport, http, calls = await _world(system, clock)
    crashes: list[str] = []
    unclear: list[str] = []
    outcomes = {"error": 0, "tolerated": 0}
    try:
        for call in calls.values():
            await call()  # unspoiled, the call works: what follows tests the spoiling only
        for spoiled, spoiler in _spoilers(system).items():
            transport.spoiler = spoiler
            for name, call in calls.items():
                try:
                    await call()
                except ProviderError as exc:
                    outcomes["error"] += 1
                    message = str(exc)
                    if "\n" in message or "<" in message or len(message) > 300 or not message:
                        unclear.append(f"{name} / {spoiled}: {message!r}")
                except Exception as exc:  # the finding: anything else escapes to the engine
                    crashes.append(f"{name} / {spoiled}: {type(exc).__name__}: {exc}")
                else:
                    outcomes["tolerated"] += 1
            transport.spoiler = None
    finally:
        await http.aclose()
    assert not crashes, "\n".join(crashes)
    assert not unclear, "\n".join(unclear)
    assert outcomes["error"] > 0
    print(f"\n{system}: {len(calls)} reads x {len(_spoilers(system))} spoilers: {outcomes}")  # noqa: T201


# --- in the engine -------------------------------------------------------------------------------


async def test_alertmanager_answering_html_is_down_with_a_clear_error_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    standin = StandinAlertmanager(clock=SystemClock())
    transport = Spoiling({"am.test": standin.app})
    http = httpx.AsyncClient(transport=transport)
    alert = {"labels": {"alertname": "Probe", "severity": "critical"}}
    (await http.post("http://am.test/api/v2/alerts", json=[alert])).raise_for_status()
    config = load_config_text(
        f"""
alertmanagers: [{{name: am, url: "http://am.test"}}]
webhooks: {{enabled: false}}
poll: {{alerts: 1s}}
log: {{path: "{tmp_path / "log.db"}"}}
""",
        "test.yaml",
        {},
    )
    engine = Engine(config, clock=SystemClock(), http=http, listen_webhooks=False)
    caplog.set_level(logging.ERROR)
    await engine.start()
    try:

        def health() -> Any:
            return next(h for h in engine.snapshot.health if h.name == "am")

        await wait_until(lambda: len(engine.snapshot.alerts) == 1, what="the first poll")
        transport.spoiler = GENERIC["HTML 502 page"]
        engine.refresh_now()
        await wait_until(lambda: health().reachable is False, what="the source to be down")
        assert (health().error or "").endswith("HTTP 502 Bad Gateway")
        assert [a.alertname for a in engine.snapshot.alerts] == ["Probe"]  # stale, not empty
        transport.spoiler = GENERIC["malformed JSON"]
        engine.refresh_now()
        await wait_until(lambda: "JSON" in (health().error or ""), what="a JSON error")
        transport.spoiler = None
        engine.refresh_now()
        await wait_until(lambda: health().reachable is True, what="recovery")
        edges = await engine.store.entries(kinds=["source.down", "source.up"], newest_first=False)
    finally:
        await engine.stop()
        await http.aclose()
    assert [e.kind for e in edges] == ["source.down", "source.up"]
    assert edges[0].summary.startswith("am unreachable: ")
    assert edges[0].summary.endswith("HTTP 502 Bad Gateway")
    assert not [r for r in caplog.records if "unexpectedly" in r.getMessage()]
