"""Configuration: the documented models, `${VAR}` expansion, and one-line errors.

Every error names the file, the key path and what was expected, so that an operator can fix a
config at 2 AM without reading a traceback. The models are msgspec structs: validating them costs
microseconds and importing msgspec a few milliseconds, where a pydantic version added about 0.15 s
to every start of the dashboard.
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import msgspec
import yaml

DEFAULT_CONFIG_PATH = Path("~/.config/oncall-tui/config.yaml")
DEFAULT_LOG_PATH = "~/.local/state/oncall-tui/log.db"
CONFIG_ENV = "ONCALL_TUI_CONFIG"

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class ConfigError(Exception):
    """A configuration problem, worded for the operator; str() is the whole message."""


def parse_duration(value: object) -> float:
    """`5s`, `10m`, `1.5h`, `250ms` or a bare number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 5s, 10m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION_RE.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError("expected a duration such as 5s, 10m or 1h")
    if seconds <= 0:
        raise ValueError("expected a duration greater than zero")
    return seconds


class Duration(float):
    """Seconds, written in the config as `5s`, `10m`, `1.5h`, `250ms` or a bare number."""


class SecretStr:
    """A secret from the config: never shown by repr() or str(), read with get_secret_value()."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _decode_custom(kind: type, value: Any) -> Any:
    if kind is Duration:
        return Duration(parse_duration(value))
    if kind is SecretStr:
        if not isinstance(value, str):
            raise TypeError(f"Expected `str`, got `{type(value).__name__}`")
        return SecretStr(value)
    raise NotImplementedError(kind)


class _FieldError(ValueError):
    """A check across one key of a section: the message is `key: problem`."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")


