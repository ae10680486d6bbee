"""One run at a time per database: the run lock, who holds it, and the runs dead holders left.

Every job that writes staging (extract and ``deletions accept`` now; transform, load, sync,
import and publish later) runs inside ``async with run_lock(url, run_id=..., job=...)``, once
for all its steps: a step called by a job that already holds the lock is handed the
:class:`HeldLock` and does not take it again.

- **PostgreSQL**: a session advisory lock (``pg_try_advisory_lock``) on a connection of its own,
  outside every pool, held for the job's life. The server lets go of it when that connection
  ends, whatever the reason, so a job whose connection dropped no longer owns the database: a
  watchdog notices (at once when the server closes the connection, within a ping's interval
  on a silent network), cancels the job's task, and the job leaves the ``async with`` as
  :class:`RunLockLost` (the job closes its run row on the way out, as for any interruption).
- **SQLite**: an exclusive ``flock`` on ``<database file>.lock`` beside the database file the URL
  opens (symlinks and ``file:`` URIs resolved by :func:`etl.db.engine.sqlite_file`; a hard link,
  which no path reveals, escapes it); the kernel releases it when the process dies, however it
  dies. The watchdog checks each second that the path is still the locked file (a removed lock
  file lets the next process lock a new one). ``:memory:`` is private to its process and needs none.

The lock is tried, never waited for: a second run gets :class:`RunLocked` at once, naming the
holder from the ``run_lock_holders`` row the holder wrote once it had the lock (the row is only
ever displayed, never what decides). Right after taking the lock, every ``sync_runs`` row still
``running`` is marked ``abandoned``: only a holder of the lock runs, so whoever left them died.

``etl db upgrade|downgrade`` hold the lock too (a column dropped under a running extract), with
``schema_changes=True``: the database may not have the ``run_lock_holders`` and ``sync_runs``
tables yet, or lose them during the block, so each is written only if it is there at the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog
from sqlalchemy import delete, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from etl.db.engine import create_engine, sqlite_file
from etl.db.runs import mark_abandoned
from etl.db.staging import RunLockHolder, SyncRun

log = structlog.get_logger("etl.db.runlock")

# "bill_etl" in ASCII. One key is enough: advisory locks are already scoped to their database.
LOCK_KEY = 0x62696C6C5F65746C
PING_EVERY = 5.0  # seconds between pings of the PostgreSQL lock connection
STAT_EVERY = 1.0  # seconds between checks of the SQLite lock file (two stat calls: nearly free)
PING_TIMEOUT = 10.0  # a lock connection silent this long is taken as gone


class RunLockError(Exception):
    """The run lock could not be had or kept; the message says whose it is or what happened."""


class RunLocked(RunLockError):
    """Another run holds the lock: this one does not start."""

    def __init__(self, holder: Holder | None) -> None:
        self.holder = holder
        who = str(holder) if holder else "(it has not recorded itself yet; try again in a moment)"
        super().__init__(f"another run holds the lock: {who}")


class RunLockLost(RunLockError):
    """The lock was lost while the job ran: the job was stopped."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"lost the run lock ({reason}): the run was stopped")


@dataclass(frozen=True)
class Holder:
    """Who holds the lock, as its ``run_lock_holders`` row says."""

    run_id: str
    job: str
    host: str
    pid: int
    since: datetime

    def __str__(self) -> str:
        return f"run {self.run_id} ({self.job}) on {self.host} pid {self.pid} since {self.since:%Y-%m-%d %H:%M:%S} UTC"


@dataclass
class HeldLock:
    """The lock while it is held; ``lost`` says why it no longer is (None while it is)."""

    holder: Holder
    lost: str | None = None


