"""The conditional: everything we condition a predictive model on, as validated data.

A conditional names a camera (the kind of document), a date, the authors, premises about the world,
a title and the start of the body. It is loaded from YAML written by people, so every way that
input can be wrong becomes an `InputError` that says where (file, field), what, and how to fix it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from condpred.condition.rendering import CAMERA_NAME, check_camera, render
from condpred.errors import InputError
from condpred.validate import read_text_input

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
# Guards against YAML "billion laughs" (aliases expanding exponentially) and runaway nesting.
MAX_VALUES = 100_000
MAX_DEPTH = 50


class _ProblemWithFix(ValueError):
    """A validation problem that knows its own fix (e.g. the list of cameras that exist)."""

    def __init__(self, problem: str, fix: str | None) -> None:
        super().__init__(problem)
        self.fix = fix


class Author(BaseModel):
    """Who wrote the observed document; `kind` says whether that author is a human or an AI."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    affiliation: str | None = None
    kind: Literal["human", "ai"] = "human"

    @model_validator(mode="before")
    @classmethod
    def _name_alone(cls, data: Any) -> Any:
        """`- Paul Christiano` is shorthand for `- name: Paul Christiano`."""
        return {"name": data} if isinstance(data, str) else data

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("an author needs a name")
        return value.strip()

    @field_validator("affiliation")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return (value.strip() or None) if value is not None else None


