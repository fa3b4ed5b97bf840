"""Render a conditional through its camera: one Jinja2 template per kind of document.

Templates run in Jinja2's immutable sandbox because conditionals and user cameras can come from
untrusted files. A template sees only plain data (the conditional's fields as dicts, lists, strings
and a `datetime.date`) and the filters in `filters.py`. Every failure of a template — syntax error,
undefined value, sandbox violation, a filter given the wrong type — becomes an `InputError` that
names the template file and line.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from condpred.condition.filters import FILTERS
from condpred.errors import InputError, did_you_mean

if TYPE_CHECKING:
    from condpred.condition.conditional import Conditional

BUILTIN_CAMERAS = Path(__file__).parent / "cameras"
SUFFIX = ".j2"
# A camera name is a file name without its suffix; no path separators, no leading dot.
CAMERA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
VARIABLES = "camera, date, authors, world, title, prefix, extra, responses"


def list_cameras(cameras_dir: str | Path | None = None) -> list[str]:
    """Names of the built-in cameras plus those in `cameras_dir` (which may override built-ins)."""
    folders = [BUILTIN_CAMERAS, *([_cameras_folder(cameras_dir)] if cameras_dir else [])]
    return sorted(
        {
            path.name[: -len(SUFFIX)]
            for folder in folders
            for path in folder.glob(f"*{SUFFIX}")
            if path.is_file() and CAMERA_NAME.fullmatch(path.name[: -len(SUFFIX)])
        }
    )


def check_camera(
    name: str, cameras_dir: str | Path | None = None, source: str | None = None
) -> None:
    """Raise an InputError listing the available cameras when `name` is not one of them."""
    available = list_cameras(cameras_dir)
    if name not in available:
        raise InputError(
            f"unknown camera '{name}'",
            source=source,
            field="camera",
            fix=f"{did_you_mean(name, available)}Use one of: {', '.join(available)}; "
            f"or write {name}{SUFFIX} into a cameras "
            "folder and pass that folder (--cameras DIR)",
        )


def describe_camera(name: str, cameras_dir: str | Path | None = None) -> str:
    """The first line of the camera's leading `{# ... #}` comment: what the template imitates."""
    check_camera(name, cameras_dir)
    env = _environment(_key(cameras_dir))
    _load(env, name + SUFFIX)  # reports a file that is not UTF-8 or not valid Jinja2
    source, _, _ = env.loader.get_source(env, name + SUFFIX)
    match = re.match(r"\s*\{#-?\s*(.*?)\s*-?#\}", source, re.DOTALL)
    return match.group(1).splitlines()[0].strip() if match else ""


def render(
    conditional: Conditional, cameras_dir: str | Path | None = None, *, source: str | None = None
) -> str:
    """The text the model continues: the conditional written through its camera.

    With a non-empty prefix the text ends exactly with the prefix; with an empty one it ends where
    the body starts, without a trailing space (tokenizers attach that space to the next word).
    `source` (the conditional's file) is named when a field has a type the camera cannot write.
    """
    check_camera(conditional.camera, cameras_dir)
    env = _environment(_key(cameras_dir))
    template = _load(env, conditional.camera + SUFFIX)
    try:
        text = template.render(conditional.model_dump())
    except Exception as exc:  # a template is user code: any failure in it is bad input
        raise _template_error(exc, template, source) from exc
    return text if conditional.prefix else text.rstrip(" \t")


def _cameras_folder(cameras_dir: str | Path) -> Path:
    folder = Path(cameras_dir)
    if not folder.is_dir():
        raise InputError(
            "cameras folder not found" if not folder.exists() else "is not a folder",
            source=str(folder),
            fix=f"Pass a folder that holds camera templates named <camera>{SUFFIX}",
        )
    return folder


def _key(cameras_dir: str | Path | None) -> Path | None:
    return _cameras_folder(cameras_dir).resolve() if cameras_dir else None


