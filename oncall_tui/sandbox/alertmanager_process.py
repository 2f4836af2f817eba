"""Run the real Prometheus Alertmanager binary on loopback: for the sandbox and for tests.

`AlertmanagerProcess` starts one Alertmanager with a generated config in a work directory, on
free 127.0.0.1 ports, waits (bounded) until `/-/ready` answers, and stops it by PID: SIGTERM,
then SIGKILL after a bound. On Linux it also ends when our process dies, however that happens.
Its stderr goes to a file in the work directory; when start-up fails, the error carries the
tail of that file. Several processes can form an HA cluster on loopback
(`cluster_listen=True`, `peers=[other.cluster_address]`), gossiping fast enough for tests.

`alertmanager_config_yaml` writes the sandbox's routing: critical alerts to PagerDuty's Events
API, warnings to Opsgenie, and every notification to our webhook listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

BINARY_NAMES = ("alertmanager", "prometheus-alertmanager")
HOST = "127.0.0.1"
_STDERR_TAIL_LINES = 15
_START_ATTEMPTS = 3  # a freshly picked free port can be taken before the binary binds it


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a pre-exec hook that makes the child get SIGTERM when we die.

    Without it, a dashboard or test killed with SIGKILL leaves Alertmanager running, holding
    its ports. The hook is resolved here, in the parent, so the child between fork and exec
    only makes one C call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    sigterm = int(signal.SIGTERM)

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, sigterm)

    return hook


class AlertmanagerStartError(RuntimeError):
    """The binary could not be started or did not become ready in time."""


def find_alertmanager_binary() -> str | None:
    """Path of `alertmanager` or Debian's `prometheus-alertmanager` on PATH, if any."""
    for name in BINARY_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port(*, udp: bool = False) -> int:
    """A loopback port that is free right now (for TCP, and for UDP too when asked)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((HOST, 0))
            port = int(tcp.getsockname()[1])
            if not udp:
                return port
            # Memberlist gossips over UDP and syncs over TCP on the same port number.
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dgram:
                try:
                    dgram.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise AlertmanagerStartError("no free loopback port found")


class AlertmanagerProcess:
    """One Alertmanager process owned by us; use `async with` or start()/stop()."""

    def __init__(
        self,
        binary: str,
        workdir: Path,
        config_yaml: str,
        *,
        peers: Sequence[str] = (),
        cluster_listen: bool = False,
        ready_timeout: float = 20.0,
        stop_timeout: float = 5.0,
        gossip_interval: str = "50ms",
        pushpull_interval: str = "1s",
        extra_args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.binary = binary
        self.extra_env = dict(extra_env or {})
        self.workdir = Path(workdir)
        self.config_yaml = config_yaml
        self.peers = tuple(peers)
        # Joining peers needs a cluster listener of our own.
        self.cluster_listen = cluster_listen or bool(self.peers)
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.gossip_interval = gossip_interval
        self.pushpull_interval = pushpull_interval
        self.extra_args = tuple(extra_args)
        self.port = 0
        self.cluster_port: int | None = None
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """Base URL of the API and UI, e.g. http://127.0.0.1:40123."""
        return f"http://{HOST}:{self.port}"

    @property
    def cluster_address(self) -> str | None:
        """host:port other peers pass as `peers` to join this one."""
        return None if self.cluster_port is None else f"{HOST}:{self.cluster_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def config_path(self) -> Path:
        return self.workdir / "alertmanager.yml"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / "alertmanager.stderr.log"

    def stderr_tail(self, lines: int = _STDERR_TAIL_LINES) -> str:
        try:
            text = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def command(self) -> list[str]:
        """The argument vector for the current ports (exposed for error messages and tests)."""
        args = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address={HOST}:{self.port}",
            "--data.retention=2h",
        ]
        if self.cluster_port is None:
            args.append("--cluster.listen-address=")
        else:
            address = f"{HOST}:{self.cluster_port}"
            args += [
                f"--cluster.listen-address={address}",
                # Without it Alertmanager looks for a private IP to advertise and finds none.
                f"--cluster.advertise-address={address}",
                f"--cluster.gossip-interval={self.gossip_interval}",
                f"--cluster.pushpull-interval={self.pushpull_interval}",
                "--cluster.probe-interval=200ms",
                "--cluster.probe-timeout=200ms",
                "--cluster.reconnect-interval=1s",
                "--cluster.settle-timeout=2s",
                "--cluster.peer-timeout=1s",
            ]
            args += [f"--cluster.peer={peer}" for peer in self.peers]
        args += self.extra_args
        return args

    async def start(self) -> None:
        """Start the binary and wait until it is ready; raises AlertmanagerStartError."""
        if self.running:
            return
        self._prepare_workdir()
        last_error: AlertmanagerStartError | None = None
        for _ in range(_START_ATTEMPTS):
            self.port = free_port()
            self.cluster_port = free_port(udp=True) if self.cluster_listen else None
            try:
                await self._start_once()
                return
            except AlertmanagerStartError as exc:
                last_error = exc
                if "address already in use" not in str(exc):
                    raise
        assert last_error is not None
        raise last_error

    def _prepare_workdir(self) -> None:
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_yaml, encoding="utf-8")

    def _open_stderr(self) -> IO[bytes]:
        return self.stderr_path.open("wb")

    async def _start_once(self) -> None:
        stderr = self._open_stderr()
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, **self.extra_env} if self.extra_env else None,
                preexec_fn=_die_with_parent(),
            )
        except OSError as exc:
            raise AlertmanagerStartError(
                f"cannot run {self.binary}: {exc.strerror or exc}"
            ) from exc
        finally:
            stderr.close()
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self) -> None:
        assert self._process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ready_timeout
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                if self._process.returncode is not None:
                    raise self._failure(f"exited with status {self._process.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(f"{self.url}/-/ready")
                    if response.status_code == 200:
                        return
                if loop.time() >= deadline:
                    raise self._failure(f"not ready after {self.ready_timeout:g}s")
                # Either the process exits (checked above) or the port answers; poll briskly.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._process.wait(), timeout=0.05)

    def _failure(self, what: str) -> AlertmanagerStartError:
        tail = self.stderr_tail()
        message = f"alertmanager on {self.url} {what}"
        if tail:
            message += f"; its stderr ends with:\n{tail}"
        return AlertmanagerStartError(message)

    async def stop(self) -> None:
        """SIGTERM our process, SIGKILL it if it has not exited within `stop_timeout`."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=self.stop_timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            await asyncio.wait_for(process.wait(), timeout=self.stop_timeout)

    async def __aenter__(self) -> AlertmanagerProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def alertmanager_config_yaml(
    *,
    webhook_url: str | None,
    webhook_token: str | None = None,
    pagerduty_events_url: str | None = None,
    opsgenie_url: str | None = None,
    group_wait: str = "0s",
    group_interval: str = "1s",
    repeat_interval: str = "1h",
    pagerduty_routing_key: str = "sandbox-routing-key-000000000000",
    opsgenie_api_key: str = "sandbox-opsgenie-key",
    resolve_timeout: str = "5m",
) -> str:
    """An Alertmanager config for the sandbox, as YAML text.

    Groups by alertname and service. Critical alerts go to PagerDuty (Events API v2 at
    `pagerduty_events_url`, the base URL as in our config's `pagerduty.events_url`), warnings to
    Opsgenie (`opsgenie_url`, the API base URL), and every group also to `webhook_url` (with a
    bearer token when `webhook_token` is given). Receivers whose target is None are left out;
    an alert with nowhere to go ends at a receiver that sends nothing.
    """
    webhook: dict[str, Any] | None = None
    if webhook_url is not None:
        webhook = {"url": webhook_url, "send_resolved": True}
        if webhook_token:
            webhook["http_config"] = {
                "authorization": {"type": "Bearer", "credentials": webhook_token}
            }

    def receiver(name: str, **configs: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": name}
        if webhook is not None:
            entry["webhook_configs"] = [webhook]
        for key, config in configs.items():
            entry[key] = [config]
        return entry

    critical: dict[str, dict[str, Any]] = {}
    if pagerduty_events_url is not None:
        url = pagerduty_events_url.rstrip("/")
        if not url.endswith("/v2/enqueue"):
            url += "/v2/enqueue"
        critical["pagerduty_configs"] = {
            "routing_key": pagerduty_routing_key,
            "url": url,
            "send_resolved": True,
        }
    warning: dict[str, dict[str, Any]] = {}
    if opsgenie_url is not None:
        warning["opsgenie_configs"] = {
            "api_key": opsgenie_api_key,
            "api_url": opsgenie_url.rstrip("/") + "/",
            "send_resolved": True,
        }
    config = {
        "global": {"resolve_timeout": resolve_timeout},
        "route": {
            "receiver": "default",
            "group_by": ["alertname", "service"],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
            "routes": [
                {"receiver": "critical", "matchers": ['severity="critical"']},
                {"receiver": "warning", "matchers": ['severity="warning"']},
            ],
        },
        "receivers": [
            receiver("default"),
            receiver("critical", **critical),
            receiver("warning", **warning),
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)
