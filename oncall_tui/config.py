"""Configuration: the documented models, `${VAR}` expansion, and one-line errors.

Every error names the file, the key path and what was expected, so that an operator can fix a
config at 2 AM without reading a traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

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


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OperatorConfig(_Section):
    name: str = Field(default="", description="Shown in the header and written as the actor.")
    email: str = Field(
        default="",
        description="PagerDuty `From` header, Alertmanager silence `createdBy`, log actor.",
    )


class BasicAuth(_Section):
    username: str
    password: SecretStr


class AlertmanagerAuth(_Section):
    bearer_token: SecretStr | None = Field(default=None, description="Sent as a bearer token.")
    basic: BasicAuth | None = Field(default=None, description="HTTP basic credentials.")

    @model_validator(mode="after")
    def _one_kind(self) -> AlertmanagerAuth:
        if self.bearer_token is not None and self.basic is not None:
            raise ValueError("give either bearer_token or basic, not both")
        return self


class AlertmanagerConfig(_Section):
    name: str = Field(description="Shown in the header; unique among alertmanagers.")
    url: str = Field(description="Base URL, e.g. http://alertmanager-0:9093.")
    cluster: str = Field(
        default="",
        description="Peers of one HA cluster share this name; their alerts are deduplicated.",
    )
    auth: AlertmanagerAuth | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def cluster_name(self) -> str:
        return self.cluster or self.name


class PagerDutyConfig(_Section):
    api_token: SecretStr | None = Field(default=None, description="REST API v2 token.")
    routing_key: SecretStr | None = Field(default=None, description="Events API v2 key.")
    webhook_secret: SecretStr | None = Field(default=None, description="Webhooks v3 secret.")
    escalation_policy_ids: list[str] = Field(default_factory=list)
    service_ids: list[str] = Field(default_factory=list)
    api_url: str = "https://api.pagerduty.com"
    events_url: str = "https://events.pagerduty.com"


class OpsgenieConfig(_Section):
    api_key: SecretStr | None = None
    api_url: str = "https://api.opsgenie.com"
    schedules: list[str] = Field(default_factory=list)


class AutomationConfig(_Section):
    enabled: bool = False
    match: dict[str, str] = Field(default_factory=lambda: {"severity": "critical"})
    component_label: str = "service"
    impact: Literal["none", "minor", "major", "critical"] = "major"
    component_status: Literal[
        "operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"
    ] = "major_outage"
    resolve_after: Duration = 300.0


class StatuspageConfig(_Section):
    api_key: SecretStr | None = None
    page_id: str = ""
    api_url: str = "https://api.statuspage.io/v1"
    components: dict[str, str] = Field(default_factory=dict)
    automation: AutomationConfig = Field(default_factory=AutomationConfig)
    templates: dict[str, str] = Field(
        default_factory=dict, description="Named message templates for status updates."
    )


class WebhooksConfig(_Section):
    listen: str = Field(default="127.0.0.1:9099", description="host:port of the listener.")
    alertmanager_token: SecretStr | None = None
    enabled: bool = True

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("expected host:port, e.g. 127.0.0.1:9099")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class PollConfig(_Section):
    alerts: Duration = 5.0
    incidents: Duration = 10.0
    oncall: Duration = 60.0
    statuspage: Duration = 30.0


class LogConfig(_Section):
    path: str = DEFAULT_LOG_PATH

    @property
    def file(self) -> Path:
        return Path(self.path).expanduser()


class NotifyConfig(_Section):
    bell: bool = True
    desktop: bool = True
    min_severity: Literal["critical", "error", "warning", "info"] = "critical"
    only_when_on_call: bool = False


class AcknowledgeConfig(_Section):
    silence_alerts: bool = True
    stable_labels: list[str] = Field(default_factory=lambda: ["alertname", "service", "instance"])


class TestAlertPreset(_Section):
    name: str
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _has_alertname(cls, value: dict[str, str]) -> dict[str, str]:
        if "alertname" not in value:
            raise ValueError("labels need an alertname")
        return value


class Config(_Section):
    operator: OperatorConfig = Field(default_factory=OperatorConfig)
    alertmanagers: list[AlertmanagerConfig] = Field(min_length=1)
    pagerduty: PagerDutyConfig | None = None
    opsgenie: OpsgenieConfig | None = None
    statuspage: StatuspageConfig | None = None
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
    poll: PollConfig = Field(default_factory=PollConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    acknowledge: AcknowledgeConfig = Field(default_factory=AcknowledgeConfig)
    read_only: bool = False
    keys: dict[str, str] = Field(default_factory=dict, description="binding id -> key")
    test_alerts: list[TestAlertPreset] = Field(default_factory=list)

    @field_validator("alertmanagers")
    @classmethod
    def _unique_names(cls, value: list[AlertmanagerConfig]) -> list[AlertmanagerConfig]:
        seen: set[str] = set()
        for item in value:
            if item.name in seen:
                raise ValueError(f"alertmanager name {item.name!r} is used twice")
            seen.add(item.name)
        return value

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
            elif isinstance(node, BaseModel):
                for name in type(node).model_fields:
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


def _error_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or "[" in str(part):
            # pydantic adds validator names for Annotated types; they mean nothing to a user
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _describe(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    message = str(error.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if message.startswith("Assertion failed, "):
        message = message[len("Assertion failed, ") :]
    return message


def validate_config(data: Any, source: str = "<config>") -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections at the top level")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(
            f"{source}: {_error_path(tuple(first['loc']))}: {_describe(first)}"
        ) from None


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
