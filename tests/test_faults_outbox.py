"""Outbox: actions taken while PagerDuty and Alertmanager fail reach them exactly once.

Phase 1 runs the engine in-process while every write is refused (503, 429 with Retry-After) or
hangs past the client timeout: each action is shown pending with "will retry". Phase 2 runs
`oncall-tui serve` as a subprocess on the same log. The proxy lets each write through once and
then withholds the answer (the system acted, we never heard), and the test kills the process
with SIGKILL at that moment, restarts it, and repeats until nothing is pending. The calls that
arrived at the real Alertmanager and the fake PagerDuty are counted, and so are the effects.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx
import pytest
from am_harness import am_binary, am_config_yaml, running_alertmanager
from faults_harness import FaultProxy, Rule, ServeProcess, serving, wait_until

from oncall_tui.clock import SystemClock
from oncall_tui.config import load_config_text
from oncall_tui.engine import ActionRequest, Engine
from oncall_tui.models import ActionStatus
from oncall_tui.providers.http import make_http_client
from oncall_tui.providers.pagerduty_events import PagerDutyEventsClient
from oncall_tui.providers.statuspage import StatuspageClient
from oncall_tui.sandbox.fake_pagerduty import FakePagerDuty
from oncall_tui.sandbox.fake_statuspage import FakeStatuspage
from oncall_tui.store import Store

__all__ = ["am_binary"]  # a fixture, imported to be visible here

TOKEN = "pd-token-faults-0001"
ROUTING_KEY = "F" * 32
OPERATOR = "demo@example.com"
NOTE = "Rolled back payments to 4.1.2; watching error rate."
UPDATE = "Cause found: a bad deploy of checkout; rolling back."
SP_KEY = "sp-key-faults-0001"
SP_PAGE = "faultpage001"
SP_COMPONENTS = {"payment-service": "cmp0payments01", "checkout": "cmp0checkout01"}
MAX_KILLS = 10


def _config_text(tmp_path: Path, am_url: str, pd_url: str, sp_url: str) -> str:
    return f"""
operator: {{name: Demo Operator, email: {OPERATOR}}}
alertmanagers: [{{name: am, url: "{am_url}"}}]
pagerduty: {{api_token: "{TOKEN}", routing_key: "{ROUTING_KEY}",
             api_url: "{pd_url}", events_url: "{pd_url}"}}
statuspage: {{api_key: "{SP_KEY}", page_id: "{SP_PAGE}", api_url: "{sp_url}/v1",
              components: {{payment-service: cmp0payments01, checkout: cmp0checkout01}}}}
webhooks: {{enabled: false}}
poll: {{alerts: 1s, incidents: 2s, oncall: 60s, statuspage: 2s}}
log: {{path: "{tmp_path / "log.db"}"}}
"""


async def _stop(engine: Engine) -> None:
    """Engine.stop(), bounded. Python 3.11's wait_for can swallow the outbox task's cancellation
    (engine/outbox.py `Outbox.run`; see test_engine_stop_is_bounded below); then a
    second cancel ends it, so that no outbox of this run retries behind phase 2's back."""
    stopping = asyncio.create_task(engine.stop())
    for _ in range(3):
        done, _ = await asyncio.wait({stopping}, timeout=10)
        if done:
            return
        for task in engine._tasks:
            task.cancel()
    raise AssertionError("Engine.stop() did not return")


def _pending(log: Path) -> int:
    with sqlite3.connect(f"file:{log}?mode=ro", uri=True, timeout=5) as db:
        (count,) = db.execute("SELECT count(*) FROM actions WHERE status = 'pending'").fetchone()
    return int(count)


