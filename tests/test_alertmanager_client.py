"""AlertmanagerClient against the real Alertmanager binary (Debian's 0.25 in CI).

One Alertmanager serves the whole module; each test labels its alerts with its own `run` value
and filters on it, so tests do not see each other's alerts.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from am_harness import (
    AmSpecChecker,
    FastClock,
    am_binary,
    running_alertmanager,
    soon,
    wait_for,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oncall_tui.clock import SystemClock
from oncall_tui.engine.actions import (
    SILENCE_CREATE,
    SILENCE_EXPIRE,
    SILENCE_EXTEND,
    ActionRejected,
    ActionRequest,
    AlertmanagerActions,
)
from oncall_tui.models import AlertGroup, AlertState, Matcher, SilenceState
from oncall_tui.providers.alertmanager import (
    AlertmanagerAuth,
    AlertmanagerClient,
    PostableAlert,
)
from oncall_tui.providers.errors import ProviderError
from oncall_tui.sandbox.alertmanager_process import (
    AlertmanagerProcess,
    AlertmanagerStartError,
    alertmanager_config_yaml,
    free_port,
)
from oncall_tui.webhooks import WebhookServer

pytestmark = [pytest.mark.alertmanager, pytest.mark.asyncio(loop_scope="module")]

__all__ = ["am_binary"]  # a fixture, imported so that pytest sees it here


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(
    am_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AlertmanagerProcess]:
    async with running_alertmanager(am_binary, tmp_path_factory.mktemp("am")) as process:
        yield process


@pytest_asyncio.fixture(loop_scope="module")
async def am(server: AlertmanagerProcess) -> AsyncIterator[AlertmanagerClient]:
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield AlertmanagerClient("prod-a", server.url, http, clock=SystemClock(), cluster="prod")


@pytest.fixture
def run() -> str:
    return uuid.uuid4().hex[:12]


def alert(run: str, name: str, severity: str, **labels: str) -> PostableAlert:
    return PostableAlert(
        labels={"alertname": name, "severity": severity, "run": run, **labels},
        annotations={"summary": f"{name} is broken", "runbook_url": "http://runbooks/x"},
        starts_at=soon(-5),
        generator_url="http://prometheus.example/graph",
    )


async def test_status_reports_version_cluster_and_config(am: AlertmanagerClient) -> None:
    status = await am.status()
    assert status.version.startswith("0.")
    assert status.cluster_status == "disabled"  # started without a cluster listener
    assert status.peers == ()
    assert status.uptime is not None
    assert status.uptime.tzinfo == UTC
    assert status.uptime <= soon()
    assert "receivers:" in status.config_yaml
    assert "inhibit_rules:" in status.config_yaml


async def test_receivers_are_the_configured_names(am: AlertmanagerClient) -> None:
    assert sorted(await am.receivers()) == ["critical", "default", "warning"]


async def test_posted_alerts_come_back_as_domain_objects(am: AlertmanagerClient, run: str) -> None:
    sent = alert(run, "DiskFull", "critical", service="db")
    await am.post_alerts([sent, alert(run, "CpuHigh", "warning", service="web")])

    alerts = await am.alerts(filters=[Matcher("run", run)])
    by_name = {a.alertname: a for a in alerts}
    assert set(by_name) == {"DiskFull", "CpuHigh"}
    disk = by_name["DiskFull"]
    assert dict(disk.labels) == sent.labels
    assert dict(disk.annotations) == sent.annotations
    assert disk.summary == "DiskFull is broken"
    assert disk.state == AlertState.ACTIVE
    assert disk.receivers == ("critical",)
    assert by_name["CpuHigh"].receivers == ("warning",)
    assert disk.generator_url == "http://prometheus.example/graph"
    assert len(disk.fingerprint) == 16
    assert disk.cluster == "prod"
    assert disk.seen_by == ("prod-a",)
    assert disk.key == f"prod/{disk.fingerprint}"
    assert sent.starts_at is not None
    # The server keeps milliseconds; every time comes back aware, in UTC.
    assert abs(disk.starts_at - sent.starts_at) < timedelta(milliseconds=1)
    for moment in (disk.starts_at, disk.updated_at, disk.ends_at):
        assert moment is not None
        assert moment.tzinfo == UTC
    assert disk.ends_at is not None
    assert disk.ends_at > soon()  # resolve_timeout in the future, since no endsAt was sent


async def test_a_second_poll_decodes_only_the_alerts_that_changed(
    am: AlertmanagerClient, server: AlertmanagerProcess, run: str
) -> None:
    await am.post_alerts([alert(run, "Steady", "critical"), alert(run, "Moving", "warning")])
    mine = [Matcher("run", run)]
    first = {a.alertname: a for a in await am.alerts(filters=mine)}
    moved = alert(run, "Moving", "warning")
    await am.post_alerts([replace(moved, annotations={"summary": "Moving moved on"})])

    second = {a.alertname: a for a in await am.alerts(filters=mine)}
    assert second["Steady"] is first["Steady"], "unchanged: the object decoded last time"
    assert second["Moving"] is not first["Moving"]
    assert second["Moving"].summary == "Moving moved on"
    async with httpx.AsyncClient(timeout=5.0) as http:
        fresh = AlertmanagerClient("prod-a", server.url, http, clock=SystemClock(), cluster="prod")
        assert await fresh.alerts(filters=mine) == list(second.values())


async def test_an_alert_sent_with_an_end_in_the_past_is_resolved(
    am: AlertmanagerClient, run: str
) -> None:
    resolved = replace(alert(run, "Gone", "warning"), ends_at=soon(-1))
    await am.post_alerts([resolved, alert(run, "Here", "warning")])
    names = [a.alertname for a in await am.alerts(filters=[Matcher("run", run)])]
    assert names == ["Here"]


async def test_filters_select_by_matcher(am: AlertmanagerClient, run: str) -> None:
    await am.post_alerts(
        [
            alert(run, "PaymentsDown", "critical", service="payments"),
            alert(run, "PaymentsSlow", "warning", service="payments"),
            alert(run, "SearchDown", "critical", service="search"),
        ]
    )
    mine = Matcher("run", run)

    async def names(*matchers: Matcher) -> list[str]:
        return sorted(a.alertname for a in await am.alerts(filters=[mine, *matchers]))

    assert await names(Matcher("service", "pay.*", is_regex=True)) == [
        "PaymentsDown",
        "PaymentsSlow",
    ]
    assert await names(Matcher("severity", "critical", is_equal=False)) == ["PaymentsSlow"]
    assert await names(Matcher("service", "pay.*", is_regex=True, is_equal=False)) == ["SearchDown"]
    assert await names(Matcher("alertname", 'has "quotes"')) == []
    assert await am.alerts(filters=[mine], receiver="warning") != []
    only_warning = await am.alerts(filters=[mine], receiver="warning")
    assert [a.alertname for a in only_warning] == ["PaymentsSlow"]


async def test_a_bad_filter_is_reported_with_the_servers_words(am: AlertmanagerClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await am.alerts(filters=[Matcher("x", "(", is_regex=True)])
    assert caught.value.status == 400
    assert not caught.value.retryable
    assert "error parsing regexp" in caught.value.message
    assert str(caught.value).startswith("alertmanager prod-a: HTTP 400: ")


async def test_silenced_and_inhibited_states_and_flags(am: AlertmanagerClient, run: str) -> None:
    await am.post_alerts(
        [
            alert(run, "Noisy", "info", service="a"),
            alert(run, "Root", "critical", service="b", inhibit="source"),
            alert(run, "Symptom", "warning", service="c"),
            alert(run, "Both", "warning", service="d"),
        ]
    )
    silence_id = await am.create_silence(
        [Matcher("run", run), Matcher("alertname", "Noisy|Both", is_regex=True)],
        starts_at=soon(),
        ends_at=soon(30),
        created_by="tester@example.com",
        comment="known noise",
    )
    mine = [Matcher("run", run)]

    async def settled() -> dict[str, AlertState] | None:
        states = {a.alertname: a.state for a in await am.alerts(filters=mine)}
        wanted = {AlertState.SILENCED, AlertState.INHIBITED}
        return states if wanted <= set(states.values()) else None

    states = await wait_for(settled, what="silence and inhibition to apply")
    assert states == {
        "Noisy": AlertState.SILENCED,
        "Root": AlertState.ACTIVE,
        "Symptom": AlertState.INHIBITED,
        "Both": AlertState.SILENCED,  # silenced and inhibited: the operator's silence is named
    }
    by_name = {a.alertname: a for a in await am.alerts(filters=mine)}
    root = by_name["Root"].fingerprint
    assert (by_name["Noisy"].silenced_by, by_name["Noisy"].inhibited_by) == ((silence_id,), ())
    assert (by_name["Symptom"].silenced_by, by_name["Symptom"].inhibited_by) == ((), (root,))
    assert (by_name["Both"].silenced_by, by_name["Both"].inhibited_by) == ((silence_id,), (root,))

    async def names(
        *, active: bool = True, silenced: bool = True, inhibited: bool = True
    ) -> list[str]:
        alerts = await am.alerts(
            filters=mine, active=active, silenced=silenced, inhibited=inhibited
        )
        return sorted(a.alertname for a in alerts)

    assert await names(silenced=False) == ["Root", "Symptom"]
    assert await names(inhibited=False) == ["Noisy", "Root"]
    assert await names(active=False) == ["Both", "Noisy", "Symptom"]


async def test_alert_groups_follow_the_routing_tree(am: AlertmanagerClient, run: str) -> None:
    await am.post_alerts(
        [
            alert(run, "ServiceDown", "critical", service="payments", instance="a"),
            alert(run, "ServiceDown", "critical", service="payments", instance="b"),
            alert(run, "ServiceDown", "warning", service="search"),
        ]
    )
    expected = [
        ("critical", (("alertname", "ServiceDown"), ("service", "payments")), 2, "prod"),
        ("warning", (("alertname", "ServiceDown"), ("service", "search")), 1, "prod"),
    ]

    async def grouped() -> list[AlertGroup] | None:
        # The dispatcher groups posted alerts asynchronously: wait until all three are placed.
        groups = await am.alert_groups(filters=[Matcher("run", run)])
        summary = sorted(
            (g.receiver, tuple(sorted(g.labels.items())), len(g.alerts), g.cluster) for g in groups
        )
        return groups if summary == expected else None

    groups = await wait_for(grouped, what="the three alerts in their two groups")
    payments = next(g for g in groups if g.receiver == "critical")
    assert sorted(a.labels["instance"] for a in payments.alerts) == ["a", "b"]
    assert all(a.state == AlertState.ACTIVE and a.cluster == "prod" for a in payments.alerts)


async def test_silence_lifecycle_create_extend_replace_expire(
    am: AlertmanagerClient, run: str
) -> None:
    matchers = [Matcher("run", run), Matcher("service", "pay.*", is_regex=True)]
    silence_id = await am.create_silence(
        matchers,
        starts_at=soon(),
        ends_at=soon(60),
        created_by="nina@example.com",
        comment="deploy",
    )
    created = await am.silence(silence_id)
    assert created.id == silence_id
    assert created.matchers == tuple(matchers)
    assert created.state == SilenceState.ACTIVE
    assert created.created_by == "nina@example.com"
    assert created.comment == "deploy"
    assert created.cluster == "prod"
    assert created.updated_at is not None
    assert created.starts_at.tzinfo == UTC
    assert created.ends_at.tzinfo == UTC
    assert silence_id in [s.id for s in await am.silences()]
    assert [s.id for s in await am.silences(filters=[Matcher("run", run)])] == [silence_id]

    # 0.25 updates an active silence in place when only its end or comment changes.
    new_end = created.ends_at + timedelta(hours=1)
    assert await am.update_silence(created, ends_at=new_end) == silence_id
    extended = await am.silence(silence_id)
    assert abs(extended.ends_at - new_end) < timedelta(milliseconds=1)
    assert extended.state == SilenceState.ACTIVE
    assert await am.update_silence(extended, ends_at=new_end, comment="longer") == silence_id
    assert (await am.silence(silence_id)).comment == "longer"

    # Changing the matchers replaces it: a new id, and the old silence is expired.
    changed = replace(extended, matchers=(*extended.matchers, Matcher("env", "prod")))
    new_id = await am.update_silence(changed, ends_at=new_end)
    assert new_id != silence_id
    assert (await am.silence(silence_id)).state == SilenceState.EXPIRED
    replacement = await am.silence(new_id)
    assert replacement.state == SilenceState.ACTIVE
    assert replacement.matchers == changed.matchers

    await am.expire_silence(new_id)
    expired = await am.silence(new_id)
    assert expired.state == SilenceState.EXPIRED
    assert expired.ends_at <= soon()
    # Expiring again is accepted by 0.25 (no error), so a retried expire does no harm.
    await am.expire_silence(new_id)

    # Updating an expired silence cannot revive it: Alertmanager answers with a new id.
    revived = await am.update_silence(expired, ends_at=soon(30))
    assert revived != new_id
    assert (await am.silence(revived)).state == SilenceState.ACTIVE
    await am.expire_silence(revived)


async def test_a_silence_can_start_later(am: AlertmanagerClient, run: str) -> None:
    silence_id = await am.create_silence(
        [Matcher("run", run)],
        starts_at=soon(60),
        ends_at=soon(120),
        created_by="tester",
        comment="tomorrow's window",
    )
    pending = await am.silence(silence_id)
    assert pending.state == SilenceState.PENDING
    await am.expire_silence(silence_id)


async def test_bad_silences_fail_with_the_servers_words(am: AlertmanagerClient, run: str) -> None:
    with pytest.raises(ProviderError) as caught:
        await am.create_silence(
            [Matcher("run", run)],
            starts_at=soon(),
            ends_at=soon(-10),
            created_by="tester",
            comment="ends before it starts",
        )
    assert caught.value.status == 400
    assert not caught.value.retryable
    assert "start time must be before end time" in caught.value.message

    with pytest.raises(ProviderError) as caught:
        await am.create_silence(
            [Matcher("run", "(", is_regex=True)],
            starts_at=soon(),
            ends_at=soon(10),
            created_by="tester",
            comment="bad regex",
        )
    assert caught.value.status == 400
    assert "invalid regular expression" in caught.value.message


async def test_unknown_silences_are_final_errors(server: AlertmanagerProcess) -> None:
    unknown = str(uuid.uuid4())
    clock = FastClock()
    async with httpx.AsyncClient(timeout=5.0) as http:
        am = AlertmanagerClient("prod-a", server.url, http, clock=clock)
        with pytest.raises(ProviderError) as caught:
            await am.silence(unknown)
        assert caught.value.status == 404
        assert caught.value.message == f"silence {unknown} not found"
        # 0.25 answers DELETE of an unknown id with a 500; it must not be retried as an outage.
        with pytest.raises(ProviderError) as caught:
            await am.expire_silence(unknown)
        assert caught.value.status == 500
        assert not caught.value.retryable
        assert caught.value.message == f"silence {unknown} not found"
        assert clock.sleeps == []


async def test_credentials_are_sent_but_never_shown(server: AlertmanagerProcess) -> None:
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request.headers.get("authorization", ""))

    auth = AlertmanagerAuth(bearer_token="s3cret-token-value")
    assert "s3cret" not in repr(auth)
    async with httpx.AsyncClient(timeout=5.0, event_hooks={"request": [record]}) as http:
        am = AlertmanagerClient("prod-a", server.url, http, clock=SystemClock(), auth=auth)
        await am.receivers()
        with pytest.raises(ProviderError) as caught:
            await am.alerts(filters=[Matcher("x", "(", is_regex=True)])
    assert seen == ["Bearer s3cret-token-value"] * 2
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(caught.value)


async def test_credentials_in_the_url_become_basic_auth(server: AlertmanagerProcess) -> None:
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request.headers.get("authorization", ""))

    with_userinfo = server.url.replace("http://", "http://ops:pa%40ss-word-1@")
    async with httpx.AsyncClient(timeout=5.0, event_hooks={"request": [record]}) as http:
        am = AlertmanagerClient("prod-a", with_userinfo, http, clock=SystemClock())
        assert am.url == server.url
        assert "ss-word" not in repr(am)
        assert await am.receivers()
    expected = base64.b64encode(b"ops:pa@ss-word-1").decode()
    assert seen == [f"Basic {expected}"]


async def test_a_peer_that_is_down_is_a_retryable_error() -> None:
    clock = FastClock()
    async with httpx.AsyncClient(timeout=2.0) as http:
        # A port taken from a closed socket: nothing listens there.
        am = AlertmanagerClient("prod-b", f"http://127.0.0.1:{free_port()}", http, clock=clock)
        with pytest.raises(ProviderError) as caught:
            await am.alerts()
    assert caught.value.retryable
    assert caught.value.message == "connection refused"
    assert len(clock.sleeps) == 1  # a read tries twice; the next poll is the next try


async def test_an_invalid_url_fails_each_call_not_the_constructor() -> None:
    async with httpx.AsyncClient() as http:
        am = AlertmanagerClient("prod-a", "http://[::1", http, clock=FastClock())
        with pytest.raises(ProviderError) as caught:
            await am.status()
    assert str(caught.value) == "alertmanager prod-a: invalid URL"


async def test_an_outage_is_never_mistaken_for_an_unknown_silence() -> None:
    def no_dns(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known")

    clock = FastClock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(no_dns)) as http:
        am = AlertmanagerClient("prod-a", "http://am.invalid", http, clock=clock)
        for call in (am.silence, am.expire_silence):
            with pytest.raises(ProviderError) as caught:
                await call(str(uuid.uuid4()))
            assert caught.value.message == "host not found"
            assert caught.value.retryable
    assert len(clock.sleeps) == 1 + 2  # GET tries twice, DELETE three times


async def test_engine_actions_carry_out_silences_on_the_real_binary(
    am: AlertmanagerClient, run: str
) -> None:
    """The engine's action executors (engine/actions.py) drive this client as intended."""
    await am.post_alerts([alert(run, "DiskFull", "critical", service="db")])

    def peers_of(cluster: str) -> list[AlertmanagerClient]:
        return {"prod": [am]}[cluster]

    actions = AlertmanagerActions(
        peers_of,
        lambda cluster: [],
        SystemClock(),
        "nina@example.com",
    )
    request = ActionRequest(
        SILENCE_CREATE,
        "",
        {
            "cluster": "prod",
            "matchers": [f'run="{run}"', 'alertname="DiskFull"'],
            "duration_seconds": 600,
            "comment": "disk cleanup",
        },
    )
    created = await actions.run("a1b2c3", request)
    silence_id = created.data["silence_id"]
    silence = await am.silence(silence_id)
    assert silence.comment == "disk cleanup [oncall-tui:a1b2c3]"
    assert silence.created_by == "nina@example.com"
    # A retry of the same action finds the silence it already made.
    again = await actions.run("a1b2c3", request)
    assert again.data["silence_id"] == silence_id

    extended = await actions.run(
        "d4e5f6", ActionRequest(SILENCE_EXTEND, f"prod/{silence_id}", {"duration_seconds": 3600})
    )
    assert extended.data["new_silence_id"] == silence_id  # 0.25 extends in place
    assert (await am.silence(silence_id)).ends_at > silence.ends_at + timedelta(minutes=59)

    await actions.run("0a0b0c", ActionRequest(SILENCE_EXPIRE, f"prod/{silence_id}"))
    assert (await am.silence(silence_id)).state == SilenceState.EXPIRED
    # Expiring again is done, not failed; extending an expired silence is refused.
    await actions.run("0a0b0d", ActionRequest(SILENCE_EXPIRE, f"prod/{silence_id}"))
    with pytest.raises(ActionRejected):
        await actions.run(
            "0a0b0e", ActionRequest(SILENCE_EXTEND, f"prod/{silence_id}", {"duration_seconds": 60})
        )


