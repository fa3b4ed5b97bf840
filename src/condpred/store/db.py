"""The run store: one SQLite file that records every run as it happens.

Every write commits at once, so a run that is killed keeps everything it finished. The database
runs in WAL mode with `synchronous=NORMAL`: a committed row survives the process being killed
(SIGKILL included); only a power cut or OS crash can lose the last few commits. Several processes
may open the same file; SQLite serialises their writes (waiting up to `timeout` seconds).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import secrets
import socket
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from condpred.errors import InputError
from condpred.model.base import Sample, Score
from condpred.store import export
from condpred.store.schema import MIGRATIONS
from condpred.validate import check_seed, writing

if TYPE_CHECKING:
    import pandas as pd

    from condpred.checks.base import CheckResult

STATUSES = ("running", "done", "failed", "interrupted")
EXPORT_FORMATS = ("jsonl", "parquet", "csv")
LATEST = re.compile(r"latest(~\d+)?")  # the newest run, or the one N before it


@dataclass(frozen=True)
class RunRecord:
    """One run: what was run, how, by which condpred, and how it ended."""

    id: str
    kind: str
    model_spec: str
    params: dict[str, Any]
    seed: int | None
    version: str
    status: str
    created_at: str
    finished_at: str | None = None
    timings: dict[str, Any] | None = None
    error: str | None = None
    n_samples: int = 0
    n_scores: int = 0
    owner: dict[str, Any] | None = None  # the process running it: host, pid, start time

    @property
    def live_elsewhere(self) -> bool:
        """Running now, in another process that is alive on this host."""
        return (
            self.status == "running"
            and owner_alive(self.owner) is True
            and self.owner is not None
            and (self.owner["host"], self.owner["pid"]) != (socket.gethostname(), os.getpid())
        )


@dataclass(frozen=True)
class RunFilter:
    """Which runs to list: each field set narrows the list (all of them together)."""

    kind: str | None = None
    status: str | None = None
    model: str | None = None  # a substring of the model spec
    text: str | None = None  # a substring of the id, kind, model spec or parameters
    since: str | None = None  # ISO date or time: created at or after
    until: str | None = None  # ISO date or time: created before (a date: up to its end)

    def sql(self) -> tuple[list[str], list[Any]]:
        """The WHERE clauses (on `runs r`) and their arguments."""
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (("r.kind", self.kind), ("r.status", self.status)):
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        if self.model:
            clauses.append("instr(r.model_spec, ?) > 0")
            args.append(self.model)
        if self.text:
            clauses.append(
                "(instr(r.id, ?) > 0 OR instr(r.kind, ?) > 0 OR instr(r.model_spec, ?) > 0"
                " OR instr(r.params, ?) > 0)"
            )
            args += [self.text] * 4
        if self.since:
            clauses.append("r.created_at >= ?")
            args.append(self.since)
        if self.until:
            clauses.append("r.created_at < ?")
            # A bare date means up to the end of that day ("~" sorts after any time's digits).
            args.append(self.until + ("~" if len(self.until) == 10 else ""))
        return clauses, args


@dataclass(frozen=True)
class ConditionalRecord:
    """One conditional of a run, as YAML and as the exact text the model saw."""

    index: int
    yaml_text: str
    rendered: str
    source: str | None = None


def default_path() -> Path:
    """`$CONDPRED_DB` if set, else `condpred-runs.db` in the working directory."""
    return Path(os.environ.get("CONDPRED_DB") or "condpred-runs.db").expanduser()


SQLITE_HEADER = b"SQLite format 3\x00"


# Store files this process has open, by resolved path. Closing *any* descriptor of a database
# file drops every POSIX lock this process holds on it, other connections' included (SQLite's
# "how to corrupt a database", 2.2): seen as "disk I/O error" when the viewer's thread held the
# store while a test opened it again. So the raw header is read only while no Store of this
# process has the file open (one that has was checked when it opened).
_OPEN: Counter[str] = Counter()
_OPEN_LOCK = threading.Lock()


def _check_header(path: Path) -> None:
    """Refuse a file that is not an SQLite database by its first bytes (an empty file is a new
    store), before SQLite opens it."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except OSError as e:
        raise InputError(f"cannot read the run store ({e.strerror})", source=str(path)) from None
    if head and head != SQLITE_HEADER:
        raise InputError(
            "is not a database (no SQLite header), so not a condpred run store; condpred left "
            "it untouched",
            source=str(path),
            fix="Point --db or CONDPRED_DB at another file (a new name creates a new store)",
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def package_version() -> str:
    """The installed condpred's version, recorded with runs and check specs."""
    try:
        return version("condpred")
    except PackageNotFoundError:
        return "unknown"


def _process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot), to tell it from a later process that
    reuses its id; "zombie" for an ended process not yet reaped; None without /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return "zombie" if fields[0] == "Z" else fields[19]


