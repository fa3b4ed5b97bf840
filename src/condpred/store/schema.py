"""The run store's schema, as an ordered list of migrations.

Migration N (1-based) is `MIGRATIONS[N - 1]`; the `schema_version` table records which ones a
database has had. To add tables or columns for a new feature, append a script; never edit or
reorder one that has shipped, and never drop or rewrite data: old databases must keep everything.
Each statement must end a line with `;` (scripts are split into statements so that a migration and
its version bump commit together).
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: runs and what they produced.
    """
    CREATE TABLE runs (
        id          TEXT PRIMARY KEY,  -- e.g. 20261122-143012-3fa2 (UTC time, random suffix)
        kind        TEXT NOT NULL,     -- "predict", "score", ...
        model_spec  TEXT NOT NULL,
        params      TEXT NOT NULL,     -- JSON: sampling parameters and the like
        seed        INTEGER,
        version     TEXT NOT NULL,     -- condpred version that made the run
        status      TEXT NOT NULL,     -- running | done | failed | interrupted
        created_at  TEXT NOT NULL,     -- ISO 8601, UTC
        finished_at TEXT,
        timings     TEXT,              -- JSON
        error       TEXT
    );
    CREATE TABLE conditionals (
        run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        cond_index INTEGER NOT NULL,
        source     TEXT,               -- file the conditional came from, if any
        yaml       TEXT NOT NULL,
        rendered   TEXT NOT NULL,      -- the exact text the model was conditioned on
        PRIMARY KEY (run_id, cond_index)
    );
    CREATE TABLE samples (
        run_id         TEXT NOT NULL,
        cond_index     INTEGER NOT NULL,
        sample_index   INTEGER NOT NULL,
        text           TEXT NOT NULL,
        tokens         TEXT NOT NULL,  -- JSON list of strings
        token_logprobs TEXT NOT NULL,  -- JSON list of floats (repr round-trips exactly)
        finish_reason  TEXT NOT NULL,
        created_at     TEXT NOT NULL,
        PRIMARY KEY (run_id, cond_index, sample_index),
        FOREIGN KEY (run_id, cond_index)
            REFERENCES conditionals (run_id, cond_index) ON DELETE CASCADE
    );
    CREATE TABLE scores (
        run_id         TEXT NOT NULL,
        cond_index     INTEGER NOT NULL,
        score_index    INTEGER NOT NULL,
        continuation   TEXT NOT NULL,
        logprob        REAL NOT NULL,
        token_logprobs TEXT NOT NULL,  -- JSON list of floats
        tokens         TEXT NOT NULL,  -- JSON list of strings
        greedy         INTEGER NOT NULL,
        PRIMARY KEY (run_id, cond_index, score_index),
        FOREIGN KEY (run_id, cond_index)
            REFERENCES conditionals (run_id, cond_index) ON DELETE CASCADE
    );
    """,
    # 2: what the checks found, per sample (sample_index) or per conditional (NULL).
    """
    CREATE TABLE check_results (
        run_id       TEXT NOT NULL,
        cond_index   INTEGER NOT NULL,
        sample_index INTEGER,            -- NULL: a finding about the conditional as a whole
        check_name   TEXT NOT NULL,
        value        REAL NOT NULL,
        threshold    REAL,
        verdict      TEXT NOT NULL,      -- pass | warn | fail
        evidence     TEXT NOT NULL,      -- JSON: probes, log-probs
        message      TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        FOREIGN KEY (run_id, cond_index)
            REFERENCES conditionals (run_id, cond_index) ON DELETE CASCADE
    );
    CREATE INDEX check_results_run ON check_results (run_id, cond_index, sample_index);
    """,
    # 3: per-item results of experiments (forecast questions, plan outcomes, eval items), as JSON
    # rows in named tables, each committed as it exists so an interrupted experiment resumes.
    """
    CREATE TABLE items (
        run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        table_name TEXT NOT NULL,        -- e.g. "forecast", "plan", "agentic"
        item_index INTEGER NOT NULL,
        data       TEXT NOT NULL,        -- JSON object: one tidy row
        created_at TEXT NOT NULL,
        PRIMARY KEY (run_id, table_name, item_index)
    );
    """,
    # 4: the spec a check ran with (name, arguments, condpred version) beside each of its results.
    """
    ALTER TABLE check_results ADD COLUMN spec TEXT;
    """,
    # 5: the version of the kind's row model each item was written with (rows stored before
    # this migration are version 1, the shape their kinds' row models declare).
    """
    ALTER TABLE items ADD COLUMN row_version INTEGER NOT NULL DEFAULT 1;
    """,
    # 6: the process that is running a run (host, pid, start time), so that a run whose process
    # is gone reads as interrupted and a live run is not resumed twice.
    """
    ALTER TABLE runs ADD COLUMN owner TEXT;
    """,
]
