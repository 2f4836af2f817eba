"""The `oncall-tui` command line: the dashboard, the demo, the sandbox, `serve` and the tools.

Every failure ends in one clear line on stderr and a non-zero exit: 2 for configuration and
usage problems, 1 for runtime failures (a source unreachable, the log unusable), 130 after
Ctrl-C. No traceback reaches the operator. Heavy modules (Textual, the engine) are imported
only by the subcommands that need them, so `check-config` and `--help` start fast.

This module parses arguments and runs the dashboard, demo, sandbox and serve; `fire` and
`check-config` are in cli_tools.py, the log's commands in cli_log.py, what they share in
cli_common.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from oncall_tui.cli_common import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_RUNTIME, PROG, CliError
from oncall_tui.cli_common import err as _err
from oncall_tui.cli_common import load as _load
from oncall_tui.cli_common import out as _out
from oncall_tui.cli_common import run as _run
from oncall_tui.cli_tools import TARGETS, cmd_check_config, cmd_fire
from oncall_tui.clock import Clock, SystemClock
from oncall_tui.config import (
    CONFIG_ENV,
    Config,
    ConfigError,
    parse_duration,
)

if TYPE_CHECKING:
    from oncall_tui.engine import Engine
    from oncall_tui.models import LogEntry


EPILOG = f"""usage of each command:
  {PROG} [--config PATH]                      the dashboard
  {PROG} demo                                 sandbox + dashboard, no accounts or config
  {PROG} sandbox [--write-config PATH]        the sandbox alone, until interrupted
  {PROG} serve [--config PATH]                headless engine: webhooks, pollers, log
  {PROG} fire [PRESET] [--label k=v ...] [--annotation k=v ...]
             [--to alertmanager|pagerduty|opsgenie] [--wait]
  {PROG} check-config [PATH] [--connect]      validate; --connect reaches every source
  {PROG} log [--since 2h] [--source S ...] [--kind K ...] [--text T] [--json]
  {PROG} log export INCIDENT [--format markdown] [--output PATH]
                                              one incident's timeline as Markdown
  {PROG} handoff [--since 12h]                the shift handoff