def _owner() -> str:
    pid = os.getpid()
    return json.dumps({"host": socket.gethostname(), "pid": pid, "started": _process_start(pid)})


def owner_alive(owner: dict[str, Any] | None) -> bool | None:
    """Whether the process that owns a run is alive: True or False on this host; None for a
    run owned on another host, or by a condpred that did not record its owner."""
    if not owner or owner.get("host") != socket.gethostname():
        return None
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    started = _process_start(owner["pid"])
    if started == "zombie":
        return False
    return owner.get("started") is None or started is None or started == owner["started"]


def refuse_if_live(run: RunRecord, path: str | Path) -> RunRecord:
    """The run itself, unless another live process is running it: resuming it too would race."""
    if run.live_elsewhere:
        owner = run.owner or {}
        raise InputError(
            f"run {run.id} is still running in process {owner.get('pid')} on this machine",
            source=str(path),
            fix=f"Wait for it to finish, or stop it (kill {owner.get('pid')}) and resume again",
        )
    return run


def _add_timings(
    before: dict[str, Any] | None, now: dict[str, Any] | None
) -> dict[str, Any] | None:
    if before is None or now is None:
        return now if before is None else before
    numbers = (int, float)
    return {
        key: before[key] + now[key]
        if isinstance(before.get(key), numbers) and isinstance(now.get(key), numbers)
        else now.get(key, before.get(key))
        for key in {**before, **now}
    }


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements, so they can run inside one transaction.

    (`executescript` would commit first, letting another process migrate at the same time.)
    """
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in migration: {pending!r}")


class Store:
    """The SQLite run store. Open with `Store()` or `with Store(path) as store: ...`."""

    def __init__(
        self, path: str | Path | None = None, *, timeout: float = 30.0, create: bool = True
    ) -> None:
        """`create=False` (read-only commands, resumes): a missing file is an error instead of a
        new empty store. A file that is not a condpred store is refused before anything is
        written to it (condpred never modifies another program's file)."""
        self.path = Path(path).expanduser() if path is not None else default_path()
        if self.path.is_dir():
            raise InputError("is a directory, not a run store", source=str(self.path))
        exists = self.path.exists()
        if not exists and not create:
            raise InputError(
                "no run store here (the file does not exist)",
                source=str(self.path),
                fix="Check --db or $CONDPRED_DB: runs are stored where they were made "
                "(default: ./condpred-runs.db in the working directory)",
            )
        read_only = exists and not os.access(self.path, os.W_OK)
        self._key = str(self.path.resolve())
        with _OPEN_LOCK:
            if exists and not _OPEN[self._key]:
                _check_header(self.path)
            try:
                if not exists:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                # isolation_level=None: no hidden transactions; each write commits unless in _tx().
                target = f"file:{self._key}?mode=ro" if read_only else self.path
                self._conn = sqlite3.connect(
                    target, timeout=timeout, isolation_level=None, uri=read_only
                )
            except (OSError, sqlite3.Error) as e:
                raise InputError(f"cannot open the run store: {e}", source=str(self.path)) from None
            _OPEN[self._key] += 1
        self._conn.row_factory = sqlite3.Row
        self.read_only = read_only
        try:
            self._refuse_foreign()  # looks before writing: a foreign file stays byte for byte
            if read_only:
                self._check_schema_current()
                return
            self._q("PRAGMA journal_mode=WAL")
            self._q("PRAGMA synchronous=NORMAL")
            self._q("PRAGMA foreign_keys=ON")
            self._migrate()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def close(self) -> None:
        with _OPEN_LOCK:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                _OPEN[self._key] -= 1

    # --- plumbing -------------------------------------------------------------------------------

    def _q(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        """Run one statement; a broken or unreadable database becomes an InputError naming it."""
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as e:
            if type(e) not in (sqlite3.DatabaseError, sqlite3.OperationalError):
                raise  # constraint violations and misuse are the caller's bugs
            if "readonly" in str(e) or "read-only" in str(e):
                raise InputError(
                    f"the run store is read-only ({e})",
                    source=str(self.path),
                    fix="Make it writable (chmod u+w, and its folder, which holds the -wal "
                    "file), or pass --db a writable file for new runs",
                ) from None
            raise InputError(
                f"the run store failed: {e}",
                source=str(self.path),
                fix="if this file is not a condpred run store or is damaged, point CONDPRED_DB "
                "at another file (condpred never overwrites one)",
            ) from None

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """One write transaction, taken up front so concurrent writers queue instead of failing.
        Inside another transaction it joins that one (so several writes commit together)."""
        if self._conn.in_transaction:
            yield
            return
        self._q("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self._q("COMMIT")

    def _insert(self, what: str, sql: str, args: tuple[Any, ...]) -> None:
        try:
            self._q(sql, args)
        except sqlite3.IntegrityError as e:
            if "FOREIGN KEY" in str(e):
                raise ValueError(f"{what}: add its conditional first (add_conditional)") from None
            raise ValueError(f"{what} is already stored ({e})") from None

    def _refuse_foreign(self) -> None:
        """Refuse an SQLite database of another program, reading only (no lock taken for
        writing, no journal-mode switch), so the file is left exactly as it was."""
        tables = {r[0] for r in self._q("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "schema_version" not in tables:
            raise InputError(
                "is an SQLite database but not a condpred run store "
                f"(it has tables {', '.join(sorted(tables))}); condpred left it untouched",
                source=str(self.path),
                fix="Point --db or CONDPRED_DB at another file",
            )

    def _check_schema_current(self) -> None:
        tables = {r[0] for r in self._q("SELECT name FROM sqlite_master WHERE type='table'")}
        current = 0
        if "schema_version" in tables:
            current = self._q("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0]
        if current != len(MIGRATIONS):
            raise InputError(
                f"is read-only and its schema ({current}) is not this condpred's "
                f"({len(MIGRATIONS)}), so it cannot be read or upgraded",
                source=str(self.path),
                fix="Make the file writable once (chmod u+w) so condpred can upgrade it, "
                "or use the condpred version that wrote it",
            )

    def _migrate(self) -> None:
        """Bring the schema up to date, under a write lock so only one process migrates."""
        with self._tx():
            self._refuse_foreign()  # again under the lock: another process may have written
            self._q(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            current = self._q("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0]
            if current > len(MIGRATIONS):
                raise InputError(
                    f"was written by a newer condpred (schema {current}, this one knows "
                    f"{len(MIGRATIONS)})",
                    source=str(self.path),
                    fix="upgrade condpred: pip install -U condpred",
                )
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in _statements(script):
                    self._q(statement)
                self._q("INSERT INTO schema_version VALUES (?, ?)", (number, _now()))

    # --- ids --------------------------------------------------------------------------------------

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one run whose id starts with `prefix` (ids are long to type), or
        of the latest run (`latest`) or the one N before it (`latest~N`)."""
        prefix = prefix.strip()
        if not prefix:
            raise InputError("empty run id", fix=self._recent_hint())
        if LATEST.fullmatch(prefix):
            back = int(prefix.partition("~")[2] or 0)
            rows = self._q("SELECT id FROM runs ORDER BY rowid DESC LIMIT 1 OFFSET ?", (back,))
            if not rows:
                raise InputError(
                    f"'{prefix}': this store has {self._count()} runs",
                    source=str(self.path),
                    fix=self._recent_hint(),
                )
            return rows[0][0]
        # A range on the primary key: every id starting with prefix sorts in [prefix, prefix+max).
        rows = self._q(
            "SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 11",
            (prefix, prefix + "\U0010ffff"),
        )
        ids = [r[0] for r in rows]
        if prefix in ids or len(ids) == 1:
            return prefix if prefix in ids else ids[0]
        if ids:
            shown = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
            raise InputError(
                f"run id '{prefix}' is ambiguous: it matches {shown}",
                source=str(self.path),
                fix="give more characters of the id",
            )
        everything = [r[0] for r in self._q("SELECT id FROM runs")]
        near = difflib.get_close_matches(prefix, everything, n=5, cutoff=0.5)
        raise InputError(
            f"no run with id '{prefix}'",
            source=str(self.path),
            fix=f"did you mean: {', '.join(near)}?" if near else self._recent_hint(),
        )

    def _count(self) -> int:
        return self._q("SELECT COUNT(*) FROM runs")[0][0]

    def _recent_hint(self) -> str:
        recent = self.list_runs(limit=5)
        if not recent:
            return "this store has no runs yet"
        return "recent runs: " + ", ".join(f"{r.id} ({r.kind}, {r.status})" for r in recent)

    # --- writing ----------------------------------------------------------------------------------

    def create_run(
        self, kind: str, model_spec: str, params: dict[str, Any], seed: int | None
    ) -> str:
        """Record a new run as 'running' and return its id: UTC time + random suffix, sortable."""
        check_seed(seed)  # SQLite keeps signed 64-bit integers
        params_json = json.dumps(params, sort_keys=True)
        with self._tx():
            while True:
                run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
                if not self._q("SELECT 1 FROM runs WHERE id = ?", (run_id,)):
                    break
            self._q(
                "INSERT INTO runs (id, kind, model_spec, params, seed, version, status, created_at,"
                " owner) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)",
                (run_id, kind, model_spec, params_json, seed, package_version(), _now(), _owner()),
            )
        return run_id

    def add_conditional(
        self,
        run_id: str,
        index: int,
        yaml_text: str,
        rendered: str,
        source: str | Path | None = None,
    ) -> None:
        """Record conditional `index` of a run: its YAML and the exact text the model saw."""
        run_id = self.resolve_id(run_id)
        self._insert(
            f"conditional {index} of run {run_id}",
            "INSERT INTO conditionals VALUES (?, ?, ?, ?, ?)",
            (run_id, index, None if source is None else str(source), yaml_text, rendered),
        )

    def add_sample(self, run_id: str, cond_index: int, sample: Sample) -> None:
        """Store one sample, committed at once: it is durable as soon as this returns."""
        run_id = self.resolve_id(run_id)
        self._insert(
            f"sample {sample.index} of conditional {cond_index} of run {run_id}",
            "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                cond_index,
                sample.index,
                sample.text,
                json.dumps(sample.tokens),
                json.dumps(sample.token_logprobs),
                sample.finish_reason,
                _now(),
            ),
        )

    def add_scores(self, run_id: str, cond_index: int, scores: list[Score]) -> None:
        """Store scores for one conditional in one commit, after any already stored for it."""
        run_id = self.resolve_id(run_id)
        with self._tx():
            start = self._q(
                "SELECT COUNT(*) FROM scores WHERE run_id = ? AND cond_index = ?",
                (run_id, cond_index),
            )[0][0]
            for i, s in enumerate(scores, start=start):
                self._insert(
                    f"score {i} of conditional {cond_index} of run {run_id}",
                    "INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        cond_index,
                        i,
                        s.continuation,
                        s.logprob,
                        json.dumps(s.token_logprobs),
                        json.dumps(s.tokens),
                        int(s.greedy),
                    ),
                )

    def add_check_results(self, run_id: str, cond_index: int, results: list[CheckResult]) -> None:
        """Store what the checks found for one conditional, in one commit."""
        run_id = self.resolve_id(run_id)
        with self._tx():
            for r in results:
                self._insert(
                    f"check {r.check} of run {run_id}",
                    "INSERT INTO check_results (run_id, cond_index, sample_index, check_name,"
                    " value, threshold, verdict, evidence, message, created_at, spec)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        cond_index,
                        r.sample_index,
                        r.check,
                        r.value,
                        r.threshold,
                        r.verdict,
                        json.dumps(r.evidence, ensure_ascii=False, default=str),
                        r.message,
                        _now(),
                        r.spec,
                    ),
                )

    def replace_check_results(
        self, run_id: str, cond_index: int, checks: Sequence[str], results: list[CheckResult]
    ) -> None:
        """Store what `checks` found for one conditional in place of what they found before (a
        check named "surprisal" owns the rows "surprisal" and "surprisal.*"), in one commit: a
        check run again replaces its rows instead of adding a second set."""
        run_id = self.resolve_id(run_id)
        with self._tx():
            for name in checks:
                self._q(
                    "DELETE FROM check_results WHERE run_id = ? AND cond_index = ?"
                    " AND (check_name = ? OR substr(check_name, 1, ?) = ?)",
                    (run_id, cond_index, name, len(name) + 1, name + "."),
                )
            self.add_check_results(run_id, cond_index, results)

    def add_item(
        self,
        run_id: str,
        table: str,
        index: int,
        data: dict[str, Any],
        *,
        version: int = 1,
        conditional: tuple[str, str, str | Path | None] | None = None,
        samples: Sequence[Sample] = (),
        check_results: Sequence[CheckResult] = (),
    ) -> None:
        """Store one experiment row (a forecast question, a plan, an eval item) **with its side
        records** — its conditional `(yaml, rendered, source)` at cond_index = index, its samples
        and check results — in one transaction, with the `version` of the row model it follows:
        an interrupted experiment keeps every item it finished, whole, and none in part."""
        run_id = self.resolve_id(run_id)
        with self._tx():
            if conditional is not None:
                # Side records an older condpred committed before the item row: recomputed now.
                self._q(
                    "DELETE FROM conditionals WHERE run_id = ? AND cond_index = ?", (run_id, index)
                )
                self.add_conditional(run_id, index, *conditional)
            for sample in samples:
                self.add_sample(run_id, index, sample)
            if check_results:
                self.add_check_results(run_id, index, list(check_results))
            self._insert(
                f"item {index} of table {table!r} in run {run_id}",
                "INSERT INTO items (run_id, table_name, item_index, data, created_at, row_version)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    table,
                    index,
                    json.dumps(data, ensure_ascii=False, default=str),
                    _now(),
                    version,
                ),
            )

    def items(self, run_id: str, table: str) -> list[dict[str, Any]]:
        """A run's rows in one experiment table, by item index, as stored (JSON objects)."""
        return [data for _, data in self.item_data(run_id, table)]

    def item_data(
        self, run_id: str, table: str, *, offset: int = 0, limit: int | None = None
    ) -> list[tuple[int, dict[str, Any]]]:
        """(row version, row) of each item in one experiment table, by item index: what
        `experiments.runner.read_rows` reads typed rows from. `offset`/`limit` page through a
        large table in SQL (the viewer's pages)."""
        run_id = self.resolve_id(run_id)
        rows = self._q(
            "SELECT row_version, data FROM items WHERE run_id = ? AND table_name = ?"
            " ORDER BY item_index LIMIT ? OFFSET ?",
            (run_id, table, -1 if limit is None else limit, offset),
        )
        return [(r[0], json.loads(r[1])) for r in rows]

    def item_tables(self, run_id: str) -> dict[str, int]:
        """The experiment tables a run has rows in, with how many rows each."""
        run_id = self.resolve_id(run_id)
        rows = self._q(
            "SELECT table_name, COUNT(*) FROM items WHERE run_id = ? GROUP BY table_name"
            " ORDER BY table_name",
            (run_id,),
        )
        return {r[0]: r[1] for r in rows}

    def item_indices(self, run_id: str, table: str) -> set[int]:
        """Item indices already stored in a table; a resume computes only the others."""
        run_id = self.resolve_id(run_id)
        rows = self._q(
            "SELECT item_index FROM items WHERE run_id = ? AND table_name = ?", (run_id, table)
        )
        return {r[0] for r in rows}

    def finish_run(
        self,
        run_id: str,
        status: Literal["done", "failed", "interrupted"] = "done",
        timings: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Record how a run ended. A resumed run's timings add to those it had (seconds add up;
        a key only one part has is kept). A killed run's process cannot record anything: reading
        it, the store sees that its process is gone and reports it 'interrupted'."""
        if status not in STATUSES[1:]:
            raise ValueError(f"a run finishes as one of {STATUSES[1:]}, not {status!r}")
        run_id = self.resolve_id(run_id)
        with self._tx():
            before = self._q("SELECT timings FROM runs WHERE id = ?", (run_id,))[0][0]
            merged = _add_timings(json.loads(before) if before else None, timings)
            self._q(
                "UPDATE runs SET status = ?, finished_at = ?, timings = ?, error = ? WHERE id = ?",
                (status, _now(), None if merged is None else json.dumps(merged), error, run_id),
            )

    def reopen_run(self, run_id: str) -> str:
        """Mark a run 'running' again, owned by this process, to resume it; returns the full
        id. A run still running in another live process is refused (see `refuse_if_live`)."""
        run = refuse_if_live(self.get_run(run_id), self.path)
        self._q(
            "UPDATE runs SET status = 'running', finished_at = NULL, error = NULL, owner = ?"
            " WHERE id = ?",
            (_owner(), run.id),
        )
        return run.id

    # --- reading ----------------------------------------------------------------------------------

    _RUN_SELECT = """
        SELECT r.*,
            (SELECT COUNT(*) FROM samples s WHERE s.run_id = r.id) AS n_samples,
            (SELECT COUNT(*) FROM scores c WHERE c.run_id = r.id) AS n_scores
        FROM runs r
    """

    @staticmethod
    def _run(row: sqlite3.Row) -> RunRecord:
        """A stored run; one still marked running whose process is gone reads 'interrupted'
        (the store is not written: reading never changes it)."""
        data = dict(row)
        data["params"] = json.loads(data["params"])
        data["timings"] = None if data["timings"] is None else json.loads(data["timings"])
        data["owner"] = json.loads(data["owner"]) if data.get("owner") else None
        if data["status"] == "running" and owner_alive(data["owner"]) is False:
            data["status"] = "interrupted"
            data["error"] = (
                f"its process ({data['owner']['pid']} on {data['owner']['host']}) ended "
                "without closing it"
            )
        return RunRecord(**data)

    def get_run(self, run_id: str) -> RunRecord:
        """One run, looked up by id or unique id prefix."""
        run_id = self.resolve_id(run_id)
        return self._run(self._q(self._RUN_SELECT + " WHERE r.id = ?", (run_id,))[0])

    def list_runs(self, limit: int | None = 20, kind: str | None = None) -> list[RunRecord]:
        """The most recent runs first (in the order they were created), optionally of one kind."""
        return self.find_runs(RunFilter(kind=kind), limit=limit)[0]

    def find_runs(
        self, where: RunFilter, *, limit: int | None = 20, offset: int = 0
    ) -> tuple[list[RunRecord], int]:
        """One page of the runs matching `where`, most recent first, and how many match in all:
        filtered and paged in SQL, so a store of many runs lists as fast as a small one. A
        status filter matches the stored status (a 'running' run whose process is gone reads
        'interrupted' but is stored 'running')."""
        clauses, args = where.sql()
        condition = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        total = self._q(f"SELECT COUNT(*) FROM runs r {condition}", args)[0][0]
        rows = self._q(
            f"{self._RUN_SELECT} {condition} ORDER BY r.rowid DESC LIMIT ? OFFSET ?",
            [*args, -1 if limit is None else limit, offset],
        )
        return [self._run(r) for r in rows], total

    def run_kinds(self) -> list[str]:
        """The kinds of run this store holds, sorted."""
        return [r[0] for r in self._q("SELECT DISTINCT kind FROM runs ORDER BY kind")]

    def conditionals(self, run_id: str) -> list[ConditionalRecord]:
        """A run's conditionals in index order."""
        run_id = self.resolve_id(run_id)
        rows = self._q(
            "SELECT cond_index, yaml, rendered, source FROM conditionals"
            " WHERE run_id = ? ORDER BY cond_index",
            (run_id,),
        )
        return [ConditionalRecord(*r) for r in rows]

    def samples(self, run_id: str, cond_index: int | None = None) -> list[Sample]:
        """A run's samples ordered by (conditional, index); `Sample.index` is set."""
        return [sample for _, sample in self._sample_rows(run_id, cond_index)]

    def sample_page(
        self, run_id: str, cond_index: int | None = None, *, offset: int = 0, limit: int = 20
    ) -> list[tuple[int, Sample]]:
        """One page of a run's (conditional index, sample) pairs, in `samples` order, paged in
        SQL on the primary key's index: a run of many samples pages as fast as a small one."""
        return list(self._sample_rows(run_id, cond_index, offset, limit))

    def count_samples(self, run_id: str, cond_index: int | None = None) -> int:
        """How many samples a run (or one of its conditionals) has stored."""
        return self._q(
            "SELECT COUNT(*) FROM samples WHERE run_id = ? AND (? IS NULL OR cond_index = ?)",
            (self.resolve_id(run_id), cond_index, cond_index),
        )[0][0]

    def _sample_rows(
        self, run_id: str, cond_index: int | None, offset: int = 0, limit: int | None = None
    ) -> Iterator[tuple[int, Sample]]:
        rows = self._q(
            "SELECT * FROM samples WHERE run_id = ? AND (? IS NULL OR cond_index = ?)"
            " ORDER BY cond_index, sample_index LIMIT ? OFFSET ?",
            (
                self.resolve_id(run_id),
                cond_index,
                cond_index,
                -1 if limit is None else limit,
                offset,
            ),
        )
        for r in rows:
            yield (
                r["cond_index"],
                Sample(
                    text=r["text"],
                    token_logprobs=json.loads(r["token_logprobs"]),
                    tokens=json.loads(r["tokens"]),
                    finish_reason=r["finish_reason"],
                    index=r["sample_index"],
                ),
            )

    def scores(self, run_id: str, cond_index: int | None = None) -> list[Score]:
        """A run's scores ordered by (conditional, index)."""
        return [score for _, _, score in self._score_rows(run_id, cond_index)]

    def _score_rows(self, run_id: str, cond_index: int | None) -> Iterator[tuple[int, int, Score]]:
        rows = self._q(
            "SELECT * FROM scores WHERE run_id = ? AND (? IS NULL OR cond_index = ?)"
            " ORDER BY cond_index, score_index",
            (self.resolve_id(run_id), cond_index, cond_index),
        )
        for r in rows:
            yield (
                r["cond_index"],
                r["score_index"],
                Score(
                    continuation=r["continuation"],
                    logprob=r["logprob"],
                    token_logprobs=json.loads(r["token_logprobs"]),
                    tokens=json.loads(r["tokens"]),
                    greedy=bool(r["greedy"]),
                ),
            )

    def check_results(
        self,
        run_id: str,
        cond_index: int | None = None,
        *,
        samples: Sequence[int | None] | None = None,
    ) -> list[CheckResult]:
        """Stored check results, in the order they were added; with `samples`, only those about
        these sample indices (one page of samples), None standing for the findings about the
        conditional as a whole."""
        rows = self._check_rows(self.resolve_id(run_id), cond_index, samples)
        return [result for _, result in rows]

    def _check_rows(
        self,
        run_id: str,
        cond_index: int | None = None,
        samples: Sequence[int | None] | None = None,
    ) -> list[tuple[int, CheckResult]]:
        from condpred.checks.base import CheckResult

        only = ""
        indices = [i for i in samples or () if i is not None]
        if samples is not None:
            whole = " OR sample_index IS NULL" if None in samples else ""
            only = f" AND (sample_index IN ({','.join('?' * len(indices))}){whole})"
        rows = self._q(
            "SELECT * FROM check_results WHERE run_id = ? AND (? IS NULL OR cond_index = ?)"
            f"{only} ORDER BY rowid",
            (run_id, cond_index, cond_index, *indices),
        )
        return [
            (r["cond_index"], CheckResult(
                check=r["check_name"],
                value=r["value"],
                threshold=r["threshold"],
                verdict=r["verdict"],
                evidence=json.loads(r["evidence"]),
                sample_index=r["sample_index"],
                message=r["message"],
                spec=r["spec"],
            ))
            for r in rows
        ]  # fmt: skip

    def sample_indices(self, run_id: str, cond_index: int) -> set[int]:
        """Indices already stored for a conditional; a resume draws only the others."""
        run_id = self.resolve_id(run_id)
        rows = self._q(
            "SELECT sample_index FROM samples WHERE run_id = ? AND cond_index = ?",
            (run_id, cond_index),
        )
        return {r[0] for r in rows}

    # --- export -----------------------------------------------------------------------------------

    def _meta(self, run: RunRecord) -> dict[str, Any]:
        return {
            "run_id": run.id,
            "run_kind": run.kind,
            "model_spec": run.model_spec,
            "params": json.dumps(run.params, sort_keys=True),
            "seed": run.seed,
            "condpred_version": run.version,
            "status": run.status,
            "created_at": run.created_at,
        }

    def has_items(self, run_id: str) -> bool:
        """Whether the run is an experiment with item rows (forecast, plan, evals, ...)."""
        run_id = self.resolve_id(run_id)
        return bool(self._q("SELECT 1 FROM items WHERE run_id = ? LIMIT 1", (run_id,)))

    def item_rows(self, run_id: str) -> list[dict[str, Any]]:
        """Every experiment item of a run as a flat row (`table`, then its fields; nested values
        as JSON text), by table and index: what export, reports and `runs show` list."""
        run_id = self.resolve_id(run_id)
        stored = self._q(
            "SELECT table_name, data FROM items WHERE run_id = ? ORDER BY table_name, item_index",
            (run_id,),
        )
        return [export.item_row(r[0], json.loads(r[1])) for r in stored]

    def rows(self, run_id: str) -> list[dict[str, Any]]:
        """The run as flat rows: one per experiment item when it has items, else one per sample,
        then per score (see export.COLUMNS), each with the run's metadata."""
        run = self.get_run(run_id)
        meta = self._meta(run)
        if self.has_items(run.id):
            return [{**meta, **row} for row in self.item_rows(run.id)]
        conds = {c.index: c for c in self.conditionals(run.id)}
        checks = self._checks_by_sample(run.id)
        items = [
            (c, "sample", s.index, s.text, s.logprob, s.tokens, s.token_logprobs,
             s.finish_reason, None, *export.checks_columns(checks.get((c, s.index), [])))
            for c, s in self._sample_rows(run.id, None)
        ] + [
            (c, "score", i, s.continuation, s.logprob, s.tokens, s.token_logprobs, None, s.greedy,
             None, None)
            for c, i, s in self._score_rows(run.id, None)
        ]  # fmt: skip
        tail = ("record", "index", "text", "logprob", "tokens", "token_logprobs",
                "finish_reason", "greedy", "checks", "worst_verdict")  # fmt: skip
        return [
            {
                **meta,
                "cond_index": c,
                "source": conds[c].source,  # every sample/score has its conditional (a foreign key)
                "rendered": conds[c].rendered,
                **dict(zip(tail, rest, strict=True)),
            }
            for c, *rest in items
        ]

    def _checks_by_sample(self, run_id: str) -> dict[tuple[int, int], list[CheckResult]]:
        """Each sample's check results, its own and its conditional's (sample_index None), in
        the order they were stored: one pass over the results, however many samples."""
        found: dict[tuple[int, int | None], list[tuple[int, CheckResult]]] = {}
        for order, (cond, result) in enumerate(self._check_rows(run_id)):
            found.setdefault((cond, result.sample_index), []).append((order, result))
        return {
            (cond, index): [
                r
                for _, r in sorted(
                    found.get((cond, None), []) + found.get((cond, index), []),
                    key=lambda pair: pair[0],
                )
            ]
            for cond, index in self._q(
                "SELECT cond_index, sample_index FROM samples WHERE run_id = ?", (run_id,)
            )
        }

    def export(
        self,
        run_id: str,
        path: str | Path,
        format: Literal["jsonl", "parquet", "csv"] | None = None,
    ) -> int:
        """Write a run as a flat table (see `rows`); returns the number of rows.

        `format` defaults to the file's suffix (.jsonl, .parquet or .csv).
        """
        path = Path(path).expanduser()
        fmt = format or path.suffix.lstrip(".").lower()
        if fmt not in EXPORT_FORMATS:
            raise InputError(
                f"unknown export format '{fmt}'",
                source=str(path),
                fix="use format 'jsonl', 'parquet' or 'csv' (or a file name ending so)",
            )
        rows = self.rows(run_id)
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "jsonl":
                return export.write_jsonl(rows, path)
            if fmt == "csv":
                return export.write_csv(rows, path)
            return export.write_parquet(rows, path, items=self.has_items(run_id))

    def to_frame(self, run_id: str) -> pd.DataFrame:
        """A run as a pandas DataFrame, for notebooks: the same rows and columns as `export`."""
        return export.frame(self.rows(run_id), items=self.has_items(run_id))
