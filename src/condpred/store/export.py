"""Flat tables out of the store, with each row's run metadata.

A predict or score run is one row per sample or score, in fixed columns (below), so exports of
different runs concatenate cleanly in pandas, DuckDB or polars. An experiment run (forecast, plan,
agentic, zero-one, ...) is one row per item: the run metadata, the item's table and index, and the
item's own fields, nested values written as JSON text. Parquet and DataFrames need the optional
extra `condpred[parquet]`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from condpred.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from condpred.checks.base import CheckResult

# Column -> type. `record` says whether a row is a "sample" or a "score"; for a score, `text` is the
# continuation. `params` is the run's parameters as a JSON string.
COLUMNS: dict[str, str] = {
    "run_id": "string",
    "run_kind": "string",
    "model_spec": "string",
    "params": "string",
    "seed": "int",
    "condpred_version": "string",
    "status": "string",
    "created_at": "string",
    "cond_index": "int",
    "source": "string",
    "rendered": "string",
    "record": "string",
    "index": "int",
    "text": "string",
    "logprob": "float",
    "tokens": "strings",
    "token_logprobs": "floats",
    "finish_reason": "string",
    "greedy": "bool",
    "checks": "string",
    "worst_verdict": "string",
}

_NEEDS_EXTRA = "install the optional dependencies with: pip install 'condpred[parquet]'"


def checks_columns(results: Sequence[CheckResult]) -> tuple[str | None, str | None]:
    """A sample's check results as two columns: JSON text (each result's check, value, threshold,
    verdict and scope, "sample" or "conditional") and the worst verdict; None without checks."""
    from condpred.checks.base import VERDICT_ORDER  # condpred.checks imports the store

    if not results:
        return None, None
    listed = [
        {
            "check": r.check,
            "value": r.value,
            "threshold": r.threshold,
            "verdict": r.verdict,
            "scope": "conditional" if r.sample_index is None else "sample",
        }
        for r in results
    ]
    worst = max((r.verdict for r in results), key=VERDICT_ORDER.__getitem__)
    return json.dumps(listed), worst


def write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> int:
    """One JSON object per line. Infinite log-probabilities appear as -Infinity (Python's json)."""
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def item_row(table: str, data: dict[str, Any]) -> dict[str, Any]:
    """One experiment item as a flat row: nested lists and mappings become JSON text."""
    return {"table": table, **_flat(data)}


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    return {
        key: json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
        for key, value in row.items()
    }


def write_csv(rows: list[dict[str, Any]], path: Path) -> int:
    """CSV with a header of every column any row has, in first-seen order."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(_flat(row) for row in rows)
    return len(rows)


def write_parquet(rows: list[dict[str, Any]], path: Path, *, items: bool = False) -> int:
    """A Parquet file: the fixed Arrow schema of `COLUMNS`, or for item rows every column any
    row has (types inferred by Arrow over all rows; a column mixing types is an InputError)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise InputError(f"Parquet export needs pyarrow ({e})", fix=_NEEDS_EXTRA) from None
    types = {
        "string": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "strings": pa.list_(pa.string()),
        "floats": pa.list_(pa.float64()),
    }
    if not items:
        schema = pa.schema([(n, types[k]) for n, k in COLUMNS.items()])
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
        return len(rows)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    try:
        table = pa.table({c: pa.array([row.get(c) for row in rows]) for c in columns})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise InputError(
            f"these rows do not fit Parquet's one type per column ({error})",
            source=str(path),
            fix="Export as jsonl or csv (--format jsonl)",
        ) from None
    pq.write_table(table, path)
    return len(rows)


def frame(rows: list[dict[str, Any]], *, items: bool = False) -> pd.DataFrame:
    """The rows as a pandas DataFrame: columns in `COLUMNS` order, or the item rows' own."""
    try:
        import pandas as pd
    except ImportError as e:
        raise InputError(f"DataFrames need pandas ({e})", fix=_NEEDS_EXTRA) from None
    return pd.DataFrame(rows) if items else pd.DataFrame(rows, columns=list(COLUMNS))
