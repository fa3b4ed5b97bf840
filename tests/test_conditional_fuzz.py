"""Fuzzing the loader and the cameras: whatever goes in, the only error out is InputError.

Conditionals are user input, often from files nobody checked. Arbitrary YAML text, arbitrary data
(nested junk, wrong types, huge strings, unicode) and arbitrary templates must each either work or
raise an InputError, never a traceback; and what does load renders, round-trips through YAML and
ends with its prefix.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from condpred.condition import Conditional, conditional_from_dict, list_cameras, render
from condpred.condition.conditional import load_conditional
from condpred.errors import InputError

# 200 examples per test keeps the suite fast; raise it for a deeper search, e.g.
# CONDPRED_FUZZ_EXAMPLES=5000 pytest tests/test_conditional_fuzz.py
FUZZ = settings(
    max_examples=int(os.environ.get("CONDPRED_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CAMERAS = list_cameras()
FIELDS = ["camera", "date", "authors", "world", "title", "prefix", "extra", "responses"]
EXTRA_KEYS = [
    "background",
    "resolution_criteria",
    "fine_print",
    "closes",
    "resolves",
    "tags",
    "subjects",
    "comments",
    "category",
    "dateline",
    "outlet",
    "standfirst",
    "book",
    "edition",
    "publisher",
    "chapter",
    "section",
    "location",
    "chair",
]

# Built on demand, so Hypothesis does not print (or store) megabytes in its reports; drawn rarely,
# because the pure-Python YAML round trip of a huge string is slow.
huge = st.sampled_from([("x", 12_000), ("é✓", 4_000), ("\n", 3_000), ("{{ title }}", 500)]).map(
    lambda unit: unit[0] * unit[1]
)
text = st.one_of(
    *[st.text()] * 4, st.text(alphabet=st.characters(codec="utf-8"), max_size=50), huge
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | text
    | st.dates()
    | st.datetimes()
    | st.binary(max_size=10)
)
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=4)
    ),
    max_leaves=12,
)
author = st.text(max_size=20) | st.fixed_dictionaries(
    {"name": st.text(max_size=20)},
    optional={
        "affiliation": st.none() | st.text(max_size=20),
        "kind": st.sampled_from(["human", "ai", "robot"]),
        "role": st.text(max_size=5),
    },
)
VALUES = {
    "camera": st.sampled_from([*CAMERAS, "nope", "../etc/passwd", ""]) | junk,
    "date": st.dates().map(str) | st.dates() | st.text(max_size=12) | junk,
    "authors": st.lists(author, max_size=3) | author | junk,
    "world": st.lists(text, max_size=3) | text | junk,
    "title": st.none() | text | junk,
    "prefix": text | junk,
    "extra": st.dictionaries(st.sampled_from(EXTRA_KEYS) | st.text(max_size=8), junk, max_size=5)
    | junk,
    "responses": st.lists(text, max_size=3) | junk,
}
conditional_like = st.fixed_dictionaries({}, optional=VALUES) | st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=8), junk, max_size=5
)
data = conditional_like | junk


def load_and_render(value: Any) -> None:
    """The contract: either it renders (and round-trips), or an InputError says why not."""
    try:
        conditional = conditional_from_dict(value)
        rendered = render(conditional)
    except InputError as err:
        assert str(err)
        return
    if conditional.prefix:
        assert rendered.endswith(conditional.prefix)
    assert render(conditional) == rendered
    again = Conditional.from_yaml(conditional.to_yaml())
    assert again.to_yaml() == conditional.to_yaml()


@FUZZ
@given(data)
def test_arbitrary_data_raises_only_input_error(value: Any) -> None:
    load_and_render(value)


@FUZZ
@given(
    st.fixed_dictionaries(
        {"prefix": text.filter(str.strip)},
        optional={k: v for k, v in VALUES.items() if k not in ("prefix", "camera")},
    ),
    st.data(),
)
def test_conditionals_that_load_render_in_every_camera(value: dict, draw: st.DataObject) -> None:
    load_and_render({**value, "camera": draw.draw(st.sampled_from(CAMERAS))})


def mutate(yaml_text: str, cuts: list[tuple[int, str]]) -> str:
    """Corrupt valid YAML by inserting characters at given positions."""
    for position, insert in cuts:
        index = position % (len(yaml_text) + 1)
        yaml_text = yaml_text[:index] + insert + yaml_text[index:]
    return yaml_text


yaml_fragments = st.sampled_from(
    [": ", "- ", "\n", "  ", "[", "]", "{", "}", "&a ", "*a", "!!", "!!binary ", "!!timestamp ",
     "!!python/object ", '"', "'", "|", ">", "#", "?", "<<: ", "\t", "\x00", "\ufeff",
     "%YAML 1.1\n", "---\n", "...\n", "title", "prefix", "date", "2031-13-45", "authors",
     "world", "extra"]
)  # fmt: skip
yaml_texts = (
    st.text()
    | st.lists(yaml_fragments, max_size=30).map("".join)
    | st.builds(
        mutate,
        conditional_like.map(lambda d: yaml.dump(d, Dumper=yaml.CSafeDumper, allow_unicode=True)),
        st.lists(
            st.tuples(st.integers(0, 10_000), yaml_fragments | st.text(max_size=3)), max_size=3
        ),
    )
)


@FUZZ
@given(yaml_texts)
def test_arbitrary_yaml_files_raise_only_input_error(tmp_path: Path, yaml_text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    try:
        conditional = load_conditional(path)
    except InputError as err:
        assert str(path) in str(err)
        return
    load_and_render(conditional.model_dump())


template_fragments = st.sampled_from(
    ["{{ ", " }}", "{% ", " %}", "{# ", " #}", "if ", "endif", "for x in world", "endfor", "else",
     "title", "prefix", "date", "authors", "extra", "world", ".", "[0]", "|", "upper", "datefmt",
     "datefmt('nope')", "listing", "names", "paragraph", "and_join", "stable_digits(99)", "(", ")",
     "__class__", "__mro__", "mro()", "'", '"', "~", "+", "-", "1", "0", "/", "%", "include 'x.j2'",
     "set y = ", "macro m()", "endmacro", "m()", "\n", " ", "x", "y", "none", "get('a')"]
)  # fmt: skip
templates = st.lists(template_fragments, max_size=25).map("".join) | st.text(max_size=40)


@FUZZ
@given(templates)
def test_arbitrary_user_templates_raise_only_input_error(tmp_path: Path, template: str) -> None:
    (tmp_path / "fuzz.j2").write_text(template, encoding="utf-8")
    conditional = Conditional(
        camera="fuzz",
        title="T",
        date=dt.date(2031, 3, 3),
        authors=["A"],
        world=["W"],
        extra={"a": 1},
    )
    try:
        render(conditional, cameras_dir=tmp_path)
    except InputError as err:
        assert "fuzz.j2" in str(err) or "camera" in str(err)


@pytest.mark.parametrize("camera", CAMERAS)
def test_every_camera_survives_junk_in_extra(camera: str) -> None:
    for value in [None, 0, [], {}, [1, [2]], {"a": {"b": None}}, dt.date(2031, 1, 1), b"x", 1.5]:
        load_and_render({"camera": camera, "title": "T", "extra": dict.fromkeys(EXTRA_KEYS, value)})