async def test_sandbox_config_routes_to_pagerduty_opsgenie_and_our_webhook(
    am_binary: str, tmp_path: Path
) -> None:
    """alertmanager_config_yaml, loaded by the real binary, notifies where the sandbox expects."""
    received: list[tuple[str, str, dict[str, Any]]] = []

    async def capture(request: Request) -> Response:
        body = json.loads(await request.body())
        received.append((request.url.path, request.headers.get("authorization", ""), body))
        return JSONResponse({"status": "success", "message": "ok", "dedup_key": "x"}, 202)

    app = Starlette(routes=[Route("/{path:path}", capture, methods=["POST"])])
    server = WebhookServer(app, "127.0.0.1", 0)
    await server.start()
    try:
        base = f"http://{server.address}"
        config = alertmanager_config_yaml(
            webhook_url=f"{base}/webhooks/alertmanager",
            webhook_token="hook-token-123",
            pagerduty_events_url=f"{base}/pd",
            opsgenie_url=f"{base}/og",
            pagerduty_routing_key="R" * 32,
            opsgenie_api_key="og-key-123",
        )
        async with (
            running_alertmanager(am_binary, tmp_path / "am", config) as process,
            httpx.AsyncClient(timeout=5.0) as http,
        ):
            am = AlertmanagerClient("sandbox", process.url, http, clock=SystemClock())
            run = uuid.uuid4().hex[:12]
            await am.post_alerts(
                [alert(run, "PaymentsDown", "critical"), alert(run, "DiskSlow", "warning")]
            )

            async def all_three() -> set[str]:
                paths = {path for path, _auth, _body in received}
                wanted = {"/webhooks/alertmanager", "/pd/v2/enqueue", "/og/v2/alerts"}
                return paths if wanted <= paths else set()

            await wait_for(all_three, what="notifications to reach the three receivers")
    finally:
        await server.stop()
    by_path: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for path, auth, body in received:
        by_path.setdefault(path, []).append((auth, body))
    auth, event = by_path["/pd/v2/enqueue"][0]
    assert event["routing_key"] == "R" * 32
    assert event["event_action"] == "trigger"
    assert "PaymentsDown" in json.dumps(event)
    auth, og_alert = by_path["/og/v2/alerts"][0]
    assert auth == "GenieKey og-key-123"
    assert "DiskSlow" in json.dumps(og_alert)
    hooks = by_path["/webhooks/alertmanager"]
    assert {auth for auth, _body in hooks} == {"Bearer hook-token-123"}
    assert {body["receiver"] for _auth, body in hooks} == {"critical", "warning"}
    assert all(body["version"] == "4" for _auth, body in hooks)


