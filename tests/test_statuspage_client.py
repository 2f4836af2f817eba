"""providers/statuspage.py against the fake Statuspage, every exchange checked against the spec.

The client talks to `FakeStatuspage` in-process through `httpx.ASGITransport`, wrapped in
`ValidatingTransport` with the published Statuspage spec: each request the client sends and each
answer the fake gives is validated (and checked for undocumented fields). Sleeps go through a
clock that returns at once, so back-off costs no time and is asserted exactly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from spec_check import SpecValidator, ValidatingTransport

from oncall_tui.clock import FrozenClock
from oncall_tui.models import Component, StatusIncident
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.statuspage import StatuspageClient
from oncall_tui.sandbox.fake_statuspage import FakeStatuspage

API_KEY = "sp-test-key-3f9a1c2b7d"
PAGE_ID = "pg7k2m9x4q1w"
BASE = "http://statuspage.test"
COMPONENTS = {"payment-service": "cmppayment01", "search": "cmpsearch001"}
PAYMENT = COMPONENTS["payment-service"]
SEARCH = COMPONENTS["search"]


class InstantClock(FrozenClock):
    """Each sleep advances wall and monotonic time and returns at once; sleeps are recorded."""

    def __init__(self) -> None:
        super().__init__(datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


class OutageTransport(httpx.AsyncBaseTransport):
    """A proxy in front of the API that answers the next `count` requests with `status`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.count = 0
        self.status = 503
        self.lose_answers = 0  # forward the request, then drop its answer (a read timeout)
        self.ignore_page = False  # a server that answers page 1 whatever `page` says
        self.swallowed: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.count > 0:
            self.count -= 1
            self.swallowed.append(f"{request.method} {request.url.path}")
            return httpx.Response(self.status, text="upstream unavailable", request=request)
        if self.ignore_page:
            request.url = request.url.copy_remove_param("page")
        response = await self.inner.handle_async_request(request)
        if self.lose_answers > 0:
            self.lose_answers -= 1
            self.swallowed.append(f"{request.method} {request.url.path}")
            raise httpx.ReadTimeout("timed out", request=request)
        return response


@dataclass
class Harness:
    clock: InstantClock
    fake: FakeStatuspage
    transport: ValidatingTransport
    outage: OutageTransport
    client: StatuspageClient

    def sent(self, method: str = "") -> list[str]:
        return [
            f"{m} {p}" for m, p, _status in self.transport.exchanges if not method or m == method
        ]


@pytest.fixture
async def sp() -> AsyncIterator[Harness]:
    clock = InstantClock()
    fake = FakeStatuspage(clock=clock, api_key=API_KEY, page_id=PAGE_ID, components=COMPONENTS)
    validating = ValidatingTransport(
        httpx.ASGITransport(app=fake.app), SpecValidator.load("statuspage")
    )
    outage = OutageTransport(validating)
    async with httpx.AsyncClient(transport=outage, base_url=BASE) as http:
        client = StatuspageClient(f"{BASE}/v1", PAGE_ID, API_KEY, http, clock=clock)
        yield Harness(clock, fake, validating, outage, client)
    assert validating.violations == []


# -- components ------------------------------------------------------------------------------


async def test_components_are_read_page_by_page_until_a_short_page(sp: Harness) -> None:
    for number in range(1, 229):  # 230 components with the two seeded ones
        sp.fake.add_component(f"edge-{number:03d}")

    components = await sp.client.components()

    assert len(components) == 230
    assert components[:2] == [
        Component(id=PAYMENT, name="payment-service", status="operational"),
        Component(id=SEARCH, name="search", status="operational"),
    ]
    assert components[-1].name == "edge-228"
    assert len({c.id for c in components}) == 230
    pages = [e for e in sp.transport.exchanges if e[1].endswith("/components")]
    assert len(pages) == 3


async def test_a_full_last_page_costs_one_empty_page(sp: Harness) -> None:
    for number in range(98):  # exactly 100
        sp.fake.add_component(f"edge-{number}")

    assert len(await sp.client.components()) == 100
    assert len(sp.sent("GET")) == 2


async def test_component_groups_are_left_out_unless_asked_for(sp: Harness) -> None:
    group = sp.fake.add_component("Europe", group=True)
    sp.fake.add_component("eu-api", group_id=group)

    names = [c.name for c in await sp.client.components()]
    with_groups = [c.name for c in await sp.client.components(include_groups=True)]

    assert names == ["payment-service", "search", "eu-api"]
    assert with_groups == ["payment-service", "search", "Europe", "eu-api"]


async def test_update_component_sets_its_status(sp: Harness) -> None:
    component = await sp.client.update_component(SEARCH, "degraded_performance")

    assert component == Component(id=SEARCH, name="search", status="degraded_performance")
    assert sp.fake.component_status(SEARCH) == "degraded_performance"
    assert sp.sent("PATCH") == [f"PATCH /v1/pages/{PAGE_ID}/components/{SEARCH}"]


