"""The log stream's index: a SQLite file per messaging replica, searched newest first.

A row per line: its stream sequence (the primary key, so "newest first" is the key's order),
the time the stream stored it, service, severity, the three ids a search may name, and the
line's JSON. The ids have B-tree indexes ending in the sequence, so the newest lines of a
correlation, an execution or an agent come straight off their index.

Text, service and level are found through one FTS5 index (trigram tokenizer, contentless,
`detail=none`). Its document for a line is the line's JSON followed by a three-character
marker made of private-use characters that stand for the line's service and severity, so that
one trigram token names a (service, level) group. A search is then a single FTS5 query, the
text's three-letter pieces AND any of the wanted groups, which FTS5 answers by skipping through
both lists in descending order, however common either side is. The trigram index only narrows
the candidates (every piece, not in order); `instr` checks the text itself.

Calls block: the writer and each reader use their own connection on their own thread.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cortex.kernel.log_lines import SEVERITY

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS services (name TEXT PRIMARY KEY, code INTEGER NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS lines (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    service TEXT NOT NULL,
    severity INTEGER NOT NULL,
    agent TEXT,
    execution TEXT,
    correlation TEXT,
    line TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS by_agent ON lines (agent, seq) WHERE agent IS NOT NULL;
CREATE INDEX IF NOT EXISTS by_execution ON lines (execution, seq) WHERE execution IS NOT NULL;
CREATE INDEX IF NOT EXISTS by_correlation ON lines (correlation, seq)
    WHERE correlation IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS words
    USING fts5(line, content='', tokenize='trigram', detail=none);
"""

MATCH_PIECES = 8
"""Three-letter pieces of a text the trigram index intersects, spread over the text; `instr`
checks the rest. More cost more list merging than the candidates they rule out save."""
_SERVICE_PLANE = 0xF0000
_SEVERITY_PLANE = 0x100000
_MARK_END = "\U0010fffd"
SEVERITIES = tuple(sorted(set(SEVERITY.values())))


def _marker(service_code: int, severity: int) -> str:
    """The trigram token of a (service, severity) group: private-use characters, which no
    line's JSON holds next to each other."""
    return chr(_SERVICE_PLANE + service_code) + chr(_SEVERITY_PLANE + severity) + _MARK_END


def _document(line: str, service_code: int, severity: int) -> str:
    return f"{line}\n{_marker(service_code, severity)}"


def _quoted(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    at_us: int
    """When the stream stored the line, in microseconds since the epoch."""
    service: str
    severity: int
    agent: str | None
    execution: str | None
    correlation: str | None
    line: str


@dataclass(frozen=True, slots=True)
class Found:
    seq: int
    at_us: int
    line: str


@dataclass(frozen=True, slots=True)
class Query:
    lo: int
    hi: int
    """The sequences to search, both included: the stream's first and last, or a page's."""
    limit: int
    service: str | None = None
    severities: tuple[int, ...] | None = None
    """The levels wanted (the filter's and the worse ones); None: every level."""
    agent: str | None = None
    execution: str | None = None
    correlation: str | None = None
    text: str | None = None
    """Already folded (A to Z in lower case)."""
    since_us: int | None = None
    until_us: int | None = None


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    # The stream is the source of truth: an index that loses its last transactions to a power
    # cut reads them again from its `through`, which is written in the same transactions.
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class LogWriter:
    """Adds and prunes rows. Idempotent: two processes sharing a file (replicas of one host
    that have the same name) both add every line, and each line is there once."""

    def __init__(self, path: Path, stream_created: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _connect(path)
        self._db.executescript(_SCHEMA)
        if self._meta("schema") != SCHEMA_VERSION or self._meta("stream") != stream_created:
            self.reset(stream_created)

    @property
    def through(self) -> int:
        """The last stream sequence indexed (lines that could not be read count too)."""
        return int(self._meta("through") or 0)

    def reset(self, stream_created: str) -> None:
        """Empty, for the stream created at `stream_created` (a stream that was deleted and
        made again starts its sequences over)."""
        with self._transaction():
            self._db.execute("DELETE FROM lines")
            self._db.execute("INSERT INTO words (words) VALUES ('delete-all')")
            self._db.execute("DELETE FROM meta")
            self._db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("schema", SCHEMA_VERSION), ("stream", stream_created), ("through", "0")],
            )

    def add(self, rows: list[Row], through: int) -> None:
        """`rows`, and `through` as the last sequence read, in one transaction."""
        with self._transaction():
            if rows:
                present = {
                    seq
                    for (seq,) in self._db.execute(
                        "SELECT seq FROM lines WHERE seq BETWEEN ? AND ?",
                        (rows[0].seq, rows[-1].seq),
                    )
                }
                fresh = [r for r in rows if r.seq not in present]
                codes = self._codes({r.service for r in fresh})
                self._db.executemany(
                    "INSERT INTO lines VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            r.seq,
                            r.at_us,
                            r.service,
                            r.severity,
                            r.agent,
                            r.execution,
                            r.correlation,
                            r.line,
                        )
                        for r in fresh
                    ],
                )
                self._db.executemany(
                    "INSERT INTO words (rowid, line) VALUES (?, ?)",
                    [(r.seq, _document(r.line, codes[r.service], r.severity)) for r in fresh],
                )
            self._db.execute(
                "UPDATE meta SET value = max(CAST(value AS INTEGER), ?) WHERE key = 'through'",
                (through,),
            )

    def prune(self, first_seq: int, at_most: int) -> int:
        """Forget up to `at_most` of the lines before `first_seq` (gone from the stream);
        how many were forgotten."""
        with self._transaction():
            old = self._db.execute(
                "SELECT l.seq, s.code, l.severity, l.line FROM lines l "
                "JOIN services s ON s.name = l.service WHERE l.seq < ? ORDER BY l.seq LIMIT ?",
                (first_seq, at_most),
            ).fetchall()
            if not old:
                return 0
            # A contentless FTS5 table forgets a row given the document it was indexed with.
            self._db.executemany(
                "INSERT INTO words (words, rowid, line) VALUES ('delete', ?, ?)",
                [(seq, _document(line, code, severity)) for seq, code, severity, line in old],
            )
            self._db.execute("DELETE FROM lines WHERE seq <= ?", (old[-1][0],))
        return len(old)

    def close(self) -> None:
        self._db.close()

    def _codes(self, services: set[str]) -> dict[str, int]:
        """Each service's marker code, given to a new one as it first appears."""
        self._db.executemany(
            "INSERT OR IGNORE INTO services VALUES (?, (SELECT count(*) FROM services))",
            [(s,) for s in sorted(services)],
        )
        return dict(self._db.execute("SELECT name, code FROM services"))

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