async def test_start_failure_reports_the_binarys_complaint(am_binary: str, tmp_path: Path) -> None:
    process = AlertmanagerProcess(am_binary, tmp_path / "bad", "route: [not, a, mapping]\n")
    with pytest.raises(AlertmanagerStartError) as caught:
        await process.start()
    assert "exited with status" in str(caught.value)
    assert "its stderr ends with" in str(caught.value)
    assert "yaml" in str(caught.value).lower()
    assert not process.running
    assert (tmp_path / "bad" / "alertmanager.stderr.log").exists()


async def test_extra_environment_reaches_the_process(am_binary: str, tmp_path: Path) -> None:
    # The benchmarks give Alertmanager one core this way (GOMAXPROCS).
    async with running_alertmanager(
        am_binary, tmp_path / "am", extra_env={"GOMAXPROCS": "1"}
    ) as process:
        raw = await asyncio.to_thread(Path(f"/proc/{process.pid}/environ").read_bytes)
        environ = raw.split(b"\0")
    assert b"GOMAXPROCS=1" in environ
    assert any(entry.startswith(b"PATH=") for entry in environ)  # added to, not replacing


async def test_stop_ends_the_process_by_pid(am_binary: str, tmp_path: Path) -> None:
    async with running_alertmanager(am_binary, tmp_path / "am") as process:
        pid = process.pid
        assert pid is not None
        assert process.running
        os.kill(pid, 0)  # alive: signal 0 only checks
    assert not process.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped
    await process.stop()  # stopping twice is harmless
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=1.0) as http:
            await http.get(f"{process.url}/-/ready")


