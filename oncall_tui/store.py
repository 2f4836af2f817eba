"""The local SQLite log: append-only entries, the action outbox, the last snapshot and state.

Everything seen and done lands here so that the night can be replayed (DESIGN.md section 7).
One aiosqlite connection in WAL mode with `synchronous=FULL`: a method that writes returns only
after its transaction is committed, so a webhook answered 2xx survives `kill -9` and power loss.
The file is created with mode 0600 before SQLite opens it, and every string written passes
through `config.redact`, so secrets never enter the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import logging
import math
import os
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import aiosqlite

from oncall_tui.clock import Clock
from oncall_tui.config import redact
from oncall_tui.models import (
    Action,
    ActionStatus,
    LogEntry,
    Snapshot,
)
from oncall_tui.snapshot_codec import (
    json_string_body,
    snapshot_document,
    snapshot_from_json,
    snapshot_to_json,
)

log = logging.getLogger(__name__)

# Each migration is an ordered list of statements; migration N (1-based) brings the file to
# `PRAGMA user_version = N`. Never edit a released migration: append a new one.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """
        CREATE TABLE entries (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            source TEXT NOT NULL,
            kind TEXT NOT NULL,
            summary TEXT NOT NULL,
            actor TEXT NOT NULL DEFAULT '',
            data TEXT NOT NULL DEFAULT '{}'
        )
        """,
        "CREATE INDEX entries_at ON entries (at)",
        "CREATE INDEX entries_source_at ON entries (source, at)",
        # The log is evidence of what happened: the file itself refuses rewrites.
        """
        CREATE TRIGGER entries_append_only_update BEFORE UPDATE ON entries
        BEGIN SELECT RAISE(ABORT, 'log entries are append-only'); END
        """,
        """
        CREATE TRIGGER entries_append_only_delete BEFORE DELETE ON entries
        BEGIN SELECT RAISE(ABORT, 'log entries are append-only'); END
        """,
        """
        CREATE TABLE actions (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            target TEXT NOT NULL,
            params TEXT NOT NULL,
            actor TEXT NOT NULL,
            created_at TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            result TEXT NOT NULL,
            finished_at TEXT,
            updated_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX actions_status ON actions (status, created_at)",
        """
        CREATE TABLE snapshot (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            json TEXT NOT NULL,
            saved_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
        "CREATE TABLE deliveries (id TEXT PRIMARY KEY, at TEXT NOT NULL)",
        "CREATE INDEX deliveries_at ON deliveries (at)",
    ),
)

SCHEMA_VERSION: Final = len(MIGRATIONS)
_INSERT_ENTRY: Final = (
    "INSERT INTO entries (at, source, kind, summary, actor, data) VALUES (?, ?, ?, ?, ?, ?)"
)
BUSY_TIMEOUT_MS: Final = 5000
# PagerDuty retries a delivery for up to 48 h; keep ids a good while longer, then forget them.
DELIVERY_RETENTION: Final = timedelta(days=7)
# Deeper data is refused rather than risking a RecursionError half-way through a write.
MAX_DATA_DEPTH: Final = 64
OFFLOAD_ROWS: Final = 200


class StoreError(Exception):
    """The log cannot be used (wrong file, newer schema, ...); str() is a one-line message."""


def format_time(moment: datetime) -> str:
    """Fixed-width ISO 8601 in UTC (`2024-05-01T02:03:04.000005Z`), so text order is time order."""
    if moment.tzinfo is None:
        raise ValueError("the log only stores timezone-aware datetimes")
    u = moment.astimezone(UTC)
    # Built by hand: strftime("%Y") does not zero-pad years below 1000 on every platform.
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond:06d}Z"
    )


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _prepare_file(path: Path) -> Path:
    """Create the parent directories (0700) and the file (0600) before SQLite touches it."""
    path = path.expanduser()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # O_CREAT with an explicit mode: SQLite would otherwise create it with the umask (often 0644).
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        # An existing log that someone loosened is tightened again: it holds operational history.
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path


def _tighten_sidecars(path: Path) -> None:
    for suffix in ("-wal", "-shm", "-journal"):
        sidecar = path.with_name(path.name + suffix)
        try:
            if sidecar.stat().st_mode & 0o077:
                sidecar.chmod(0o600)
        except FileNotFoundError:
            continue


@contextlib.asynccontextmanager
async def _transaction(db: aiosqlite.Connection) -> AsyncIterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error or cancellation."""
    try:
        await db.execute("BEGIN IMMEDIATE")
        yield
        await db.execute("COMMIT")
    except BaseException:
        # aiosqlite runs statements in order in its thread, so this ROLLBACK comes after a
        # BEGIN or COMMIT whose await was cancelled but which still runs: the transaction
        # never stays open (a later write would join it and be lost at close). When the
        # COMMIT did run there is nothing to roll back, and that must not hide the error.
        with contextlib.suppress(sqlite3.Error, ValueError):
            await asyncio.shield(db.execute("ROLLBACK"))
        raise


class _Redactor:
    """Turns arbitrary values into JSON-ready ones, with every string redacted."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = [s for s in secrets if s]

    def text(self, value: str) -> str:
        if not value.isascii():
            # Lone surrogates (valid in JSON and Python str) cannot be encoded for SQLite.
            value = value.encode("utf-8", "replace").decode("utf-8")
        return redact(value, self.secrets) if self.secrets else value

    def value(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_DATA_DEPTH:
            raise ValueError(f"data nested deeper than {MAX_DATA_DEPTH} levels")
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            # NaN and infinities are not JSON; SQLite's JSON functions would reject the row.
            return value if math.isfinite(value) else None
        if isinstance(value, enum.Enum):
            return self.value(value.value, depth + 1)
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, datetime):
            return format_time(value) if value.tzinfo else value.isoformat()
        if isinstance(value, Mapping):
            return {self.text(str(k)): self.value(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(item, depth + 1) for item in value]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {
                f.name: self.value(getattr(value, f.name), depth + 1)
                for f in dataclasses.fields(value)
            }
        return self.text(str(value))

    def json_text(self, text: str) -> str:
        """Encoded JSON with every secret in its strings redacted (as `text` does)."""
        if not self.secrets:
            return text
        # Matched as they are written inside a JSON string (quotes and backslashes escaped), so
        # a replacement can only ever fall inside a string and the document stays valid.
        return redact(text, [json_string_body(secret) for secret in self.secrets])

    def dumps(self, value: Any) -> str:
        return _dump(self.value(value))

    def dumps_large(self, value: Any) -> str:
        """Like `dumps`, for a large document encoded in a worker thread (see dumps_in_pieces)."""
        return dumps_in_pieces(self.value(value))


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps_in_pieces(value: Any, depth: int = 0) -> str:
    """The same text as one compact `json.dumps`, encoded container by container near the top.

    The C encoder holds the GIL for a whole call: a snapshot of 50,000 alerts encoded in one
    call, even in a worker thread, would freeze the dashboard's event loop for a quarter of a
    second. Encoded alert by alert, the loop gets the GIL back between them.
    """
    if depth < 3:
        if isinstance(value, dict):
            return (
                "{"
                + ",".join(f"{_dump(k)}:{dumps_in_pieces(v, depth + 1)}" for k, v in value.items())
                + "}"
            )
        if isinstance(value, list | tuple):
            return "[" + ",".join(dumps_in_pieces(v, depth + 1) for v in value) + "]"
    return _dump(value)


class Store:
    """The log file. Methods are safe to call concurrently from one event loop."""

    def __init__(
        self, db: aiosqlite.Connection, path: Path, clock: Clock, secrets: Sequence[str]
    ) -> None:
        # Use `Store.open`; the constructor only wires an already prepared connection.
        self._db = db
        self.path = path
        self._clock = clock
        self._redactor = _Redactor(secrets)
        # One connection: without a lock a reader could interleave with, and see, another
        # coroutine's uncommitted transaction.
        self._lock = asyncio.Lock()
        self._closed = False
        # Group commit: entries appended while a commit is under way wait for the next one,
        # which takes them all in one transaction (one fsync) instead of one each.
        self._queued: list[tuple[tuple[str, ...], asyncio.Future[int]]] = []
        self._committer: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: Path, *, clock: Clock, secrets: Sequence[str] = ()) -> Store:
        try:
            path = await asyncio.to_thread(_prepare_file, path)
        except OSError as error:
            raise StoreError(f"cannot create log file {path}: {error.strerror}") from None
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as error:
            raise StoreError(f"cannot open log file {path}: {error}") from None
        try:
            await cls._configure(db, path)
            await cls._migrate(db, path)
            await asyncio.to_thread(_tighten_sidecars, path)
            store = cls(db, path, clock, secrets)
            await store._prune_deliveries()
        except BaseException as error:
            await db.close()
            if isinstance(error, sqlite3.DatabaseError):
                raise StoreError(f"{path} is not a usable oncall-tui log: {error}") from None
            raise
        return store

    @staticmethod
    async def _configure(db: aiosqlite.Connection, path: Path) -> None:
        await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        async with db.execute("PRAGMA journal_mode = WAL") as cursor:
            row = await cursor.fetchone()
        if row is None or str(row[0]).lower() != "wal":
            # Some network filesystems cannot do WAL; the log still works, with more locking.
            log.warning("log file %s could not switch to WAL mode (got %r)", path, row)
        # FULL: the WAL is fsynced at every commit, so a committed entry survives power loss,
        # not only a killed process. Measured cost is small next to the event rate we log.
        await db.execute("PRAGMA synchronous = FULL")
        await db.execute("PRAGMA foreign_keys = ON")

    @staticmethod
    async def _migrate(db: aiosqlite.Connection, path: Path) -> None:
        async with db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        version = int(row[0]) if row else 0
        target = len(MIGRATIONS)
        if version > target:
            raise StoreError(
                f"log file {path} has schema version {version}, newer than this oncall-tui "
                f"understands ({target}); upgrade oncall-tui or use another log.path"
            )
        for number in range(version + 1, target + 1):
            async with _transaction(db):
                for statement in MIGRATIONS[number - 1]:
                    await db.execute(statement)
                # user_version lives in the file header and commits with the migration.
                await db.execute(f"PRAGMA user_version = {number}")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._committer is not None:
            # Entries already queued are committed (and their callers answered) first.
            with contextlib.suppress(Exception):
                await self._committer
        async with self._lock:
            await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- entries --------------------------------------------------------------------------

    async def append(
        self,
        source: str,
        kind: str,
        summary: str,
        *,
        actor: str = "",
        data: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> LogEntry:
        """Append one entry; it is committed (and fsynced) when this returns."""
        entry = await self._append(source, kind, summary, actor, data, at, delivery_id=None)
        assert entry is not None
        return entry

    async def append_delivery(
        self,
        delivery_id: str,
        source: str,
        kind: str,
        summary: str,
        *,
        actor: str = "",
        data: Mapping[str, Any] | None = None,
    ) -> LogEntry | None:
        """Append the entry of a webhook delivery, or return None if that id was logged before.

        The id and the entry commit together. With `seen_delivery` then `append`, a delivery
        whose entry failed to commit would still be remembered, and the sender's retry dropped.
        """
        return await self._append(source, kind, summary, actor, data, None, delivery_id)

    async def _append(
        self,
        source: str,
        kind: str,
        summary: str,
        actor: str,
        data: Mapping[str, Any] | None,
        at: datetime | None,
        delivery_id: str | None,
    ) -> LogEntry | None:
        r = self._redactor
        now = self._clock.now()
        stamp = format_time(at if at is not None else now)
        clean = r.value(dict(data or {}))
        row = (stamp, r.text(source), r.text(kind), r.text(summary), r.text(actor))
        data_json = json.dumps(clean, ensure_ascii=False, separators=(",", ":"))
        entry_id: int | None
        if delivery_id is None:
            entry_id = await self._commit_queued((*row, data_json))
        else:
            async with self._lock:
                async with _transaction(self._db):
                    if not await self._record_delivery(delivery_id, now):
                        return None
                    cursor = await self._db.execute(_INSERT_ENTRY, (*row, data_json))
                entry_id = cursor.lastrowid
                await cursor.close()
        return LogEntry(
            id=entry_id,
            at=parse_time(stamp),
            source=row[1],
            kind=row[2],
            summary=row[3],
            actor=row[4],
            data=clean,
        )

    async def _commit_queued(self, row: tuple[str, ...]) -> int:
        """Queue one entry row for the next group commit; its id once that is committed."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queued.append((row, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_loop(), name="log-commit")
        # Shielded: a caller that gives up must not cancel the commit the others wait for.
        return await asyncio.shield(future)

    async def _commit_loop(self) -> None:
        async with self._lock:
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    async with _transaction(self._db):
                        await self._db.executemany(_INSERT_ENTRY, [row for row, _ in batch])
                        # One writer inside BEGIN IMMEDIATE: the batch got consecutive rowids.
                        rows = await self._db.execute_fetchall("SELECT last_insert_rowid()")
                    last = int(next(iter(rows))[0])
                except Exception as error:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                except BaseException:
                    # Cancelled (the loop is ending): nobody must wait for a commit that will
                    # not come. The entries may or may not have been committed.
                    stopped = StoreError("the log stopped before the entry was confirmed")
                    for _, future in [*batch, *self._queued]:
                        if not future.done():
                            future.set_exception(stopped)
                    self._queued.clear()
                    raise
                first = last - len(batch) + 1
                for offset, (_, future) in enumerate(batch):
                    if not future.done():
                        future.set_result(first + offset)

    async def append_many(self, entries: Sequence[tuple[str, str, str, Mapping[str, Any]]]) -> int:
        """Append several entries (source, kind, summary, data) in one transaction."""
        r = self._redactor
        stamp = format_time(self._clock.now())

        def prepare() -> list[tuple[str, str, str, str, str, str]]:
            return [
                (stamp, r.text(source), r.text(kind), r.text(summary), "", r.dumps(dict(data)))
                for source, kind, summary, data in entries
            ]

        # Thousands of rows (a first poll of a big Alertmanager) take long enough to encode to
        # stall the dashboard: encode them in a worker thread then.
        rows = prepare() if len(entries) < OFFLOAD_ROWS else await asyncio.to_thread(prepare)
        if not rows:
            return 0
        async with self._lock, _transaction(self._db):
            await self._db.executemany(
                "INSERT INTO entries (at, source, kind, summary, actor, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    async def entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        sources: Sequence[str] = (),
        kinds: Sequence[str] = (),
        text: str = "",
        limit: int = 1000,
        newest_first: bool = True,
    ) -> list[LogEntry]:
        """Entries with `since <= at < until`, in time order, at most `limit` (0: no limit).

        `text` matches summary, actor and data, case-insensitively for ASCII. With
        `newest_first=False` the oldest matching entries come first.
        """
        clauses: list[str] = []
        params: list[Any] = []
        if since is not None:
            clauses.append("at >= ?")
            params.append(format_time(since))
        if until is not None:
            clauses.append("at < ?")
            params.append(format_time(until))
        if sources:
            clauses.append(f"source IN ({','.join('?' * len(sources))})")
            params.extend(sources)
        if kinds:
            clauses.append(f"kind IN ({','.join('?' * len(kinds))})")
            params.extend(kinds)
        if text:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
            clauses.append(
                "(summary LIKE ? ESCAPE '\\' OR actor LIKE ? ESCAPE '\\' "
                "OR data LIKE ? ESCAPE '\\')"
            )
            params.extend([pattern, pattern, pattern])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "DESC" if newest_first else "ASC"
        sql = (
            f"SELECT id, at, source, kind, summary, actor, data FROM entries {where} "
            f"ORDER BY at {order}, id {order}"
        )
        if limit > 0:
            sql += " LIMIT ?"
            params.append(limit)
        async with self._lock:
            rows = await self._db.execute_fetchall(sql, params)
        return [
            LogEntry(
                id=row[0],
                at=parse_time(row[1]),
                source=row[2],
                kind=row[3],
                summary=row[4],
                actor=row[5],
                data=json.loads(row[6]),
            )
            for row in rows
        ]

    # --- outbox ---------------------------------------------------------------------------

    async def put_action(self, action: Action) -> None:
        """Insert or replace the action with this id; committed when this returns."""
        r = self._redactor
        now = format_time(self._clock.now())
        row = (
            action.id,
            r.text(action.kind),
            r.text(action.target),
            r.dumps(dict(action.params)),
            r.text(action.actor),
            format_time(action.created_at),
            action.status.value,
            action.attempts,
            r.text(action.result),
            format_time(action.finished_at) if action.finished_at else None,
            now,
        )
        async with self._lock:
            await self._db.execute(
                """
                INSERT INTO actions (id, kind, target, params, actor, created_at, status,
                                     attempts, result, finished_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET
                    kind = excluded.kind, target = excluded.target, params = excluded.params,
                    actor = excluded.actor, status = excluded.status,
                    attempts = excluded.attempts, result = excluded.result,
                    finished_at = excluded.finished_at, updated_at = excluded.updated_at
                """,
                row,
            )

    _ACTION_COLUMNS: Final = (
        "id, kind, target, params, actor, created_at, status, attempts, result, finished_at"
    )

    @staticmethod
    def _action_from_row(row: Sequence[Any]) -> Action:
        return Action(
            id=row[0],
            kind=row[1],
            target=row[2],
            params=json.loads(row[3]),
            actor=row[4],
            created_at=parse_time(row[5]),
            status=ActionStatus(row[6]),
            attempts=row[7],
            result=row[8],
            finished_at=parse_time(row[9]) if row[9] else None,
        )

    async def pending_actions(self) -> list[Action]:
        """Actions still pending, oldest first: what a restart must retry."""
        async with self._lock:
            rows = await self._db.execute_fetchall(
                f"SELECT {self._ACTION_COLUMNS} FROM actions WHERE status = ? "
                "ORDER BY created_at, id",
                (ActionStatus.PENDING.value,),
            )
        return [self._action_from_row(row) for row in rows]

    async def get_action(self, action_id: str) -> Action | None:
        async with self._lock:
            rows = list(
                await self._db.execute_fetchall(
                    f"SELECT {self._ACTION_COLUMNS} FROM actions WHERE id = ?", (action_id,)
                )
            )
        return self._action_from_row(rows[0]) if rows else None

    # --- snapshot -------------------------------------------------------------------------

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Keep `snapshot` as the last known one (replacing the previous)."""
        # Snapshots are immutable; encoding thousands of alerts happens off the event loop.
        text = await asyncio.to_thread(self._snapshot_text, snapshot)
        async with self._lock:
            await self._db.execute(
                "INSERT INTO snapshot (id, json, saved_at) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET json = excluded.json, saved_at = excluded.saved_at",
                (text, format_time(self._clock.now())),
            )

    def _snapshot_text(self, snapshot: Snapshot) -> str:
        try:
            text = snapshot_to_json(snapshot)
        except UnicodeEncodeError:
            # A lone surrogate (possible in a webhook's JSON) cannot be stored: the slower
            # generic walk replaces it, and redacts string by string.
            return self._redactor.dumps_large(snapshot_document(snapshot))
        return self._redactor.json_text(text)

    async def load_snapshot(self) -> Snapshot | None:
        """The last saved snapshot marked `restored=True`, or None if none (or unreadable)."""
        async with self._lock:
            rows = list(await self._db.execute_fetchall("SELECT json FROM snapshot WHERE id = 1"))
        if not rows:
            return None
        try:
            snapshot = snapshot_from_json(rows[0][0])
        except ValueError as error:
            # Only a cache for the first seconds: a snapshot from an older model is dropped.
            log.warning("ignoring unreadable saved snapshot: %s", type(error).__name__)
            return None
        return dataclasses.replace(snapshot, restored=True)

    # --- state and deliveries -------------------------------------------------------------

    async def get_state(self, key: str) -> str | None:
        async with self._lock:
            rows = list(
                await self._db.execute_fetchall(
                    "SELECT value FROM state WHERE key = ?", (self._redactor.text(key),)
                )
            )
        return str(rows[0][0]) if rows else None

    async def set_state(self, key: str, value: str) -> None:
        r = self._redactor
        async with self._lock:
            await self._db.execute(
                "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (r.text(key), r.text(value), format_time(self._clock.now())),
            )

    async def seen_delivery(self, delivery_id: str) -> bool:
        """Record a webhook delivery id; True if it had been recorded before (a retry)."""
        async with self._lock:
            return not await self._record_delivery(delivery_id, self._clock.now())

    async def _record_delivery(self, delivery_id: str, now: datetime) -> bool:
        """True if the id was new (the caller holds the lock)."""
        cursor = await self._db.execute(
            "INSERT INTO deliveries (id, at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
            (self._redactor.text(delivery_id), format_time(now)),
        )
        inserted = cursor.rowcount
        await cursor.close()
        return inserted == 1

    async def _prune_deliveries(self) -> None:
        cutoff = format_time(self._clock.now() - DELIVERY_RETENTION)
        async with self._lock:
            await self._db.execute("DELETE FROM deliveries WHERE at < ?", (cutoff,))