class Conditional(BaseModel):
    """An observation to condition on. Immutable: vary it with `with_()`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera: str = "plain"
    date: dt.date | None = None
    authors: list[Author] = []
    world: list[str] = []
    title: str | None = None
    prefix: str = ""
    extra: dict[str, Any] = {}
    responses: list[str] = []

    @field_validator("camera")
    @classmethod
    def _camera_name(cls, value: str, info: ValidationInfo) -> str:
        """A camera name; checked against the cameras that exist when loading a file, so an
        unknown camera is reported with every other problem of the file."""
        if not CAMERA_NAME.fullmatch(value):
            raise ValueError(
                "a camera name is a template file name without '.j2', like arxiv-abstract"
            )
        if info.context and "cameras_dir" in info.context:
            try:
                check_camera(value, info.context["cameras_dir"])
            except InputError as exc:
                raise _ProblemWithFix(exc.problem, exc.fix) from exc
        return value

    @field_validator("date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> dt.date | None:
        """Only a date or an ISO date string; no timestamps, no numbers read as epoch seconds."""
        if value is None or type(value) is dt.date:
            return value
        if isinstance(value, dt.datetime):
            raise ValueError("has a time of day; write the date alone, like 2031-03-03")
        if isinstance(value, str) and ISO_DATE.fullmatch(value.strip()):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError as exc:
                raise ValueError(f"{value.strip()!r} is not a real date ({exc})") from exc
        raise ValueError("expected an ISO date like 2031-03-03")

    @field_validator("authors", "world", "responses", mode="before")
    @classmethod
    def _one_or_list(cls, value: Any) -> Any:
        """A single item stands for a list of one; sets are refused (their order is not fixed)."""
        if isinstance(value, str | dict):
            return [value]
        if not isinstance(value, list | tuple):
            raise ValueError("expected a list")
        return list(value)

    @field_validator("world", "responses")
    @classmethod
    def _no_blank_items(cls, values: list[str]) -> list[str]:
        stripped = [value.strip() for value in values]
        if "" in stripped:
            raise ValueError(f"item {stripped.index('')} is empty")
        return stripped

    @field_validator("extra")
    @classmethod
    def _yaml_values(cls, extra: dict[str, Any]) -> dict[str, Any]:
        """Free fields must survive `to_yaml` and render the same every time."""
        return {key: _plain(value, f"extra.{key}") for key, value in extra.items()}

    @field_validator("title")
    @classmethod
    def _strip_title(cls, value: str | None) -> str | None:
        return (value.strip() or None) if value is not None else None

    @model_validator(mode="after")
    def _something_to_continue(self) -> Conditional:
        if not self.title and not self.prefix.strip():
            raise ValueError(
                "a conditional needs a title or a prefix, or the model has nothing to continue"
            )
        return self

    def with_(self, **changes: Any) -> Conditional:
        """A validated copy with some fields changed: the tool for checks that vary one field."""
        return conditional_from_dict({**self.model_dump(), **changes}, source="Conditional.with_()")

    def without_premises(self) -> Conditional:
        """The same observation in an unconditioned world: the baseline for premise checks."""
        return self.with_(world=[])

    def to_yaml(self) -> str:
        """YAML that `load_conditional` reads back to an equal conditional (defaults left out)."""
        data = self.model_dump(exclude_defaults=True)
        if "prefix" in data:  # last, as in a written conditional: where the text continues
            data["prefix"] = data.pop("prefix")
        return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)

    @classmethod
    def from_yaml(cls, text: str, source: str = "<yaml>") -> Conditional:
        """Parse YAML text (the inverse of `to_yaml`); the camera is not checked."""
        return conditional_from_dict(parse_yaml(text, source), source=source)


def load_conditional(path: str | Path, cameras_dir: str | Path | None = None) -> Conditional:
    """Read a conditional from a YAML file and check that its camera exists.

    The camera must be built in or in `cameras_dir`; checking here reports a typo before any model
    is loaded.
    """
    source = str(path)
    data = parse_yaml(read_yaml_text(Path(path)), source)
    conditional = conditional_from_dict(
        data, source=source, cameras_dir=cameras_dir, check_cameras=True
    )
    render(conditional, cameras_dir, source=source)  # a field the camera cannot write fails here
    return conditional


def conditional_from_dict(
    data: Any,
    source: str = "<dict>",
    *,
    cameras_dir: str | Path | None = None,
    check_cameras: bool = False,
) -> Conditional:
    """Validate plain data (e.g. parsed YAML or JSON) into a Conditional, or raise an InputError
    that lists every problem at once. `check_cameras` also checks that the camera exists (built
    in, or in `cameras_dir`)."""
    if not isinstance(data, dict):
        raise InputError(
            f"expected a mapping of fields at the top level, got {_type_name(data)}",
            source=source,
            fix="Write the conditional as 'field: value' lines; fields: "
            + ", ".join(_fields(Conditional)),
        )
    check_size(data, source)
    _refuse_nul(data, source)  # the rule YAML files follow, for data from anywhere
    context = {"cameras_dir": cameras_dir} if check_cameras else None
    try:
        return Conditional.model_validate(data, context=context)
    except ValidationError as exc:
        raise _input_error(exc, source) from exc


PLAIN = (str, bool, int, float, dt.date, bytes, type(None))


def _plain(value: Any, where: str) -> Any:
    """`value` as plain YAML data (tuples become lists), or a ValueError naming where it is."""
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise ValueError(f"'{where}' has a key that is not text")
        return {key: _plain(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if not isinstance(value, PLAIN):
        raise ValueError(
            f"'{where}' holds a {type(value).__name__}; use text, numbers, dates, lists or mappings"
        )
    if isinstance(value, int) and value.bit_length() > 10_000:
        raise ValueError(f"'{where}' holds a number too large to write out")
    return value


# --- YAML in and out -------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys and deep nesting, and reports bad values with their
    line (PyYAML raises some of those errors without one, or as plain ValueErrors)."""

    def fetch_flow_collection_start(self, token_class: type) -> None:
        """Refuse deep [ and { nesting early: the scanner's cost grows with its square."""
        if self.flow_level >= MAX_DEPTH:
            raise yaml.scanner.ScannerError(
                None, None, f"nested too deeply (more than {MAX_DEPTH} levels)", self.get_mark()
            )
        super().fetch_flow_collection_start(token_class)

    def fetch_more_tokens(self) -> None:
        try:
            super().fetch_more_tokens()
        except (ValueError, OverflowError) as exc:  # e.g. an escape "\U00200000" beyond Unicode
            raise yaml.scanner.ScannerError(
                None, None, f"invalid text ({exc})", self.get_mark()
            ) from exc

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"found the key '{key_node.value}' twice",
                        key_node.start_mark,
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            if node.tag == TIMESTAMP_TAG and ISO_DATE.fullmatch(str(node.value)):
                # "2031-02-30" stays text: the date field reports it with every other problem
                return node.value
            # e.g. "date: 2031-13-45" fails in datetime.date() without a position
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid value ({exc})", node.start_mark
            ) from exc


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml's emitter when present
    """Writes multi-line strings as literal blocks so a dumped conditional stays readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML folds these line breaks to spaces in its own unquoted and single-quoted output;
    # only double quotes (escapes) keep them.
    if any(char in value for char in "\r\x85\u2028\u2029"):
        style: str | None = '"'
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def read_yaml_text(path: Path, what: str = "a YAML conditional") -> str:
    fix = "Pass the path of a YAML conditional, e.g. examples/alignment-paper-2031.yaml"
    if what != "a YAML conditional":
        fix = f"Pass the path of {what}"
    return read_text_input(path, what=what, fix=fix)


EMPTY_FIX = "Give at least a title or a prefix, e.g. 'title: ...' (see examples/)"


def parse_yaml(text: str, source: str, empty_fix: str = EMPTY_FIX) -> Any:
    try:
        data = yaml.load(text, Loader=_Loader)  # safe: _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        fix = (
            "Correct the value there: give each key once, write real dates (2031-03-03), and "
            "quote text that YAML would read as a date, a number or a tag"
            if isinstance(exc, yaml.constructor.ConstructorError)
            else "Fix the YAML there (indentation, a missing colon, unbalanced quotes or brackets)"
        )
        raise InputError(
            f"YAML error{where}: {exc.problem or exc.context}", source=source, fix=fix
        ) from exc
    except yaml.YAMLError as exc:  # e.g. a ReaderError for a control character
        raise InputError(
            f"cannot be read as YAML: {str(exc).splitlines()[0]}",
            source=source,
            fix="Remove control characters; save the file as plain UTF-8 text",
        ) from exc
    except RecursionError as exc:
        raise InputError(
            "is nested too deeply to read",
            source=source,
            fix="Write plain YAML: 'field: value' lines, nested no deeper than a few levels",
        ) from exc
    if data is None:
        raise InputError("is empty", source=source, fix=empty_fix)
    _refuse_nul(data, source)
    return data


def _refuse_nul(data: Any, source: str) -> None:
    """Refuse a NUL character written as an escape ("\\0", "\\x00"), as the YAML reader refuses
    a raw one: text with NUL in it is cut short by tokenizers and C libraries."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    seen = 0
    while stack and seen <= MAX_VALUES:
        value, loc = stack.pop()
        seen += 1
        if isinstance(value, str) and "\x00" in value:
            raise InputError(
                "holds a NUL character (\\0)",
                source=source,
                field=error_path(loc) or None,
                fix="Remove the \\0 or \\x00 escape from the text",
            )
        if len(loc) > MAX_DEPTH:
            continue  # too deep (or a cycle): check_size reports it
        if isinstance(value, dict):
            for key, item in value.items():
                stack.append((key, loc))
                stack.append((item, (*loc, key)))
        elif isinstance(value, list):
            stack.extend((item, (*loc, i)) for i, item in enumerate(value))


