from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oncall_tui.matchers import AlertFilter, MatcherSyntaxError, matches_all, parse_matchers
from oncall_tui.models import Alert, AlertState, Matcher

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def alert(**labels: str) -> Alert:
    return Alert(
        fingerprint="f",
        labels=labels,
        annotations={"summary": "Payment latency is high"},
        starts_at=T0,
        updated_at=T0,
        ends_at=None,
        state=AlertState.ACTIVE,
    )


def test_parse_all_operators_with_and_without_braces() -> None:
    got = parse_matchers('{a="1", b!="2",c=~"x.*", d!~"y|z"}')
    assert [str(m) for m in got] == ['a="1"', 'b!="2"', 'c=~"x.*"', 'd!~"y|z"']
    assert parse_matchers('a="1"') == (Matcher("a", "1"),)


def test_quoted_values_keep_commas_and_escaped_quotes() -> None:
    (m,) = parse_matchers(r'summary="a, \"b\""')
    assert m.value == 'a, "b"'
    assert parse_matchers(str(m)) == (m,)


@pytest.mark.parametrize("text", ["", "=x", 'a="1" b="2"', 'a=~"("'])
def test_bad_matchers_are_rejected(text: str) -> None:
    with pytest.raises(MatcherSyntaxError):
        parse_matchers(text)


def test_regex_is_anchored_like_alertmanager() -> None:
    assert matches_all(parse_matchers('service=~"pay.*"'), {"service": "payment"})
    assert not matches_all(parse_matchers('service=~"pay"'), {"service": "payment"})
    # a missing label matches the empty string, as in Alertmanager
    assert matches_all(parse_matchers('team=""'), {"service": "x"})
    assert matches_all(parse_matchers('team!~"ops"'), {"service": "x"})


def test_filter_matchers_and_free_text() -> None:
    a = alert(alertname="Latency", severity="critical", service="payment")
    assert AlertFilter.parse('severity="critical",service=~"pay.*"').matches(a)
    assert not AlertFilter.parse('severity="warning"').matches(a)
    assert AlertFilter.parse("LATENCY is").matches(a)  # free text searches annotations too
    assert not AlertFilter.parse("checkout").matches(a)
    broken = AlertFilter.parse('severity=~"("')
    assert broken.error
    assert broken.matches(a)
