"""Alertmanager matcher syntax: parsing, matching label sets, and the alert filter.

The filter box accepts either matchers (`severity="critical",service=~"pay.*"`, with or
without braces) or free text, which matches any label or annotation value case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from oncall_tui.models import Alert, Matcher

_LABEL_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_MATCHER_RE = re.compile(
    rf"""\s*(?P<name>{_LABEL_NAME})\s*(?P<op>=~|!~|!=|=)\s*
    (?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^,}}\s"]*))\s*""",
    re.VERBOSE,
)


class MatcherSyntaxError(ValueError):
    pass


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """Parse `a="b", c=~"d.*"` (braces optional). Raises MatcherSyntaxError with the position."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    matchers: list[Matcher] = []
    pos = 0
    while pos < len(body):
        if not body[pos:].strip():
            break
        match = _MATCHER_RE.match(body, pos)
        if match is None:
            raise MatcherSyntaxError(f"cannot read a matcher at {body[pos : pos + 20]!r}")
        value = match.group("quoted")
        value = match.group("bare") or "" if value is None else re.sub(r"\\(.)", r"\1", value)
        op = match.group("op")
        matcher = Matcher(
            name=match.group("name"),
            value=value,
            is_regex=op in ("=~", "!~"),
            is_equal=op in ("=", "=~"),
        )
        if matcher.is_regex:
            _compile(matcher.value)
        matchers.append(matcher)
        pos = match.end()
        if pos < len(body):
            if body[pos] != ",":
                raise MatcherSyntaxError(f"expected ',' at {body[pos : pos + 20]!r}")
            pos += 1
    if not matchers:
        raise MatcherSyntaxError("no matcher given")
    return tuple(matchers)


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    try:
        # Alertmanager anchors regex matchers at both ends.
        return re.compile(f"^(?:{pattern})$")
    except re.error as exc:
        raise MatcherSyntaxError(f"bad regular expression {pattern!r}: {exc}") from exc


def matcher_matches(matcher: Matcher, labels: Mapping[str, str]) -> bool:
    value = labels.get(matcher.name, "")
    if matcher.is_regex:
        hit = _compile(matcher.value).match(value) is not None
    else:
        hit = value == matcher.value
    return hit == matcher.is_equal


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(matcher_matches(m, labels) for m in matchers)


def looks_like_matchers(text: str) -> bool:
    stripped = text.strip()
    return bool(re.match(rf"^\{{?\s*{_LABEL_NAME}\s*(=~|!~|!=|=)", stripped))


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """What the operator typed in the filter box, compiled once."""

    text: str
    matchers: tuple[Matcher, ...] = ()
    error: str = ""

    @classmethod
    def parse(cls, text: str) -> AlertFilter:
        stripped = text.strip()
        if not stripped:
            return cls(text="")
        if looks_like_matchers(stripped):
            try:
                return cls(text=stripped, matchers=parse_matchers(stripped))
            except MatcherSyntaxError as exc:
                return cls(text=stripped, error=str(exc))
        return cls(text=stripped)

    @property
    def active(self) -> bool:
        return bool(self.text) and not self.error

    def matches(self, alert: Alert) -> bool:
        if not self.active:
            return True
        if self.matchers:
            return matches_all(self.matchers, alert.labels)
        needle = self.text.lower()
        for value in (*alert.labels.values(), *alert.annotations.values()):
            if needle in value.lower():
                return True
        return False


def stable_matchers(alert: Alert, stable_labels: Sequence[str]) -> tuple[Matcher, ...]:
    """The alert's stable labels as equality matchers; all its labels if it has none of them."""
    names = [name for name in stable_labels if alert.labels.get(name)]
    if not names:
        names = sorted(alert.labels)
    return tuple(Matcher(name, alert.labels[name]) for name in names)