@functools.lru_cache(maxsize=8)
def _environment(cameras_dir: Path | None) -> ImmutableSandboxedEnvironment:
    """One sandbox per cameras folder; user templates shadow built-ins of the same file name."""
    folders = [*([cameras_dir] if cameras_dir else []), BUILTIN_CAMERAS]
    env = ImmutableSandboxedEnvironment(
        loader=ChoiceLoader([FileSystemLoader(folder) for folder in folders]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,  # plain text for a language model, not HTML
    )
    env.filters.update(FILTERS)
    return env


def _load(env: ImmutableSandboxedEnvironment, name: str) -> Template:
    try:
        return env.get_template(name)
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc) from exc
    except TemplateNotFound as exc:  # an {% extends %} of a missing file
        raise _not_found(exc, name) from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            f"is not UTF-8 text (byte {exc.start})", source=name, fix="Save the template as UTF-8"
        ) from exc


def _syntax_error(exc: TemplateSyntaxError) -> InputError:
    return InputError(
        f"template syntax error: {exc.message}",
        source=f"{exc.filename or exc.name}, line {exc.lineno}",
        fix="Fix the Jinja2 syntax at that line of the camera template",
    )


def _not_found(exc: TemplateNotFound, where: str) -> InputError:
    return InputError(
        f"template not found: {exc.name}",
        source=where,
        fix=f"Templates can include only {SUFFIX} files in the cameras folders",
    )


def _field_on_line(filename: str, line: int | None) -> str | None:
    """The conditional field a template line writes (`extra.get("resolves")` -> extra.resolves),
    when the line names exactly one: what a type error in that line is about."""
    if line is None:
        return None
    try:
        text = Path(filename).read_text(encoding="utf-8").splitlines()[line - 1]
    except (OSError, UnicodeDecodeError, IndexError):
        return None
    extras = set(
        re.findall(r"extra(?:\.get\(\s*|\[\s*)[\"'](\w+)[\"']|extra\.(?!get\b)(\w+)", text)
    )
    names = {"extra." + (a or b) for a, b in extras}
    if not names:
        names = {n for n in re.findall(r"\b(\w+)\b", text) if n in FIELD_NAMES}
    return names.pop() if len(names) == 1 else None


FIELD_NAMES = ("camera", "date", "authors", "world", "title", "prefix", "responses")


def _template_error(exc: Exception, template: Template, source: str | None = None) -> InputError:
    if isinstance(exc, InputError):
        return exc
    filename = template.filename or template.name or "<template>"
    where = f"{filename}, line {line}" if (line := _template_line(exc, filename)) else filename
    if isinstance(exc, TemplateSyntaxError):  # in an {% include %}d template
        return _syntax_error(exc)
    if isinstance(exc, TemplateNotFound):  # an {% include %} of a missing file
        return _not_found(exc, where)
    if isinstance(exc, SecurityError):
        return InputError(
            f"template tried an unsafe operation: {exc}",
            source=where,
            fix=f"Camera templates run in a sandbox: use the conditional's fields ({VARIABLES}) "
            f"and the filters ({', '.join(FILTERS)})",
        )
    if isinstance(exc, UndefinedError):
        return InputError(
            f"template uses an undefined value: {exc}",
            source=where,
            fix=f"Templates see {VARIABLES}; guard optional ones, e.g. "
            "{% if extra.get('background') %} or {% if x is defined %}",
        )
    field = _field_on_line(filename, line)
    if source is not None:  # name the conditional's file and field first, the template after
        return InputError(
            f"the camera cannot write it: {type(exc).__name__}: {exc} (at {where})",
            source=source,
            field=field,
            fix=f"Give {repr(field) if field else 'that field'} the type the camera expects "
            "(e.g. a date as 2029-01-01, text in quotes)",
        )
    return InputError(
        f"template failed: {type(exc).__name__}: {exc}"
        + (f" (writing the conditional's '{field}')" if field else ""),
        source=where,
        fix="Check that the conditional's fields (and its extra fields) have the types "
        "this camera expects",
    )


def _template_line(exc: BaseException, filename: str) -> int | None:
    """The template line where `exc` happened: Jinja rewrites tracebacks to template lines."""
    line = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
