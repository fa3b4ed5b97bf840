"""The experiment runtime: what a new kind of experiment is written with (see runner.py and the
README's "Extending condpred")."""

from condpred.experiments.runner import (
    EXPERIMENTS,
    Item,
    ModelLoader,
    Recorder,
    Row,
    expect_kind,
    open_run,
    read_rows,
    recording,
    resumable,
    resume,
)

__all__ = [
    "EXPERIMENTS",
    "Item",
    "ModelLoader",
    "Recorder",
    "Row",
    "expect_kind",
    "open_run",
    "read_rows",
    "recording",
    "resumable",
    "resume",
]
