"""Flat tables out of the store: one row per sample or score, with its run's metadata.

The columns are fixed (below), so exports of different runs concatenate cleanly in pandas,
DuckDB or polars. Parquet and DataFrames need the optional extra `condpred[parquet]`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from condpred.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

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
}

_NEEDS_EXTRA = "install the optional dependencies with: pip install 'condpred[parquet]'"


def write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> int:
    """One JSON object per line. Infinite log-probabilities appear as -Infinity (Python's json)."""
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def write_parquet(rows: list[dict[str, Any]], path: Path) -> int:
    """A Parquet file with the fixed Arrow schema of `COLUMNS`."""
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
    schema = pa.schema([(name, types[kind]) for name, kind in COLUMNS.items()])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return len(rows)


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows as a pandas DataFrame, columns in `COLUMNS` order."""
    try:
        import pandas as pd
    except ImportError as e:
        raise InputError(f"DataFrames need pandas ({e})", fix=_NEEDS_EXTRA) from None
    return pd.DataFrame(rows, columns=list(COLUMNS))