@pytest.mark.alertmanager
async def test_actions_reach_each_system_exactly_once_across_faults_and_kill_9(
    am_binary: str, tmp_path: Path
) -> None:
    clock = SystemClock()
    fake = FakePagerDuty(
        clock=clock, api_token=TOKEN, routing_keys=[ROUTING_KEY], operator_email=OPERATOR
    )
    page = FakeStatuspage(clock=clock, api_key=SP_KEY, page_id=SP_PAGE, components=SP_COMPONENTS)
    async with (
        running_alertmanager(am_binary, tmp_path / "am", am_config_yaml(inhibit=False)) as am,
        serving(fake.app) as pd_url,
        serving(page.app) as sp_url,
    ):
        async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
            events = PagerDutyEventsClient(pd_url, ROUTING_KEY, http, clock=clock)
            for key, summary in (("pay", "Payments failing"), ("search", "Search slow")):
                await events.trigger(
                    summary=summary, source="drill", severity="critical", dedup_key=key
                )
            statuspage = StatuspageClient(sp_url + "/v1", SP_PAGE, SP_KEY, http, clock=clock)
            public = await statuspage.create_incident(
                name="Checkout errors", status="investigating", body="Looking into it."
            )
        incident_a, incident_b = sorted(fake.incidents, key=lambda i: i.number)
        am_proxy, pd_proxy, sp_proxy = FaultProxy(am.url), FaultProxy(pd_url), FaultProxy(sp_url)
        proxies = (am_proxy, pd_proxy, sp_proxy)
        async with (
            serving(am_proxy.app) as am_via,
            serving(pd_proxy.app) as pd_via,
            serving(sp_proxy.app) as sp_via,
        ):
            text = _config_text(tmp_path, am_via, pd_via, sp_via)
            config_path = tmp_path / "config.yaml"
            config_path.write_text(text, encoding="utf-8")
            config = load_config_text(text, str(config_path), {})
            log = config.log.file

            # -- phase 1: everything that writes fails; the actions wait in the outbox.
            busy = {"Retry-After": "1"}
            pd_proxy.add(Rule("PUT", "/incidents/.*", "answer", 429, busy))
            pd_proxy.add(Rule(None, "/incidents/.*", "answer", 503))
            am_proxy.add(Rule("POST", "/api/v2/silences", "hang"))
            am_proxy.add(Rule("GET", "/api/v2/silences", "answer", 503))
            sp_proxy.add(Rule("POST", "/v1/.*", "answer", 420, busy))
            sp_proxy.add(Rule(None, "/v1/.*", "answer", 503))
            requests = [
                ActionRequest("incident.acknowledge", f"pagerduty/{incident_a.id}"),
                ActionRequest("incident.note", f"pagerduty/{incident_a.id}", {"content": NOTE}),
                ActionRequest("incident.resolve", f"pagerduty/{incident_b.id}"),
                ActionRequest(
                    "silence.create",
                    "am",
                    {
                        "cluster": "am",
                        "matchers": ['alertname="FaultDrill"'],
                        "duration_seconds": 3600,
                        "comment": "fault drill",
                    },
                ),
                ActionRequest(
                    "statuspage.incident.create",
                    "",
                    {
                        "name": "Payments degraded",
                        "status": "investigating",
                        "body": "We are investigating failed payments.",
                        "components": {"cmp0payments01": "partial_outage"},
                    },
                ),
                ActionRequest(
                    "statuspage.incident.update",
                    public.id,
                    {"status": "identified", "body": UPDATE},
                ),
            ]
            http_client = make_http_client(timeout=0.5)
            engine = Engine(config, clock=clock, http=http_client, listen_webhooks=False)
            await engine.start()
            try:
                taken = list(await asyncio.gather(*(engine.act(r) for r in requests)))
            finally:
                am_proxy.release.set()  # let the hung requests end before the engine stops
                await _stop(engine)
                await http_client.aclose()
            assert [a.status for a in taken] == [ActionStatus.PENDING] * len(requests)
            assert all(a.result.startswith("will retry") for a in taken), taken
            faulted_phase_1 = sum(len(p.calls) for p in proxies)
            assert pd_proxy.count("PUT", "/incidents/.*") == 0
            assert am_proxy.count("POST", "/api/v2/silences") == 0
            assert sp_proxy.count("POST", "/v1/.*") + sp_proxy.count("PATCH", "/v1/.*") == 0
            assert _pending(log) == len(requests)

            # -- phase 2: `serve` picks them up; each write is applied, its answer lost, and
            # the process killed right then; a restart must not apply it a second time.
            for proxy in proxies:
                proxy.clear()
            pd_proxy.add(Rule("PUT", f"/incidents/{incident_b.id}", "answer", 429, busy, times=2))
            pd_proxy.add(Rule("POST", ".*/notes", "answer", 503, times=1))
            for proxy, method, path in (
                (pd_proxy, "PUT", f"/incidents/{incident_a.id}"),
                (pd_proxy, "POST", f"/incidents/{incident_a.id}/notes"),
                (pd_proxy, "PUT", f"/incidents/{incident_b.id}"),
                (am_proxy, "POST", "/api/v2/silences"),
                (sp_proxy, "POST", f"/v1/pages/{SP_PAGE}/incidents"),
                (sp_proxy, "PATCH", f"/v1/pages/{SP_PAGE}/incidents/{public.id}"),
            ):
                proxy.add(Rule(method, path, "hold_answer", times=1))
            for proxy in proxies:
                proxy.held.clear()
                proxy.release.clear()
            serve = ServeProcess(config_path, tmp_path)
            kills = 0
            try:
                while True:
                    await serve.start()
                    await wait_until(
                        lambda: any(p.held.is_set() for p in proxies) or _pending(log) == 0,
                        within=40,
                        what="a write to be applied, or the outbox to empty",
                    )
                    if _pending(log) == 0 and not any(p.held.is_set() for p in proxies):
                        break
                    await serve.kill9()
                    kills += 1
                    assert kills <= MAX_KILLS, "the outbox keeps re-sending"
                    for proxy in proxies:
                        proxy.release.set()
                    for proxy in proxies:
                        proxy.held.clear()
                        proxy.release.clear()
            finally:
                code = await serve.stop()
            assert code == 0, serve.output()

            # -- what arrived, and what it did
            note_posts = pd_proxy.count("POST", f"/incidents/{incident_a.id}/notes")
            silence_posts = am_proxy.count("POST", "/api/v2/silences")
            ack_puts = pd_proxy.count("PUT", f"/incidents/{incident_a.id}")
            resolve_puts = pd_proxy.count("PUT", f"/incidents/{incident_b.id}")
            opens = sp_proxy.count("POST", f"/v1/pages/{SP_PAGE}/incidents")
            updates = sp_proxy.count("PATCH", f"/v1/pages/{SP_PAGE}/incidents/{public.id}")
            async with httpx.AsyncClient(base_url=am.url, trust_env=False, timeout=5) as http:
                silences = (await http.get("/api/v2/silences")).json()
        for proxy in proxies:
            await proxy.aclose()

    assert kills == len(requests), serve.output()  # one per write, killed after it took effect
    assert note_posts == 1
    assert silence_posts == 1
    # A retried acknowledge/resolve is sent again and answered "already" (1002/1001).
    assert ack_puts == 2
    assert resolve_puts == 2
    assert len(incident_a.acknowledgements) == 1
    assert [n.content for n in incident_a.notes] == [NOTE]
    assert incident_b.status == "resolved"
    drills = [s for s in silences if s["comment"].startswith("fault drill")]
    assert len(drills) == 1
    # Statuspage: the retried open finds its incident by key, the retried update sees it posted.
    assert opens == 1
    assert updates == 1
    names = [page.incident(i)["name"] for i in page.incident_ids]
    assert names.count("Payments degraded") == 1
    posted = [u["body"] for u in page.incident(public.id)["incident_updates"]]
    assert posted.count(UPDATE) == 1

    store = await Store.open(log, clock=clock)
    try:
        done = [await store.get_action(a.id) for a in taken]
        finished = await store.entries(kinds=["action.done", "action.failed"], newest_first=False)
    finally:
        await store.close()
    assert [a.status if a else None for a in done] == [ActionStatus.DONE] * len(taken)
    assert sorted(e.data["action_id"] for e in finished) == sorted(a.id for a in taken)
    assert all(e.kind == "action.done" for e in finished)
    # Figures for the README's "Failure behaviour" section.
    print(  # noqa: T201
        f"\noutbox: {len(taken)} actions, {faulted_phase_1} faulted calls in phase 1, "
        f"{kills} kill -9, writes arrived: ack {ack_puts}, note {note_posts}, "
        f"resolve {resolve_puts}, silence {silence_posts}, status page open {opens}, "
        f"update {updates}; effects: 1 each"
    )


async def test_outbox_task_ends_when_cancelled_as_it_is_woken(tmp_path: Path) -> None:
    config = load_config_text(
        f"""
alertmanagers: [{{name: am, url: "http://127.0.0.1:9"}}]
webhooks: {{enabled: false}}
log: {{path: "{tmp_path / "log.db"}"}}
""",
        "test.yaml",
        {},
    )
    engine = Engine(config, clock=SystemClock(), listen_webhooks=False)
    await engine.start()
    request = ActionRequest(
        "silence.create",
        "am",
        {"cluster": "am", "matchers": ['a="b"'], "duration_seconds": 60, "comment": "x"},
    )
    assert (await engine.act(request)).status == ActionStatus.PENDING  # nothing listens on :9
    await asyncio.sleep(3.5)  # the outbox retries once, then waits out its back-off
    (outbox,) = [t for t in engine._tasks if t.get_name() == "outbox"]
    # A retryable action wakes the outbox (as act() does) just as the engine stops.
    engine._outbox.wake()
    outbox.cancel()
    done, _ = await asyncio.wait({outbox}, timeout=1)
    if not done:
        outbox.cancel()  # a second cancel does get through; clean up for the next test
    await _stop(engine)
    assert done, "the outbox task ignored its cancellation"