# --- turning validation errors into InputErrors ----------------------------------------------

FIELD_HELP = {
    "camera": "the name of a camera template, like arxiv-abstract",
    "date": "an ISO date like 2031-03-03 (future dates are fine)",
    "authors": "a list of authors, each a name or a mapping with name, affiliation and kind",
    "world": "a list of premises (sentences about the world), or a single sentence",
    "title": "text",
    "prefix": "text: the start of the body that the model continues",
    "extra": "a mapping of free fields for the camera template",
    "responses": "a list of texts: the possible responses to the prediction",
    "name": "the author's name",
    "affiliation": "text, or leave it out",
    "kind": "'human' or 'ai'",
}


def _input_error(exc: ValidationError, source: str) -> InputError:
    """One problem: its field and fix. Several: every one of them, each with its own fix."""
    errors = exc.errors(include_url=False)
    if len(errors) == 1:
        error = errors[0]
        return InputError(
            describe_error(error),
            source=source,
            field=error_path(error["loc"]) or None,
            fix=fix_for_error(error),
        )
    lines = [
        f"  - {_where(e)}: {describe_error(e)}. {fix_for_error(e)}".rstrip(". ") + "."
        for e in errors[:20]
    ]
    if len(errors) > 20:
        lines.append(f"  - ... and {len(errors) - 20} more")
    return InputError(f"{len(errors)} problems:\n" + "\n".join(lines), source=source)