exit status: 0 ok, 1 runtime failure, 2 configuration or usage error, 130 interrupted"""


# -- the parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: an option given before the subcommand is not reset by the subcommand's default.
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help=f"config file (default: ${CONFIG_ENV}, then ~/.config/oncall-tui/config.yaml)",
    )
    common.add_argument(
        "--read-only",
        action="store_true",
        default=argparse.SUPPRESS,
        help="hide and refuse every action that changes something",
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[common],
        description="A terminal dashboard for on-call operators. Without a command: the dashboard.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    commands.add_parser("dashboard", parents=[common], help="the dashboard (the default)")

    demo = commands.add_parser(
        "demo", parents=[common], help="the sandbox and the dashboard together; no config needed"
    )
    _sandbox_options(demo)
    demo.add_argument("--log", metavar="PATH", help="log file (default: a temporary directory)")

    sandbox = commands.add_parser(
        "sandbox", parents=[common], help="the sandbox alone, headless, until interrupted"
    )
    _sandbox_options(sandbox)
    sandbox.add_argument(
        "--write-config", metavar="PATH", help="write a config that points at the sandbox"
    )

    commands.add_parser(
        "serve",
        parents=[common],
        help="headless: webhook listener, pollers and the log, no UI",
    )

    fire = commands.add_parser("fire", parents=[common], help="fire a test alert")
    fire.add_argument("preset", nargs="?", metavar="PRESET", help="a name from test_alerts")
    fire.add_argument(
        "--label", action="append", default=[], metavar="K=V", help="set a label (repeatable)"
    )
    fire.add_argument(
        "--annotation",
        action="append",
        default=[],
        metavar="K=V",
        help="set an annotation (repeatable)",
    )
    fire.add_argument("--to", choices=TARGETS, default="alertmanager", help="where to send it")
    fire.add_argument(
        "--wait", action="store_true", help="follow it through the pipeline, stage by stage"
    )
    fire.add_argument(
        "--timeout",
        type=_duration_argument,
        default=60.0,
        metavar="DURATION",
        help="with --wait: how long each stage may take (60s)",
    )

    check = commands.add_parser(
        "check-config", parents=[common], help="validate a config; --connect reaches every source"
    )
    check.add_argument("path", nargs="?", metavar="PATH", help="config file to check")
    check.add_argument("--connect", action="store_true", help="reach every configured source")

    log = commands.add_parser("log", parents=[common], help="read the log (or `log export`)")
    log.add_argument("--since", default="2h", metavar="DURATION", help="how far back (2h)")
    log.add_argument(
        "--source", action="append", default=[], metavar="S", help="only this source (repeatable)"
    )
    log.add_argument(
        "--kind", action="append", default=[], metavar="K", help="only this kind (repeatable)"
    )
    log.add_argument("--text", metavar="TEXT", help="only entries mentioning TEXT")
    log.add_argument("--json", action="store_true", help="one JSON object per line")
    log.add_argument("--limit", type=int, default=1000, help="at most this many entries")
    log_commands = log.add_subparsers(dest="log_command", metavar="SUBCOMMAND")
    export = log_commands.add_parser(
        "export",
        parents=[common],
        help="one incident's timeline as Markdown (alerts, pages, acks, status updates)",
    )
    export.add_argument(
        "incident", nargs="?", metavar="INCIDENT", help="incident id, pagerduty/ID, or number"
    )
    export.add_argument(
        "--format", choices=("markdown",), default="markdown", help="output format (markdown)"
    )
    export.add_argument("--output", metavar="PATH", help="file to write (default: stdout)")

    handoff = commands.add_parser("handoff", parents=[common], help="the shift handoff summary")
    handoff.add_argument("--since", default="12h", metavar="DURATION", help="the shift (12h)")
    return parser


def _duration_argument(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _sandbox_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--standin",
        action="store_true",
        help="use the built-in Alertmanager stand-in even when the binary is installed",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the alert scenario")
    parser.add_argument(
        "--peers",
        type=int,
        default=1,
        choices=range(1, 6),
        metavar="N",
        help="Alertmanagers in the sandbox's HA cluster (1-5, default 1)",
    )


# -- entry point -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "dashboard"
    handler = _COMMANDS[command]
    try:
        return handler(args)
    except ConfigError as exc:
        _err(str(exc))
        return EXIT_CONFIG
    except CliError as exc:
        _err(str(exc))
        return exc.code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        # Every expected failure has its own line; this one still must not be a traceback.
        _err(_describe(exc))
        return EXIT_RUNTIME


def _describe(exc: BaseException) -> str:
    from oncall_tui.providers.errors import ProviderError
    from oncall_tui.store import StoreError

    if isinstance(exc, ProviderError | StoreError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return f"unexpected error: {type(exc).__name__}: {exc}"


async def _until_signal() -> int:
    """Wait for SIGINT (exit 130) or SIGTERM (exit 0)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()

    def finish(code: int) -> None:
        if not done.done():
            done.set_result(code)

    installed: list[signal.Signals] = []
    for sig, code in ((signal.SIGINT, EXIT_INTERRUPTED), (signal.SIGTERM, 0)):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, finish, code)
            installed.append(sig)
    try:
        return await done
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _log_to_file(path: Path) -> None:
    """The dashboard owns the terminal: warnings go to a file, never over the screen."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def _log_to_stderr() -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# -- dashboard, demo, sandbox, serve ---------------------------------------------------------


async def _run_dashboard(config: Config, clock: Clock) -> int:
    # Imported here so that only the dashboard pays for Textual.
    from oncall_tui.engine import Engine
    from oncall_tui.ui.app import make_app

    engine = Engine(config, clock=clock, read_only=config.read_only)
    loop = asyncio.get_running_loop()
    hangups: list[signal.Signals] = []
    starting: asyncio.Task[None] | None = None
    try:
        # The first frame shows the last known snapshot; the engine starts (HTTP stack, polls,
        # webhook listener) once that frame is on screen. A log that cannot be opened is
        # reported before the screen is taken over.
        await engine.restore()
        app = make_app(config, engine, clock, tune_runtime=True)
        # A closed terminal or a `kill` ends the dashboard the same way as `q`, so the engine
        # saves its snapshot and the sandbox removes what it started.
        for sig in (signal.SIGHUP, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, app.exit)
                hangups.append(sig)

        async def start_when_shown() -> None:
            await app.first_frame.wait()
            try:
                await engine.start()
            except Exception:
                app.exit(return_code=EXIT_RUNTIME)
                raise

        starting = asyncio.create_task(start_when_shown(), name="engine-start")
        await app.run_async()
        if starting.done() and not starting.cancelled():
            starting.result()  # the engine failed to start: its error is the exit message
        return app.return_code or 0
    finally:
        if starting is not None and not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        for sig in hangups:
            loop.remove_signal_handler(sig)
        await engine.stop()


def cmd_dashboard(args: argparse.Namespace) -> int:
    config = _load(args)
    _log_to_file(config.log.file.parent / "oncall-tui.log")
    return _run(_run_dashboard(config, SystemClock()))


def cmd_demo(args: argparse.Namespace) -> int:
    from oncall_tui.sandbox.runner import Sandbox

    with tempfile.TemporaryDirectory(prefix="oncall-tui-demo-") as scratch:
        if args.log:
            log_path = Path(args.log).expanduser()
        elif getattr(args, "config", None):
            log_path = _load(args).log.file
        else:
            log_path = Path(scratch) / "log.db"
        _log_to_file(Path(scratch) / "oncall-tui.log")
        clock = SystemClock()
        sandbox = Sandbox(
            clock=clock,
            log_path=log_path,
            backend="standin" if args.standin else None,
            seed=args.seed,
            peers=args.peers,
        )

        async def run() -> int:
            await sandbox.start()
            try:
                config = sandbox.config()
                if getattr(args, "read_only", False):
                    config = config.with_changes(read_only=True)
                return await _run_dashboard(config, clock)
            finally:
                await sandbox.stop()

        code = _run(run())
        if sandbox.fallback_reason:
            _out(f"The demo used the built-in Alertmanager stand-in: {sandbox.fallback_reason}.")
        return code


def cmd_sandbox(args: argparse.Namespace) -> int:
    from oncall_tui.sandbox.runner import Sandbox

    _log_to_stderr()
    clock = SystemClock()
    written = Path(args.write_config).expanduser() if args.write_config else None
    log_path = written.with_suffix(".log.db") if written is not None else None
    sandbox = Sandbox(
        clock=clock,
        log_path=log_path,
        backend="standin" if args.standin else None,
        seed=args.seed,
        peers=args.peers,
    )

    async def run() -> int:
        await sandbox.start()
        try:
            assert sandbox.workdir is not None
            path = written or sandbox.workdir / "config.yaml"
            sandbox.write_config(path)
            kind = "Alertmanager" if sandbox.backend == "alertmanager" else "Alertmanager stand-in"
            if sandbox.fallback_reason:
                _out(f"Using the built-in stand-in: {sandbox.fallback_reason}.")
            for url in sandbox.alertmanager_urls:
                _out(f"{kind}: {url}")
            _out(f"Webhooks go to: {sandbox.webhook_url}")
            _out(f"Config written to: {path}")
            _out(f"Run the dashboard on it: {PROG} --config {path}")
            _out("Press Ctrl-C to stop.")
            return await _until_signal()
        finally:
            await sandbox.stop()

    return _run(run())


def cmd_serve(args: argparse.Namespace) -> int:
    from oncall_tui import runtime
    from oncall_tui.engine import Engine

    config = _load(args)
    _log_to_stderr()
    clock = SystemClock()
    runtime.favour_the_event_loop()  # webhooks answered while a worker decodes a big poll

    async def run() -> int:
        engine = Engine(config, clock=clock, read_only=config.read_only)
        await engine.start()
        try:
            _out(f"Log: {config.log.file}")
            _out(_webhook_line(engine, config))
            for am in config.alertmanagers:
                _out(f"Polling {am.name} ({am.url}) every {config.poll.alerts:g}s")
            return await _until_signal()
        finally:
            await engine.stop()

    return _run(run())


def _webhook_line(engine: Engine, config: Config) -> str:
    if engine.webhook_address:
        return f"Webhooks: listening on http://{engine.webhook_address}/webhooks/alertmanager"
    if not config.webhooks.enabled:
        return "Webhooks: off (webhooks.enabled is false)"
    errors = [h.error for h in engine.snapshot.health if h.kind == "webhooks" and h.error]
    return f"Webhooks: not listening: {errors[0] if errors else 'unknown error'}"


# -- log -------------------------------------------------------------------------------------


def _since(text: str, clock: Clock) -> datetime:
    try:
        return clock.now() - timedelta(seconds=parse_duration(text))
    except ValueError as exc:
        raise CliError(f"--since {text!r}: {exc}", EXIT_CONFIG) from None


def cmd_log(args: argparse.Namespace) -> int:
    from oncall_tui.cli_log import NoLog, entry_json, entry_line, read_log

    if args.log_command == "export":
        return _export(args)
    config = _load(args)
    clock = SystemClock()
    since = _since(args.since, clock)
    try:
        entries = asyncio.run(
            read_log(
                config,
                clock,
                since=since,
                sources=args.source,
                kinds=args.kind,
                text=args.text or "",
                limit=args.limit,
            )
        )
    except NoLog as exc:
        raise CliError(str(exc)) from None
    render: Callable[[LogEntry], str] = entry_json if args.json else entry_line
    for entry in entries:
        _out(render(entry))
    return 0


def _export(args: argparse.Namespace) -> int:
    from oncall_tui.cli_log import NoLog, export_incident, write_text
    from oncall_tui.timeline import TimelineError

    if not args.incident:
        raise CliError(
            "log export: name an incident (its id, pagerduty/ID, or its number)", EXIT_CONFIG
        )
    config = _load(args)
    try:
        text = asyncio.run(export_incident(config, SystemClock(), args.incident))
    except (NoLog, TimelineError) as exc:
        raise CliError(f"log export: {exc.args[0]}") from None
    if args.output:
        write_text(Path(args.output).expanduser(), text)
        _out(f"Written to {args.output}")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0


def cmd_handoff(args: argparse.Namespace) -> int:
    from oncall_tui.cli_log import NoLog, shift_handoff

    config = _load(args)
    clock = SystemClock()
    try:
        shift = timedelta(seconds=parse_duration(args.since))
    except ValueError as exc:
        raise CliError(f"--since {args.since!r}: {exc}", EXIT_CONFIG) from None
    try:
        text = asyncio.run(shift_handoff(config, clock, shift))
    except NoLog as exc:
        raise CliError(f"handoff: {exc}") from None
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "dashboard": cmd_dashboard,
    "demo": cmd_demo,
    "sandbox": cmd_sandbox,
    "serve": cmd_serve,
    "fire": cmd_fire,
    "check-config": cmd_check_config,
    "log": cmd_log,
    "handoff": cmd_handoff,
}