async def test_every_exchange_matches_the_published_v025_spec(
    server: AlertmanagerProcess, run: str
) -> None:
    """Each request the client sends and each answer it reads, errors included, per the spec."""
    checker = AmSpecChecker.load()
    async with httpx.AsyncClient(timeout=5.0, event_hooks={"response": [checker.hook]}) as http:
        am = AlertmanagerClient("prod-a", server.url, http, clock=FastClock())
        await am.status()
        await am.receivers()
        await am.post_alerts([alert(run, "SpecCheck", "critical", service="s")])
        mine = [Matcher("run", run)]
        await am.alerts(filters=mine, unprocessed=False, receiver="critical")
        await am.alert_groups(filters=mine, active=True, silenced=False)
        silence_id = await am.create_silence(
            mine, starts_at=soon(), ends_at=soon(10), created_by="spec", comment="check"
        )
        silence = await am.silence(silence_id)
        await am.update_silence(silence, ends_at=soon(20), comment="longer")
        await am.silences(filters=mine)
        await am.expire_silence(silence_id)
        for failing in (
            am.silence(str(uuid.uuid4())),
            am.expire_silence(str(uuid.uuid4())),
            am.create_silence(mine, starts_at=soon(), ends_at=soon(-5), created_by="", comment=""),
        ):
            with pytest.raises(ProviderError):
                await failing
    assert checker.problems == []
    assert set(checker.checked) == {
        "GET /status -> 200",
        "GET /receivers -> 200",
        "POST /alerts -> 200",
        "GET /alerts -> 200",
        "GET /alerts/groups -> 200",
        "POST /silences -> 200",
        "GET /silence/{silenceID} -> 200",
        "GET /silences -> 200",
        "DELETE /silence/{silenceID} -> 200",
        "GET /silence/{silenceID} -> 404",
        "DELETE /silence/{silenceID} -> 500",
        "POST /silences -> 400",
    }