async def test_unknown_component_is_a_final_error(sp: Harness) -> None:
    with pytest.raises(ProviderError) as caught:
        await sp.client.update_component("nosuchcomp01", "major_outage")

    assert caught.value.status == 404
    assert not caught.value.retryable
    assert "could not be found" in caught.value.message


async def test_ids_stay_one_path_segment(sp: Harness) -> None:
    with pytest.raises(ProviderError) as caught:
        await sp.client.update_component(f"{SEARCH}/../{PAYMENT}?x", "major_outage")

    assert caught.value.status == 404
    assert sp.fake.component_status(SEARCH) == "operational"
    assert sp.fake.component_status(PAYMENT) == "operational"
    assert len(sp.transport.exchanges) == 1


async def test_unknown_status_is_refused_before_anything_is_sent(sp: Harness) -> None:
    with pytest.raises(ProviderError) as caught:
        await sp.client.update_component(SEARCH, "down")

    assert not caught.value.retryable
    assert "down" in caught.value.message
    assert sp.transport.exchanges == []


# -- incidents -------------------------------------------------------------------------------


async def test_create_incident_sets_components_and_becomes_unresolved(sp: Harness) -> None:
    incident = await sp.client.create_incident(
        name="Payments failing",
        status="investigating",
        body="We are investigating failed payments.",
        components={PAYMENT: "major_outage"},
        metadata={"oncall_tui": {"component": "payment-service"}},
    )

    assert incident == StatusIncident(
        id=incident.id,
        name="Payments failing",
        status="investigating",
        impact="critical",  # derived by the vendor from major_outage
        updated_at=sp.clock.now(),
        latest_update="We are investigating failed payments.",
        component_ids=(PAYMENT,),
    )
    assert sp.fake.component_status(PAYMENT) == "major_outage"
    assert await sp.client.unresolved_incidents() == [incident]
    detail = await sp.client.incident(incident.id)
    assert detail.metadata == {"oncall_tui": {"component": "payment-service"}}
    assert detail.components == (
        Component(id=PAYMENT, name="payment-service", status="major_outage"),
    )
    assert [(u.status, u.affected_components) for u in detail.updates] == [
        ("investigating", ((PAYMENT, "operational", "major_outage"),))
    ]
    assert sp.transport.exchanges[0][2] == 201


async def test_impact_given_overrides_the_derived_one(sp: Harness) -> None:
    incident = await sp.client.create_incident(
        name="Search slow",
        status="identified",
        body="Search is slow.",
        impact="minor",
        components={SEARCH: "partial_outage"},
    )

    assert incident.impact == "minor"
    assert incident.status == "identified"


async def test_updates_then_resolve_keep_the_public_history(sp: Harness) -> None:
    created = await sp.client.create_incident(
        name="Payments failing",
        status="investigating",
        body="Investigating.",
        components={PAYMENT: "major_outage"},
    )
    sp.clock.advance(60)
    identified = await sp.client.update_incident(
        created.id, status="identified", body="A bad deploy; rolling back."
    )
    sp.clock.advance(60)
    resolved = await sp.client.update_incident(
        created.id,
        status="resolved",
        body="Payments work again.",
        components={PAYMENT: "operational"},
    )

    assert identified.latest_update == "A bad deploy; rolling back."
    assert identified.updated_at == created.updated_at.replace(minute=1)
    assert resolved.status == "resolved"
    assert resolved.latest_update == "Payments work again."
    assert resolved.impact == "critical"  # an outage stays an outage in the history
    assert sp.fake.component_status(PAYMENT) == "operational"
    assert await sp.client.unresolved_incidents() == []

    detail = await sp.client.incident(created.id)
    assert [(u.status, u.body) for u in detail.updates] == [
        ("resolved", "Payments work again."),
        ("identified", "A bad deploy; rolling back."),
        ("investigating", "Investigating."),
    ]
    assert detail.updates[0].affected_components == ((PAYMENT, "major_outage", "operational"),)
    assert detail.resolved_at == sp.clock.now()
    assert detail.created_at == created.updated_at


async def test_renaming_posts_no_public_update(sp: Harness) -> None:
    created = await sp.client.create_incident(name="Slow", status="investigating", body="Slow.")

    renamed = await sp.client.update_incident(created.id, name="Search is slow")

    assert renamed.name == "Search is slow"
    assert len((await sp.client.incident(created.id)).updates) == 1


async def test_an_empty_update_is_refused_before_anything_is_sent(sp: Harness) -> None:
    with pytest.raises(ProviderError, match="nothing to update"):
        await sp.client.update_incident("whatever0001")
    with pytest.raises(ProviderError, match="name"):
        await sp.client.create_incident(name="  ", status="investigating", body="x")
    with pytest.raises(ProviderError, match="resolving"):
        await sp.client.create_incident(name="x", status="resolving", body="x")
    with pytest.raises(ProviderError, match="25000"):
        await sp.client.update_incident("whatever0001", body="x" * 25001)
    assert sp.transport.exchanges == []