class _Section(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    def with_changes(self, **changes: Any) -> Self:
        """A copy with some keys replaced, e.g. `config.with_changes(read_only=True)`."""
        return msgspec.structs.replace(self, **changes)


class OperatorConfig(_Section, frozen=True):
    name: str = ""
    """Shown in the header and written as the actor."""
    email: str = ""
    """PagerDuty `From` header, Alertmanager silence `createdBy`, log actor."""


class BasicAuth(_Section, frozen=True):
    username: str
    password: SecretStr


class AlertmanagerAuth(_Section, frozen=True):
    bearer_token: SecretStr | None = None
    basic: BasicAuth | None = None

    def __post_init__(self) -> None:
        if self.bearer_token is not None and self.basic is not None:
            raise ValueError("give either bearer_token or basic, not both")


_HTTP_URL_RE = re.compile(r"^https?://[^/\s]+")


class AlertmanagerConfig(_Section, frozen=True):
    name: str
    """Shown in the header; unique among alertmanagers."""
    url: str
    """Base URL, e.g. http://alertmanager-0:9093; a trailing slash is dropped."""
    cluster: str = ""
    """Peers of one HA cluster share this name; their alerts are deduplicated."""
    auth: AlertmanagerAuth | None = None

    def __post_init__(self) -> None:
        if not _HTTP_URL_RE.match(self.url):
            raise _FieldError("url", "expected an http:// or https:// URL")
        # Frozen structs are set once here, as their constructor would.
        msgspec.structs.force_setattr(self, "url", self.url.rstrip("/"))

    @property
    def cluster_name(self) -> str:
        return self.cluster or self.name


class PagerDutyConfig(_Section, frozen=True):
    api_token: SecretStr | None = None
    """REST API v2 token."""
    routing_key: SecretStr | None = None
    """Events API v2 key."""
    webhook_secret: SecretStr | None = None
    """Webhooks v3 secret."""
    escalation_policy_ids: list[str] = []
    service_ids: list[str] = []
    api_url: str = "https://api.pagerduty.com"
    events_url: str = "https://events.pagerduty.com"


class OpsgenieConfig(_Section, frozen=True):
    api_key: SecretStr | None = None
    api_url: str = "https://api.opsgenie.com"
    schedules: list[str] = []


class AutomationConfig(_Section, frozen=True):
    enabled: bool = False
    match: dict[str, str] = msgspec.field(default_factory=lambda: {"severity": "critical"})
    component_label: str = "service"
    impact: Literal["none", "minor", "major", "critical"] = "major"
    component_status: Literal[
        "operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"
    ] = "major_outage"
    resolve_after: Duration = Duration(300.0)


class StatuspageConfig(_Section, frozen=True):
    api_key: SecretStr | None = None
    page_id: str = ""
    api_url: str = "https://api.statuspage.io/v1"
    components: dict[str, str] = {}
    automation: AutomationConfig = msgspec.field(default_factory=AutomationConfig)
    templates: dict[str, str] = {}
    """Named message templates for status updates."""


class WebhooksConfig(_Section, frozen=True):
    listen: str = "127.0.0.1:9099"
    """host:port of the listener."""
    alertmanager_token: SecretStr | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise _FieldError("listen", "expected host:port, e.g. 127.0.0.1:9099")

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class PollConfig(_Section, frozen=True):
    alerts: Duration = Duration(5.0)
    incidents: Duration = Duration(10.0)
    oncall: Duration = Duration(60.0)
    statuspage: Duration = Duration(30.0)


class LogConfig(_Section, frozen=True):
    path: str = DEFAULT_LOG_PATH

    @property
    def file(self) -> Path:
        return Path(self.path).expanduser()


class NotifyConfig(_Section, frozen=True):
    bell: bool = True
    desktop: bool = True
    min_severity: Literal["critical", "error", "warning", "info"] = "critical"
    only_when_on_call: bool = False


class AcknowledgeConfig(_Section, frozen=True):
    silence_alerts: bool = True
    stable_labels: list[str] = msgspec.field(
        default_factory=lambda: ["alertname", "service", "instance"]
    )


class TestAlertPreset(_Section, frozen=True):
    name: str
    labels: dict[str, str]
    annotations: dict[str, str] = {}

    def __post_init__(self) -> None:
        if "alertname" not in self.labels:
            raise _FieldError("labels", "labels need an alertname")


class Config(_Section, frozen=True, kw_only=True):
    operator: OperatorConfig = msgspec.field(default_factory=OperatorConfig)
    alertmanagers: Annotated[list[AlertmanagerConfig], msgspec.Meta(min_length=1)]
    pagerduty: PagerDutyConfig | None = None
    opsgenie: OpsgenieConfig | None = None
    statuspage: StatuspageConfig | None = None
    webhooks: WebhooksConfig = msgspec.field(default_factory=WebhooksConfig)
    poll: PollConfig = msgspec.field(default_factory=PollConfig)
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    notify: NotifyConfig = msgspec.field(default_factory=NotifyConfig)
    acknowledge: AcknowledgeConfig = msgspec.field(default_factory=AcknowledgeConfig)
    read_only: bool = False
    keys: dict[str, str] = {}
    """binding id -> key"""
    test_alerts: list[TestAlertPreset] = []

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for item in self.alertmanagers:
            if item.name in seen:
                raise _FieldError("alertmanagers", f"alertmanager name {item.name!r} is used twice")
            seen.add(item.name)

    @property
    def actor(self) -> str:
        return self.operator.email or self.operator.name or "oncall-tui"

    def secrets(self) -> list[str]:
        """Every secret value, so that printers and the log can redact them."""
        found: list[str] = []

        def walk(node: object) -> None:
            if isinstance(node, SecretStr):
                if value := node.get_secret_value():
                    found.append(value)
            elif isinstance(node, msgspec.Struct):
                for name in node.__struct_fields__:
                    walk(getattr(node, name))
            elif isinstance(node, list | tuple):
                for item in node:
                    walk(item)
            elif isinstance(node, dict):
                for item in node.values():
                    walk(item)

        walk(self)
        return found


_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(node: Any, env: Mapping[str, str], path: str, source: str) -> Any:
    """Replace `${VAR}` in every string value; YAML is parsed first so values cannot inject YAML."""
    if isinstance(node, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                where = path or "(top level)"
                raise ConfigError(f"{source}: {where}: environment variable {name} is not set")
            return env[name]

        return _VAR_RE.sub(replace, node)
    if isinstance(node, list):
        return [_expand(item, env, f"{path}[{i}]", source) for i, item in enumerate(node)]
    if isinstance(node, dict):
        return {
            key: _expand(value, env, f"{path}.{key}" if path else str(key), source)
            for key, value in node.items()
        }
    return node


_PROBLEM_RE = re.compile(
    r"^(?P<problem>.*?)(?: - at (?P<in_key>`key` in )?`\$(?P<path>[^`]*)`)?$", re.DOTALL
)
_MISSING_RE = re.compile(r"^Object missing required field `(?P<key>[^`]+)`$")
_UNKNOWN_RE = re.compile(r"^Object contains unknown field `(?P<key>[^`]+)`$")
_KEY_PROBLEM_RE = re.compile(r"^(?P<key>[a-z_]+): (?P<problem>.+)$", re.DOTALL)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _located(message: str) -> tuple[str, str]:
    """msgspec's `problem - at `$.a[0].b`` as ("a[0].b", problem in the config's words)."""
    match = _PROBLEM_RE.match(message)
    assert match is not None  # the pattern matches any text
    problem = match.group("problem")
    path = (match.group("path") or "").lstrip(".")
    if missing := _MISSING_RE.match(problem):
        return _join(path, missing.group("key")), "required key is missing"
    if unknown := _UNKNOWN_RE.match(problem):
        return _join(path, unknown.group("key")), "unknown key"
    if keyed := _KEY_PROBLEM_RE.match(problem):  # a _FieldError raised by a section's check
        return _join(path, keyed.group("key")), keyed.group("problem")
    if problem.startswith("Invalid enum value ") and (choices := _choices_at(path)):
        return (
            path,
            f"invalid value {problem.removeprefix('Invalid enum value ')} (one of: {choices})",
        )
    problem = problem[:1].lower() + problem[1:]
    if match.group("in_key"):  # a key of the mapping at `path`, e.g. a number as a label name
        return path, f"a key: {problem}"
    if path.endswith("[...]"):  # msgspec does not name the key of a mapping's bad value
        return path.removesuffix("[...]"), f"a value: {problem}"
    return path, problem


_PATH_PART_RE = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[\d+\]")


def _choices_at(path: str) -> str:
    """The allowed values of the Literal key at `path` (e.g. `notify.min_severity`), or ""."""
    kind: Any = Config
    for part in _PATH_PART_RE.finditer(path):
        kind = _unwrap(kind)
        name = part.group(1)
        if name is None:  # a list index
            kind = typing.get_args(kind)[0] if typing.get_origin(kind) is list else None
        elif isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            kind = typing.get_type_hints(kind, include_extras=True).get(name)
        else:
            return ""
    kind = _unwrap(kind)
    if typing.get_origin(kind) is Literal:
        return ", ".join(str(choice) for choice in typing.get_args(kind))
    return ""


def _unwrap(kind: Any) -> Any:
    """`X | None` and `Annotated[X, ...]` as X."""
    if typing.get_origin(kind) is Annotated:
        kind = typing.get_args(kind)[0]
    if isinstance(kind, types.UnionType):
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        kind = options[0] if len(options) == 1 else kind
    return kind


def validate_config(data: Any, source: str = "<config>") -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections at the top level")
    try:
        # Not strict: a value from ${VAR} is always text, so "true" or "30" must still do for a
        # bool or a number (as it did with pydantic), while a number stays no name or URL.
        return msgspec.convert(data, Config, strict=False, dec_hook=_decode_custom)
    except msgspec.ValidationError as exc:
        path, problem = _located(str(exc))
        raise ConfigError(f"{source}: {path or '(top level)'}: {problem}") from None


def load_config_text(text: str, source: str, env: Mapping[str, str] | None = None) -> Config:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{source}:{where}: {problem}") from None
    data = _expand(data, os.environ if env is None else env, "", source)
    return validate_config(data, source)


def resolve_config_path(explicit: str | None, env: Mapping[str, str] | None = None) -> Path:
    """`--config`, then `$ONCALL_TUI_CONFIG`, then `~/.config/oncall-tui/config.yaml`."""
    environ = os.environ if env is None else env
    if explicit:
        return Path(explicit).expanduser()
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser()
    return DEFAULT_CONFIG_PATH.expanduser()


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return load_config_text(text, str(path), env)


def redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
