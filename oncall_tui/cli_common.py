"""What every `oncall-tui` command shares: exit codes, the operator-worded error, output, config.

Split from cli.py so the command modules (cli_tools.py, cli_log.py) can use it without a cycle.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Coroutine
from typing import Any

from oncall_tui.config import CONFIG_ENV, Config, ConfigError, load_config, resolve_config_path

PROG = "oncall-tui"
EXIT_RUNTIME = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure worded for the operator; `code` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_RUNTIME) -> None:
        super().__init__(message)
        self.code = code


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def err(text: str) -> None:
    sys.stderr.write(f"{PROG}: {text}\n")
    sys.stderr.flush()


def load(args: argparse.Namespace, path: str | None = None) -> Config:
    explicit = path or getattr(args, "config", None)
    config_path = resolve_config_path(explicit)
    if not explicit and not config_path.exists():
        where = f"${CONFIG_ENV} ({config_path})" if os.environ.get(CONFIG_ENV) else config_path
        raise ConfigError(
            f"no config file at {where}; pass --config PATH, or try `{PROG} demo` "
            "(see config.example.yaml)"
        )
    config = load_config(config_path)
    if getattr(args, "read_only", False):
        config = config.with_changes(read_only=True)
    return config


def run(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)
