"""The engine side must never pull in Textual: `serve` stays lean and the layers stay honest."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    ["oncall_tui.engine", "oncall_tui.webhooks", "oncall_tui.store", "oncall_tui.sandbox.runner"],
)
def test_engine_side_does_not_import_textual(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "leaked = sorted(m for m in sys.modules\n"
        "                if m == 'textual' or m.startswith(('textual.', 'oncall_tui.ui')))\n"
        "print(','.join(leaked))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "", f"{module} imported {out.stdout.strip()}"


def test_package_import_is_light() -> None:
    code = (
        "import sys, oncall_tui\n"
        "heavy = ('httpx', 'textual', 'aiosqlite')\n"
        "print(len([m for m in sys.modules if m.startswith(heavy)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "0"


def test_first_frame_does_without_the_http_stack() -> None:
    """The dashboard draws its first frame before the engine starts (cli._run_dashboard): what
    it imports up to then (the engine, the UI, the log) must not load httpx or a provider
    client, which would put them on the start-up path again; nor the biggest screens that only
    a key opens (the silence form, the pipeline)."""
    code = (
        "import sys, oncall_tui.engine, oncall_tui.ui.app, oncall_tui.store\n"
        "leaked = sorted(m for m in sys.modules if m == 'httpx' or m.startswith('httpx.')\n"
        "                or (m.startswith('oncall_tui.providers.')\n"
        "                    and m != 'oncall_tui.providers.errors')\n"
        "                or m in ('oncall_tui.ui.silence_form', 'oncall_tui.ui.pipeline'))\n"
        "print(','.join(leaked))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "", f"the first frame's imports loaded {out.stdout.strip()}"
