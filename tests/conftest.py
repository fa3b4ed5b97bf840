from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("CONDPRED_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from tests.tiny import build_tiny_gemma


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gemma(tmp_path_factory.mktemp("tiny-gemma"))


@pytest.fixture(scope="session")
def default_model():
    """The embedded gemma-3-270m base model, converted once per machine and shared by all tests."""
    from condpred import load_model

    return load_model("default", device="cpu")
