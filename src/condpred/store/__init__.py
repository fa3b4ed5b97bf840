"""The run store: every run, its conditionals, samples and scores, in one SQLite file."""

from condpred.store.db import (
    ConditionalRecord,
    RunFilter,
    RunRecord,
    Store,
    default_path,
    package_version,
    refuse_if_live,
)

__all__ = [
    "ConditionalRecord",
    "RunFilter",
    "RunRecord",
    "Store",
    "default_path",
    "package_version",
    "refuse_if_live",
]