async def test_the_spec_checker_notices_what_the_spec_does_not_allow() -> None:
    """The checker above would catch a client or server straying from the spec."""
    checker = AmSpecChecker.load()
    bad_groups = httpx.Request("GET", "http://am/api/v2/alerts/groups?unprocessed=true")
    checker.check(bad_groups, httpx.Response(200, json=[{"labels": {}, "alerts": []}]))
    bad_silence = httpx.Request(
        "POST", "http://am/api/v2/silences", json={"matchers": [], "comment": "x"}
    )
    checker.check(bad_silence, httpx.Response(200, json={"silenceID": 5}))
    problems = "\n".join(checker.problems)
    assert "query parameter 'unprocessed' is not in the spec" in problems
    assert "'receiver' is a required property" in problems
    assert "'startsAt' is a required property" in problems
    assert "matchers: [] " in problems  # minItems: 1 (wording varies by jsonschema version)
    assert "5 is not of type 'string'" in problems


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            httpx.Response(200, text="<html>Sign in</html>", headers={"Content-Type": "text/html"}),
            "answer from /api/v2/alerts is not JSON",
        ),
        (httpx.Response(200, json={"alerts": []}), "unexpected answer for alerts: not a list"),
        (
            httpx.Response(200, json=[{"labels": {}, "status": {"state": "active"}}]),
            "unexpected answer for alerts: KeyError 'fingerprint'",
        ),
    ],
)
async def test_an_answer_of_the_wrong_shape_is_a_clear_error(
    answer: httpx.Response, message: str
) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _r: answer)) as http:
        am = AlertmanagerClient("prod-a", "http://am.test", http, clock=FastClock())
        with pytest.raises(ProviderError) as caught:
            await am.alerts()
    assert caught.value.message == message
    assert str(caught.value) == f"alertmanager prod-a: {message}"