@contextlib.asynccontextmanager
async def run_lock(
    url: str, *, run_id: str, job: str, check_every: float | None = None, schema_changes: bool = False
) -> AsyncIterator[HeldLock]:
    """Hold the database's run lock for the block, or raise :class:`RunLocked` at once.

    Inside, the lock is checked every ``check_every`` seconds (by default the backend's own
    interval); when it is lost the block's task is cancelled and the block ends with
    :class:`RunLockLost`. ``schema_changes`` is for a block that migrates the schema: the
    holder row and the abandoned runs are written only where their tables exist."""
    held = HeldLock(Holder(run_id, job, socket.gethostname()[:255], os.getpid(), datetime.now(UTC)))
    if _is_memory(url):
        yield held
        return
    # NullPool: the lock's connections are its own, never handed to or borrowed from the job.
    engine = create_engine(url, poolclass=NullPool)
    try:
        backend = _backend(url, engine)
        if not await backend.acquire():
            raise RunLocked(await _recorded_holder(engine))
        try:
            await _take_over(engine, held.holder, schema_changes)
            async with _watched(held, backend, check_every or backend.check_every):
                yield held
        finally:
            await _forget(engine, run_id, schema_changes)
            await backend.release()
    finally:
        await engine.dispose()


async def current_holder(url: str) -> Holder | None:
    """The live holder of the lock, for display (None when nobody holds it), without touching it."""
    if _is_memory(url):
        return None
    engine = create_engine(url, poolclass=NullPool)
    try:
        holder = await _recorded_holder(engine)
        if holder is None:
            return None
        alive = await _advisory_lock_granted(engine) if _backend_name(url) == "postgresql" else _process_alive(holder)
        return holder if alive else None
    finally:
        await engine.dispose()


def lock_file(url: str) -> Path:
    """The file an SQLite database's lock is taken on: beside the database's real file, named after it."""
    database = sqlite_file(url)
    if database is None:
        raise ValueError("an in-memory SQLite database has no lock file")
    return database.with_name(database.name + ".lock")


class _AdvisoryLock:
    """``pg_try_advisory_lock`` on a dedicated connection in autocommit (no transaction held open)."""

    check_every = PING_EVERY

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._closed = asyncio.Event()

    async def acquire(self) -> bool:
        conn = await (await self._engine.connect()).execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = bool(await conn.scalar(text(f"SELECT pg_try_advisory_lock({LOCK_KEY})")))
            if taken:
                # asyncpg calls this as soon as the server closes the connection (a terminated
                # backend, a restart), so the job stops at once rather than at the next ping.
                raw = await conn.get_raw_connection()
                raw.driver_connection.add_termination_listener(lambda _conn: self._closed.set())
        except BaseException:
            await conn.close()
            raise
        if not taken:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def wait_lost(self, every: float) -> str:
        assert self._conn is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), every)
            try:
                async with asyncio.timeout(PING_TIMEOUT):
                    await self._conn.execute(text("SELECT 1"))
            except Exception as exc:
                reason = str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else ""
                return f"its PostgreSQL connection dropped: {reason or type(exc).__name__}"

    async def release(self) -> None:
        if self._conn is None:
            return
        # Closing the connection releases the lock too; the explicit unlock says so in the server's log.
        with contextlib.suppress(Exception):
            await self._conn.execute(text(f"SELECT pg_advisory_unlock({LOCK_KEY})"))
        with contextlib.suppress(Exception):
            await self._conn.close()
        self._conn = None


class _FileLock:
    """An exclusive ``flock`` on a file beside the database; never waits, never deletes the file
    (removing a lock file while another process opens it would let two processes lock two files)."""

    check_every = STAT_EVERY

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    async def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    async def wait_lost(self, every: float) -> str:
        assert self._fd is not None
        while True:
            await asyncio.sleep(every)
            try:
                ours = os.path.samestat(os.fstat(self._fd), os.stat(self.path))
            except OSError:
                ours = False
            if not ours:
                # Whoever opens the path now locks another file: the lock no longer excludes anyone.
                return f"its lock file {self.path} was removed or replaced"

    async def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