async def test_incidents_newest_first_limited_and_searched(sp: Harness) -> None:
    for number in range(105):
        sp.clock.advance(1)
        await sp.client.create_incident(
            name=f"Incident {number}",
            status="investigating",
            body="Search results are stale." if number % 10 == 0 else "Payments are slow.",
        )
    sp.transport.exchanges.clear()

    latest = await sp.client.incidents()
    many = await sp.client.incidents(limit=102)
    stale = await sp.client.incidents(query="stale", limit=100)

    assert [i.name for i in latest] == [f"Incident {n}" for n in range(104, 79, -1)]
    assert len(many) == 102
    assert many[-1].name == "Incident 3"
    assert [i.name for i in stale] == [f"Incident {n}" for n in range(100, -1, -10)]
    # 25 fit one request, 102 take two (100 per page), the search one.
    assert len(sp.sent("GET")) == 4


async def test_unresolved_incidents_are_read_past_the_first_page(sp: Harness) -> None:
    for number in range(105):
        sp.clock.advance(1)
        await sp.client.create_incident(name=f"I{number}", status="investigating", body=".")

    assert len(await sp.client.unresolved_incidents()) == 105


# -- failures --------------------------------------------------------------------------------


async def test_wrong_key_is_a_final_error_without_the_key(sp: Harness) -> None:
    async with httpx.AsyncClient(transport=sp.transport, base_url=BASE) as http:
        wrong = StatuspageClient(f"{BASE}/v1", PAGE_ID, "sp-wrong-key-0000", http, clock=sp.clock)
        with pytest.raises(ProviderError) as caught:
            await wrong.components()

    assert caught.value.status == 401
    assert not caught.value.retryable
    assert "sp-wrong-key-0000" not in str(caught.value)
    assert "statuspage" in str(caught.value)
    assert "sp-wrong-key-0000" not in repr(wrong)


@pytest.mark.parametrize("status", [420, 429])
async def test_rate_limited_answers_are_retried(sp: Harness, status: int) -> None:
    sp.fake.fail_next(2, status=status)

    incident = await sp.client.create_incident(name="Slow", status="investigating", body="Slow.")

    assert incident.name == "Slow"
    assert len(sp.clock.sleeps) == 2
    assert sp.fake.incident_ids == [incident.id]
    assert [code for _m, _p, code in sp.transport.exchanges] == [status, status, 201]


async def test_rate_limited_until_retries_run_out_is_retryable_for_the_outbox(
    sp: Harness,
) -> None:
    sp.fake.fail_next(3)

    with pytest.raises(ProviderError) as caught:
        await sp.client.update_component(SEARCH, "major_outage")

    assert caught.value.status == 420
    assert caught.value.retryable
    assert "rate limited" in caught.value.message
    assert sp.fake.component_status(SEARCH) == "operational"


async def test_polls_over_the_vendor_rate_limit_get_420(sp: Harness) -> None:
    sp.fake.rate_limit = True
    sp.client.read_attempts = 1
    for _ in range(60):
        await sp.client.components()

    with pytest.raises(ProviderError) as caught:
        await sp.client.components()
    sp.clock.advance(60)
    assert len(await sp.client.components()) == 2

    assert caught.value.status == 420
    assert caught.value.retryable


async def test_create_is_not_repeated_after_a_5xx_but_stays_retryable(sp: Harness) -> None:
    sp.outage.count = 1

    with pytest.raises(ProviderError) as caught:
        await sp.client.create_incident(name="Slow", status="investigating", body="Slow.")

    # The incident may exist after a 5xx: sending it again could post it twice.
    assert sp.outage.swallowed == [f"POST /v1/pages/{PAGE_ID}/incidents"]
    assert caught.value.status == 503
    assert caught.value.retryable


async def test_reads_are_retried_after_a_5xx(sp: Harness) -> None:
    sp.outage.count = 1

    assert len(await sp.client.components()) == 2
    assert len(sp.outage.swallowed) == 1
    assert len(sp.clock.sleeps) == 1


async def test_a_lost_answer_to_a_status_change_is_sent_again(sp: Harness) -> None:
    sp.outage.lose_answers = 1

    component = await sp.client.update_component(SEARCH, "partial_outage")

    assert component.status == "partial_outage"
    assert len(sp.sent("PATCH")) == 2


async def test_a_lost_answer_to_an_update_is_not_posted_twice(sp: Harness) -> None:
    created = await sp.client.create_incident(name="Slow", status="investigating", body="Slow.")
    sp.outage.lose_answers = 1

    with pytest.raises(ProviderError) as caught:
        await sp.client.update_incident(created.id, body="Still slow.")

    assert caught.value.retryable
    assert len((await sp.client.incident(created.id)).updates) == 2


async def test_paging_stops_when_the_server_ignores_the_page(sp: Harness) -> None:
    for number in range(150):
        sp.fake.add_component(f"edge-{number}")
    sp.outage.ignore_page = True

    components = await sp.client.components()

    assert len(components) == 100  # what the server gives, once, not forever
    assert len(sp.sent("GET")) == 2
