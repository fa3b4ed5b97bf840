"""Cheap checks that run before any expensive work: input files, output paths, model specs,
numeric options. A mistake costs milliseconds, not a model load, and every message names the
file or option, what is wrong and how to fix it (an `InputError`)."""

from __future__ import annotations

import math
import os
import re
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from condpred.errors import InputError, did_you_mean

# Inputs are small text files (conditionals, plan sets, questions, continuations); a file larger
# than this is a mistake (a wrong path, a data dump), and parsing it would take seconds to minutes.
MAX_INPUT_BYTES = 10 * 1024 * 1024
# SQLite stores integers as signed 64-bit.
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1
# Samples per command: more is a typo (an extra zero), and each one costs a model call.
MAX_SAMPLES = 10_000
MAX_TEMPERATURE = 100.0
GGUF_MAGIC = b"GGUF"
HF_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def read_text_input(path: str | Path, *, what: str, fix: str) -> str:
    """The text of an input file, refused with a clear message when it is missing, a folder,
    too large, binary or not UTF-8 (each with `fix`)."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise InputError("file not found", source=source, fix=fix)
    if not path.is_file():
        raise InputError("is not a file", source=source, fix=fix)
    try:
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise InputError(
                f"is {size / 2**20:.1f} MiB; {what} larger than {MAX_INPUT_BYTES // 2**20} MiB "
                "is refused",
                source=source,
                fix=f"Check the path; split the file if it really is {what}",
            )
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", source=source, fix=fix) from exc
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(
            f"is a binary file (a NUL byte at offset {nul}), not {what}",
            source=source,
            fix=fix,
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"is not UTF-8 text (byte {exc.start})",
            source=source,
            fix=f"Save it as UTF-8 (e.g. iconv -t utf-8). {fix}",
        ) from exc


def check_output_path(path: Path | None, option: str = "--out") -> None:
    """Refuse an output path that cannot be written, before any work is done: a folder, a file
    inside a missing folder or a file, or a place without write permission."""
    if path is None:
        return
    path = Path(path).expanduser()
    source = f"{option} {path}"
    if path.is_dir():
        raise InputError(
            "is a folder", source=source, fix="Give a file name, e.g. " + str(path / "out.json")
        )
    parent = path.parent
    if not parent.exists():
        raise InputError(
            f"the folder {parent} does not exist",
            source=source,
            fix=f"Create it first (mkdir -p {parent}) or write somewhere else",
        )
    if not parent.is_dir():
        raise InputError(f"{parent} is not a folder", source=source, fix="Fix the path")
    if path.is_file() and (_is_sqlite(path) or path.name.endswith(("-wal", "-shm", "-journal"))):
        raise InputError(
            "is a database (a run store?); condpred does not write over one",
            source=source,
            fix="Give a new file name for the output",
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError("is not writable", source=source, fix="Check its permissions")
    if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(
            f"the folder {parent} is not writable",
            source=source,
            fix="Write somewhere else, or check the folder's permissions",
        )


@contextmanager
def writing(path: str | Path, option: str = "--out") -> Iterator[None]:
    """Around the write of an output file: a failure the checks could not foresee (a full disk,
    an I/O error, a special file) is an InputError naming the path, not a traceback."""
    try:
        yield
    except OSError as error:
        raise InputError(
            f"cannot be written ({error.strerror or error})",
            source=f"{option} {path}",
            fix="Write to a regular file on a disk with space (check the path and permissions)",
        ) from error


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def check_seed(seed: int | None, option: str = "--seed") -> None:
    if seed is not None and not SEED_MIN <= seed <= SEED_MAX:
        raise InputError(
            f"{seed} is outside the range a run store keeps (a signed 64-bit integer)",
            field=option,
            fix=f"Give a seed between {SEED_MIN} and {SEED_MAX}",
        )


def check_sampling(
    n: int | None = None, temperature: float | None = None, top_p: float | None = None
) -> None:
    """Refuse sampling options no one means: non-finite or huge temperatures, absurd counts."""
    if n is not None and n > MAX_SAMPLES:
        raise InputError(
            f"{n} samples is more than condpred draws in one run ({MAX_SAMPLES})",
            field="-n",
            fix=f"Ask for at most {MAX_SAMPLES}; run again with another --seed for more",
        )
    if temperature is not None and not (
        math.isfinite(temperature) and 0 <= temperature <= MAX_TEMPERATURE
    ):
        raise InputError(
            f"{temperature} is not a usable temperature",
            field="--temperature",
            fix=f"Give a number from 0 (greedy) to {MAX_TEMPERATURE:g}; 1 samples the model as is",
        )
    if top_p is not None and not (math.isfinite(top_p) and 0 < top_p <= 1):
        raise InputError(
            f"{top_p} is not a probability mass",
            field="--top-p",
            fix="Give a number in (0, 1]; 1 keeps every token",
        )


def check_model_spec(spec: str, option: str = "--model") -> None:
    """Refuse a model spec that cannot name a model, without loading anything: an openai: URL
    that is not http(s), a gguf: path that is not a GGUF file, a folder without a model."""
    from condpred.model.registry import ALIASES, EMBEDDED

    known = ", ".join([*ALIASES, *EMBEDDED])
    forms = f"{known}, gguf:PATH, openai:URL#MODEL, a model folder or a Hugging Face id"
    if not spec or not spec.strip():
        raise InputError("empty model spec", field=option, fix=f"Use one of {forms}")
    if spec in ALIASES or spec in EMBEDDED:
        return
    scheme, sep, target = spec.partition(":")
    if spec.startswith("openai:"):
        _check_openai_spec(spec, option)
    elif spec.startswith("gguf:"):
        _check_gguf(Path(spec[5:]).expanduser(), spec, option)
    elif spec.startswith("hf:"):
        _check_local_or_hub(target, option, forms)
    elif sep and _is_backend(scheme):
        return  # a plugin's scheme: its backend checks its own target
    elif sep and re.fullmatch(r"[a-z][a-z0-9_.+-]*", scheme) and not Path(spec).exists():
        from condpred.model.registry import BACKENDS

        raise InputError(
            f"unknown model scheme '{scheme}:'",
            source=f"{option} {spec}",
            fix=did_you_mean(scheme, BACKENDS.names(), ":")
            + f"Schemes: {', '.join(s + ':' for s in BACKENDS.names())}; or use {forms}",
        )
    else:
        _check_local_or_hub(spec, option, forms)


def _is_backend(scheme: str) -> bool:
    from condpred.model.registry import BACKENDS

    return scheme in BACKENDS


def _check_openai_spec(spec: str, option: str) -> None:
    url, _, name = spec[len("openai:") :].partition("#")
    fix = "Write openai:URL#MODEL, e.g. openai:http://127.0.0.1:8000/v1#my-model"
    if not url or not name.strip():
        raise InputError(f"'{spec}' does not name a server and a model", source=option, fix=fix)
    problem = None
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        problem = f"'{url}' is not a URL ({exc})"
    else:
        if parts.scheme not in ("http", "https"):
            problem = f"'{url}' is not an http:// or https:// URL"
        elif not parts.hostname:
            problem = f"'{url}' names no host"
        elif any(c.isspace() for c in url) or parts.query or parts.fragment:
            problem = f"'{url}' is not a server URL (spaces, '?' or a second '#')"
    if problem:
        raise InputError(problem, source=f"{option} {spec}", fix=fix)


def _check_gguf(path: Path, spec: str, option: str) -> None:
    fix = "Give gguf: the path of a .gguf model file"
    source = f"{option} {spec}"
    if not path.is_file():
        raise InputError("no such file" if not path.exists() else "is a folder", source=source,
                         fix=fix)  # fmt: skip
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", source=source, fix=fix) from exc
    if magic != GGUF_MAGIC:
        raise InputError(
            f"{path} is not a GGUF file (it does not start with the bytes 'GGUF')",
            source=source,
            fix=fix,
        )


def _check_local_or_hub(spec: str, option: str, forms: str) -> None:
    path = Path(spec).expanduser()
    if path.is_file():
        hint = f" (for a GGUF file, write gguf:{spec})" if path.suffix == ".gguf" else ""
        raise InputError(
            f"'{spec}' is a file, not a model folder{hint}", source=option, fix=f"Use {forms}"
        )
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InputError(
                f"the folder '{spec}' holds no model (no config.json)",
                source=option,
                fix="Give the folder a Hugging Face model was saved to (save_pretrained), "
                f"or use {forms}",
            )
        return
    from condpred.model.registry import ALIASES, EMBEDDED

    guess = did_you_mean(spec, [*ALIASES, *EMBEDDED]) if "/" not in spec else ""
    if guess:  # 'gemma-3-27m': a typo of a name that ships, not a hub id to try
        raise InputError(f"unknown model '{spec}'", source=option, fix=f"{guess}Or use {forms}")
    if spec.startswith((".", "/", "~")) or not HF_ID.fullmatch(spec):
        raise InputError(
            f"no model folder '{spec}', and it is not a Hugging Face id",
            source=option,
            fix=f"Check the path, or use {forms}",
        )
