from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import pytest

os.environ.setdefault("CONDPRED_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import condpred
from tests.tiny import build_tiny_gemma

PACKAGE_DIR = str(Path(condpred.__file__).parent)
DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def _from_condpred() -> bool:
    """Whether condpred's own code made the call that warns: condpred is on the stack, and not
    merely importing a library that warns about its own dependencies while it loads."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(PACKAGE_DIR):
            return True
        if filename.startswith("<frozen importlib"):
            return False
        frame = frame.f_back
    return False


def pytest_configure(config: pytest.Config) -> None:
    """Deprecation and future warnings raised while condpred code runs are errors, wherever the
    library raising them attributes them (transformers' deprecated kwargs point at torch's
    Module.__call__, so `-W error::FutureWarning:condpred` alone would miss them). Warnings from
    third-party code that condpred did not call stay warnings."""
    original = warnings.warn

    def warn(message, category=None, stacklevel=1, source=None, **kwargs):
        kind = category or (type(message) if isinstance(message, Warning) else UserWarning)
        if issubclass(kind, DEPRECATIONS) and _from_condpred():
            raise message if isinstance(message, Warning) else kind(message)
        return original(message, category, stacklevel + 1, source, **kwargs)

    warnings.warn = warn


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gemma(tmp_path_factory.mktemp("tiny-gemma"))


@pytest.fixture(scope="session")
def default_model():
    """The embedded gemma-3-270m base model, converted once per machine and shared by all tests."""
    from condpred import load_model

    return load_model("default", device="cpu")