class LogReader:
    """Searches, on a connection of its own (WAL: reads do not wait for the writer)."""

    def __init__(self, path: Path) -> None:
        self._db = _connect(path)
        self._db.execute("PRAGMA query_only=1")

    def close(self) -> None:
        self._db.close()

    def search(self, q: Query) -> list[Found]:
        """Up to `q.limit + 1` lines, newest first (one more than a page: is there another)."""
        lo, hi = q.lo, q.hi
        if q.since_us is not None:
            lo = max(lo, self._first_stored_from(q.since_us, lo, hi))
        if q.until_us is not None:
            hi = min(hi, self._first_stored_from(q.until_us + 1, lo, hi) - 1)
        if lo > hi:
            return []
        return list(itertools.islice(self._candidates(q, lo, hi), q.limit + 1))

    def _first_stored_from(self, at_us: int, lo: int, hi: int) -> int:
        """The first sequence in [lo, hi] stored at `at_us` or later (hi + 1: none). The
        stream stores in sequence order, so its times only grow: a binary search over the
        primary key, rather than an index on the time."""
        found = hi + 1
        while lo <= hi:
            mid = (lo + hi) // 2
            row = self._db.execute(
                "SELECT seq, at FROM lines WHERE seq BETWEEN ? AND ? ORDER BY seq LIMIT 1",
                (mid, hi),
            ).fetchone()
            if row is None:
                hi = mid - 1
            elif row[1] >= at_us:
                found, hi = row[0], mid - 1
            else:
                lo = row[0] + 1
        return found

    def _candidates(self, q: Query, lo: int, hi: int) -> Iterator[Found]:
        conditions = ["l.seq BETWEEN ? AND ?"]
        params: list[object] = [lo, hi]
        for column, value in (
            ("agent", q.agent),
            ("execution", q.execution),
            ("correlation", q.correlation),
            ("service", q.service),
        ):
            if value is not None:
                conditions.append(f"l.{column} = ?")
                params.append(value)
        if q.severities is not None:
            conditions.append(f"l.severity IN ({','.join('?' * len(q.severities))})")
            params += q.severities
        if q.since_us is not None:
            conditions.append("l.at >= ?")
            params.append(q.since_us)
        if q.until_us is not None:
            conditions.append("l.at <= ?")
            params.append(q.until_us)
        if q.text is not None:
            conditions.append("instr(lower(l.line), ?) > 0")
            params.append(q.text)
        where = " AND ".join(conditions)
        select = "SELECT l.seq, l.at, l.line FROM"
        # An id the search names drives it, the rarest kind first: a correlation's or an
        # execution's lines are a few dozen, an agent's can be many more.
        for column, value in (
            ("correlation", q.correlation),
            ("execution", q.execution),
            ("agent", q.agent),
        ):
            if value is not None:
                yield from self._rows(
                    f"{select} lines l INDEXED BY by_{column} WHERE {where} ORDER BY l.seq DESC",
                    params,
                )
                return
        if q.text is None and q.service is None and q.severities is None:
            yield from self._rows(f"{select} lines l WHERE {where} ORDER BY l.seq DESC", params)
            return
        match = self._match(q)
        if match is None:
            return  # a service that never logged
        yield from self._rows(
            f"{select} words JOIN lines l ON l.seq = words.rowid WHERE words MATCH ? "
            f"AND words.rowid BETWEEN ? AND ? AND {where} ORDER BY words.rowid DESC",
            [match, lo, hi, *params],
        )

    def _match(self, q: Query) -> str | None:
        """The FTS5 query: the text's pieces AND one of the wanted (service, level) groups."""
        terms = []
        if q.text is not None:
            # The trigram tokenizer folds every letter's case, not only A to Z.
            folded = q.text.lower()
            pieces = [folded[i : i + 3] for i in range(len(folded) - 2)]
            if len(pieces) > MATCH_PIECES:
                last = len(pieces) - 1
                step = last / (MATCH_PIECES - 1)
                pieces = [pieces[round(n * step)] for n in range(MATCH_PIECES)]
            terms += [_quoted(piece) for piece in dict.fromkeys(pieces)]
        if q.service is not None or q.severities is not None:
            codes: Mapping[str, int] = dict(self._db.execute("SELECT name, code FROM services"))
            services = [q.service] if q.service is not None else list(codes)
            groups = [
                _quoted(_marker(codes[service], severity))
                for service in services
                if service in codes
                for severity in (q.severities or SEVERITIES)
            ]
            if not groups:
                return None
            terms.append(f"({' OR '.join(groups)})")
        return " AND ".join(terms)

    def _rows(self, sql: str, params: list[object]) -> Iterator[Found]:
        for seq, at_us, line in self._db.execute(sql, params):
            yield Found(seq, at_us, line)