async def test_json_that_only_pythons_decoder_reads_still_polls() -> None:
    """An unpaired surrogate escape is valid JSON to Python but not to the fast decoder: the
    answer is decoded whole instead, and the next poll works the same way."""
    item = {
        "fingerprint": "00000000000000aa",
        "labels": {"alertname": "Odd", "note": "half \ud800 pair"},
        "annotations": {},
        "startsAt": "2026-11-23T10:00:00.123456789Z",
        "updatedAt": "2026-11-23T10:00:01Z",
        "endsAt": "2026-11-23T11:00:00Z",
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
        "receivers": [{"name": "hook"}],
    }
    body = json.dumps([item])  # ensure_ascii: the surrogate is written as an escape
    assert "\\ud800" in body
    answer = httpx.Response(200, text=body, headers={"Content-Type": "application/json"})
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _r: answer)) as http:
        am = AlertmanagerClient("prod-a", "http://am.test", http, clock=FastClock())
        for _ in range(2):
            (alert,) = await am.alerts()
            assert alert.labels["note"] == "half \ud800 pair"
            assert alert.starts_at.microsecond == 123456


CHILD = """
import asyncio, sys
from pathlib import Path
from oncall_tui.sandbox.alertmanager_process import AlertmanagerProcess, alertmanager_config_yaml

async def main():
    config = alertmanager_config_yaml(webhook_url=None)
    process = AlertmanagerProcess(sys.argv[1], Path(sys.argv[2]), config)
    await process.start()
    print(process.pid, process.url, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
async def test_alertmanager_does_not_outlive_a_killed_parent(
    am_binary: str, tmp_path: Path
) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        am_binary,
        str(tmp_path / "am"),
        stdout=asyncio.subprocess.PIPE,
    )
    am_pid = 0
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), timeout=20)
        pid_text, url = line.decode().split()
        am_pid = int(pid_text)
        async with httpx.AsyncClient(timeout=1.0) as http:
            assert (await http.get(f"{url}/-/ready")).status_code == 200
            os.kill(child.pid, signal.SIGKILL)  # no chance to clean up
            await child.wait()

            async def gone() -> bool:
                try:
                    await http.get(f"{url}/-/ready")
                except httpx.TransportError:
                    return True  # refused, or cut off mid-answer while exiting
                return False

            await wait_for(gone, what="Alertmanager to exit with its parent")
        am_pid = 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        if am_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(am_pid, signal.SIGKILL)
