"""The engine side must never pull in Textual: `serve` stays lean and the layers stay honest."""

from __future__ import annotations

import subprocess
import sys

import pytest


def loaded_after(imports: str, chosen: str) -> str:
    """In a fresh interpreter: `import <imports>`, then the loaded modules for which the
    expression `chosen` (over `m`, a module name) holds, comma-separated and sorted."""
    code = (
        f"import sys, {imports}\n"
        f"print(','.join(sorted(m for m in list(sys.modules) if {chosen})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return out.stdout.strip()


@pytest.mark.parametrize(
    "module",
    ["oncall_tui.engine", "oncall_tui.webhooks", "oncall_tui.store", "oncall_tui.sandbox.runner"],
)
def test_engine_side_does_not_import_textual(module: str) -> None:
    leaked = loaded_after(module, "m == 'textual' or m.startswith(('textual.', 'oncall_tui.ui'))")
    assert leaked == "", f"{module} imported {leaked}"


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
    leaked = loaded_after(
        "oncall_tui.engine, oncall_tui.ui.app, oncall_tui.store",
        "m == 'httpx' or m.startswith('httpx.')"
        " or (m.startswith('oncall_tui.providers.') and m != 'oncall_tui.providers.errors')"
        " or m in ('oncall_tui.ui.silence_form', 'oncall_tui.ui.pipeline')",
    )
    assert leaked == "", f"the first frame's imports loaded {leaked}"