def _where(error: dict[str, Any]) -> str:
    path = error_path(error["loc"])
    return f"field '{path}'" if path else "top level"


def describe_error(error: dict[str, Any]) -> str:
    kind, value = error["type"], _short(error.get("input"))
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        return f"{value} is not allowed"
    message = (
        str(error["msg"]).removeprefix("Value error, ").replace("Input should be", "should be")
    )
    if not error["loc"] or (isinstance(error.get("input"), str) and value in message):
        return message  # the message already quotes the text it refuses
    return f"{message} (got {value})"


def fix_for_error(error: dict[str, Any]) -> str:
    own_fix = getattr(error.get("ctx", {}).get("error"), "fix", None)
    if own_fix:
        return own_fix
    loc = error["loc"]
    if not loc:
        return "Give a title, a prefix (the start of the body to continue), or both"
    model = Author if loc[0] == "authors" and len(loc) > 2 else Conditional
    name = next((part for part in reversed(loc) if part in FIELD_HELP), "")
    if error["type"] in ("extra_forbidden", "invalid_key"):
        close = difflib.get_close_matches(str(loc[-1]), _fields(model), n=1)
        hint = f"Did you mean '{close[0]}'? " if close else ""
        return f"{hint}Allowed fields: {', '.join(_fields(model))}"
    if error["type"] == "literal_error":
        return f"Use one of: {error['ctx']['expected']}"
    fix = f"Write '{name}' as {FIELD_HELP[name]}" if name in FIELD_HELP else "Fix the value"
    if error["type"] == "string_type":
        fix += "; quote numbers and dates meant as text"
    return fix


def error_path(loc: tuple[Any, ...]) -> str:
    """('authors', 0, 'kind') -> 'authors[0].kind', the way a user finds it in the file."""
    text = ""
    for part in loc:
        if isinstance(part, int) and text:
            text += f"[{part}]"
        elif part == "[key]":
            text += " (key)"
        else:
            text += f".{part}" if text else str(part)  # an int here is a top-level key
    return text


def _fields(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _short(value: Any, limit: int = 60) -> str:
    """A bad value for an error message, cut short (values can be huge or unprintable)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # e.g. ints over Python's digit limit
        text = f"<{_type_name(value)}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "text", type(None): "nothing"}
    return names.get(type(value), f"a value of type {type(value).__name__}")


def check_size(data: Any, source: str) -> None:
    """Refuse data that expands too much (YAML aliases) or nests too deep (or in a cycle)."""
    count, stack = 0, [(data, 0)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_VALUES or depth > MAX_DEPTH:
            problem = (
                f"is too large (more than {MAX_VALUES} values)"
                if count > MAX_VALUES
                else f"is nested too deeply (more than {MAX_DEPTH} levels)"
            )
            raise InputError(
                problem,
                source=source,
                fix="Write a conditional of plain fields; avoid YAML aliases that expand",
            )
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, list | tuple | set | frozenset):
            stack.extend((item, depth + 1) for item in value)
