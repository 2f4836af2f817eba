from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from oncall_tui.config import (
    ConfigError,
    load_config,
    load_config_text,
    parse_duration,
    redact,
    resolve_config_path,
)

MINIMAL = "alertmanagers: [{name: prod-a, url: 'http://127.0.0.1:9093'}]\n"


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[1] / "config.example.yaml"
    env = {
        name: f"value-of-{name}"
        for name in [
            "AM_TOKEN",
            "AM_PASSWORD",
            "PD_API_KEY",
            "PD_ROUTING_KEY",
            "PD_WEBHOOK_SECRET",
            "OG_API_KEY",
            "STATUSPAGE_API_KEY",
            "STATUSPAGE_PAGE_ID",
            "AM_WEBHOOK_TOKEN",
        ]
    }
    config = load_config(example, env)
    assert config.alertmanagers
    assert config.statuspage is not None
    assert config.statuspage.automation.resolve_after == 300.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alertmanagers: []", "c.yaml: alertmanagers: "),
        (
            "alertmanagers: [{name: a, url: 'http://x', colour: red}]",
            "alertmanagers[0].colour: unknown key",
        ),
        ("alertmanagers: [{url: 'http://x'}]", "alertmanagers[0].name: required key is missing"),
        ("alertmanagers: [{name: a, url: 'x:9093'}]", "alertmanagers[0].url: expected an http"),
        (MINIMAL + "poll: {alerts: soon}", "poll.alerts: expected a duration"),
        (
            MINIMAL + "notify: {min_severity: loud}",
            "notify.min_severity: invalid value 'loud' (one of: critical, error, warning, info)",
        ),
        (
            MINIMAL + "statuspage: {automation: {impact: huge}}",
            "statuspage.automation.impact: invalid value 'huge' (one of: none, minor, major, ",
        ),
        (MINIMAL + "webhooks: {listen: nowhere}", "webhooks.listen: expected host:port"),
        (
            MINIMAL + "pagerduty: {api_token: '${PD_API_KEY}'}",
            "pagerduty.api_token: environment variable PD_API_KEY is not set",
        ),
        (
            MINIMAL + "test_alerts: [{name: t, labels: {severity: critical}}]",
            "test_alerts[0].labels: labels need an alertname",
        ),
        (
            "alertmanagers: [{name: a, url: 'http://x'}, {name: a, url: 'http://y'}]",
            "is used twice",
        ),
        ("a: [", "c.yaml: line"),
        ("", "c.yaml: alertmanagers: required key is missing"),
        (MINIMAL + "operator: {name: 5}", "operator.name: expected `str`, got `int`"),
        (MINIMAL + "keys: {ack: [a]}", "keys: a value: expected `str`, got `array`"),
        (
            MINIMAL + "test_alerts: [{name: t, labels: {alertname: x, 5: y}}]",
            "c.yaml: test_alerts[0].labels: a key: expected `str`, got `int`",
        ),
        (MINIMAL + "1: x", "c.yaml: (top level): a key: expected `str`"),
        (MINIMAL + "statuspage: {api_key: 5}", "statuspage.api_key: expected `str`, got `int`"),
        (MINIMAL + "poll: {alerts: 0s}", "poll.alerts: expected a duration greater than zero"),
        (
            "alertmanagers: [{name: a, url: 'http://x', auth: {bearer_token: t, "
            "basic: {username: u, password: p}}}]",
            "alertmanagers[0].auth: give either bearer_token or basic, not both",
        ),
    ],
)
def test_errors_name_the_key_path(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "c.yaml", {})
    assert expected in str(info.value)
    assert str(info.value).startswith("c.yaml")


def test_env_expansion_does_not_reparse_yaml() -> None:
    text = MINIMAL + "pagerduty: {api_token: '${TOKEN}'}\n"
    config = load_config_text(text, "c.yaml", {"TOKEN": "a: b\n- c"})
    assert config.pagerduty is not None
    assert config.pagerduty.api_token is not None
    assert config.pagerduty.api_token.get_secret_value() == "a: b\n- c"
    assert "a: b\n- c" in config.secrets()
    assert "a: b" not in repr(config)
    assert "a: b" not in str(config.pagerduty.api_token)
    assert config.with_changes(read_only=True).pagerduty == config.pagerduty


def test_values_are_typed_and_normalised() -> None:
    config = load_config_text(
        "alertmanagers: [{name: a, url: 'http://x:9093/'}]\npoll: {alerts: 250ms, oncall: 2}\n",
        "c.yaml",
        {},
    )
    assert config.alertmanagers[0].url == "http://x:9093"
    assert (config.poll.alerts, config.poll.oncall, config.poll.incidents) == (0.25, 2.0, 10.0)
    assert config.acknowledge.stable_labels == ["alertname", "service", "instance"]
    with pytest.raises(AttributeError):
        config.read_only = True  # type: ignore[misc]


def test_durations() -> None:
    assert parse_duration("250ms") == 0.25
    assert parse_duration("5m") == 300
    assert parse_duration(10) == 10
    for bad in ("0s", "-5s", "five", True):
        with pytest.raises(ValueError):  # noqa: PT011 - the message is checked in the config tests
            parse_duration(bad)


def test_lookup_order(tmp_path: Path) -> None:
    assert resolve_config_path("x.yaml", {"ONCALL_TUI_CONFIG": "y.yaml"}) == Path("x.yaml")
    assert resolve_config_path(None, {"ONCALL_TUI_CONFIG": "y.yaml"}) == Path("y.yaml")
    assert resolve_config_path(None, {}).name == "config.yaml"
    assert ".config/oncall-tui" in str(resolve_config_path(None, {}))


def test_redact() -> None:
    assert redact("token=s3cr3t-value ok", ["s3cr3t-value"]) == "token=*** ok"


def test_missing_file_is_one_line() -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(Path("does-not-exist.yaml"))


def test_config_module_imports_nothing_heavy() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, oncall_tui.config; print({'textual', 'pydantic'} & set(sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "set()"


def test_values_from_the_environment_can_be_booleans() -> None:
    """${VAR} always expands to text: "true" and "false" must still do where a bool is wanted."""
    text = MINIMAL + "read_only: ${RO}\nwebhooks: {enabled: '${HOOKS}'}\n"
    config = load_config_text(text, "c.yaml", {"RO": "true", "HOOKS": "false"})
    assert (config.read_only, config.webhooks.enabled) == (True, False)
    with pytest.raises(ConfigError, match=r"read_only: expected `bool`, got `str`"):
        load_config_text(text, "c.yaml", {"RO": "maybe", "HOOKS": "false"})