def _backend(url: str, engine: AsyncEngine) -> _AdvisoryLock | _FileLock:
    name = _backend_name(url)
    if name == "postgresql":
        return _AdvisoryLock(engine)
    if name == "sqlite":
        return _FileLock(lock_file(url))
    raise RunLockError(f"no run lock for database backend {name!r} (SQLite and PostgreSQL have one)")


def _backend_name(url: str) -> str:
    return make_url(url).get_backend_name()


def _is_memory(url: str) -> bool:
    return _backend_name(url) == "sqlite" and sqlite_file(url) is None


@contextlib.asynccontextmanager
async def _watched(held: HeldLock, backend: _AdvisoryLock | _FileLock, every: float) -> AsyncIterator[None]:
    """Run the block while a watchdog checks the lock; on loss, cancel the block's task and end
    the block with :class:`RunLockLost` instead of a bare cancellation."""
    task = asyncio.current_task()
    assert task is not None

    async def watch() -> None:
        held.lost = await backend.wait_lost(every)
        log.error("run lock lost: stopping the run", reason=held.lost)
        task.cancel(f"lost the run lock: {held.lost}")

    watcher = asyncio.create_task(watch())
    try:
        yield
    except asyncio.CancelledError:
        if held.lost is None:
            raise
        raise RunLockLost(held.lost) from None
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        if held.lost is not None:
            task.uncancel()  # the cancellation was ours and has been turned into RunLockLost
    if held.lost is not None:
        raise RunLockLost(held.lost)  # the block swallowed the cancellation: still not a clean run


async def _take_over(engine: AsyncEngine, holder: Holder, schema_changes: bool = False) -> None:
    """Record the new holder and mark the runs dead holders left ``running`` abandoned (with
    ``schema_changes``, each only if its table is there: a database not migrated yet has none)."""
    tables = await _tables(engine) if schema_changes else {RunLockHolder.__tablename__, SyncRun.__tablename__}
    if RunLockHolder.__tablename__ in tables:
        async with engine.begin() as conn:
            await conn.execute(delete(RunLockHolder))
            await conn.execute(
                RunLockHolder.__table__.insert().values(
                    run_id=holder.run_id, job=holder.job, host=holder.host, pid=holder.pid, since=holder.since
                )
            )
    if SyncRun.__tablename__ in tables and (abandoned := await mark_abandoned(engine, found_by=holder.run_id)):
        log.warning("runs left running by dead holders marked abandoned", runs=abandoned)


async def _forget(engine: AsyncEngine, run_id: str, schema_changes: bool = False) -> None:
    # A row left behind (database unreachable now) is harmless: the next holder replaces it.
    try:
        if schema_changes and RunLockHolder.__tablename__ not in await _tables(engine):
            return  # a downgrade dropped the table, and the row with it
        async with engine.begin() as conn:
            await conn.execute(delete(RunLockHolder).where(RunLockHolder.run_id == run_id))
    except Exception as exc:
        log.warning("could not clear the run lock holder row", error=type(exc).__name__)


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def _recorded_holder(engine: AsyncEngine) -> Holder | None:
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(select(RunLockHolder).limit(1))).first()
    except Exception:  # an unreadable row must not hide the refusal itself
        return None
    if row is None:
        return None
    since = row.since if row.since.tzinfo else row.since.replace(tzinfo=UTC)  # SQLite keeps no zone
    return Holder(row.run_id, row.job, row.host, row.pid, since)


async def _advisory_lock_granted(engine: AsyncEngine) -> bool:
    # A bigint advisory key shows in pg_locks as classid (high half), objid (low half), objsubid 1.
    high, low = LOCK_KEY >> 32, LOCK_KEY & 0xFFFFFFFF
    query = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        f"AND classid = {high} AND objid = {low} AND objsubid = 1"
    )
    async with engine.connect() as conn:
        return bool(await conn.scalar(query))


def _process_alive(holder: Holder) -> bool:
    # A holder on another host cannot be checked from here: shown as it recorded itself.
    if holder.host != socket.gethostname()[:255]:
        return True
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
