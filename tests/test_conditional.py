"""Conditionals and cameras: loading, validation errors, rendering every camera, the sandbox."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from condpred.condition import (
    Author,
    Conditional,
    conditional_from_dict,
    describe_camera,
    list_cameras,
    load_conditional,
    render,
)
from condpred.condition.rendering import BUILTIN_CAMERAS
from condpred.errors import InputError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
USER_CAMERAS = EXAMPLES / "cameras"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))
BUILTINS = [
    "alignment-forum-post",
    "arxiv-abstract",
    "forecast-question",
    "news-article",
    "plain",
    "survey-response",
    "textbook-section",
    "transcript",
]
# Written out here, independently of the package's own tables.
MONTH = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
WEEKDAY = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def expected_dates(camera: str, d: dt.date) -> list[str]:
    """How each source writes the date (news: 'March 3, 2031'; arXiv: 'Submitted on 3 Mar 2031')."""
    day = {1: "1st", 2: "2nd", 3: "3rd", 21: "21st", 22: "22nd", 23: "23rd", 31: "31st"}
    return {
        "alignment-forum-post": [
            f"\n{day.get(d.day, f'{d.day}th')} {MONTH[d.month - 1][:3]} {d.year}\n"
        ],
        "arxiv-abstract": [
            f"[Submitted on {d.day} {MONTH[d.month - 1][:3]} {d.year}]",
            f"arXiv:{d.year % 100:02d}{d.month:02d}.",
        ],
        "forecast-question": [f"Forecast as of {MONTH[d.month - 1]} {d.day}, {d.year}\n"],
        "news-article": [f"{MONTH[d.month - 1]} {d.day}, {d.year} — "],
        "plain": [f"\n{d.isoformat()}\n"],
        "survey-response": [f"Fielded: {MONTH[d.month - 1]} {d.day}, {d.year}\n"],
        "textbook-section": [f"{d.year}\n"],
        "transcript": [f"\n{WEEKDAY[d.weekday()]} {d.day} {MONTH[d.month - 1]} {d.year}\n"],
    }[camera]


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> InputError:
    with pytest.raises(InputError) as info:
        load_conditional(write(tmp_path, text))
    return info.value


def dict_error(data: object) -> InputError:
    with pytest.raises(InputError) as info:
        conditional_from_dict(data, source="test.yaml")
    return info.value


def header(text: str, prefix: str) -> str:
    return text[: len(text) - len(prefix)] if prefix else text


# --- the examples through every camera -------------------------------------------------------


def test_the_examples_are_there() -> None:
    names = {path.name for path in EXAMPLE_FILES}
    assert {
        "alignment-paper-2031.yaml",
        "textbook-solved-alignment.yaml",
        "news-ai-moratorium.yaml",
        "forecast-question.yaml",
        "policy-meeting-transcript.yaml",
    } <= names
    for path in EXAMPLE_FILES:
        assert path.read_text().startswith("# Conditions on:"), path.name


def test_list_cameras_has_the_builtins() -> None:
    assert list_cameras() == BUILTINS
    assert list_cameras(USER_CAMERAS) == sorted([*BUILTINS, "lab-memo"])


@pytest.mark.parametrize("camera", BUILTINS)
@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_every_camera_renders_every_example(camera: str, example: Path) -> None:
    c = load_conditional(example, cameras_dir=USER_CAMERAS).with_(camera=camera)
    text = render(c)
    assert text.endswith(c.prefix) and c.prefix
    for date in expected_dates(camera, c.date):
        assert date in text, (camera, date)
    for premise in c.world:
        assert premise.rstrip(".") in text
    assert c.title in text
    for author in c.authors:
        assert author.name in text
    head = header(text, c.prefix)
    assert "\n\n\n" not in head and not text[0].isspace()
    assert not re.search(r"[ \t]\n", head), "a line ends in whitespace"
    assert render(c) == text


def test_dates_in_each_source_style() -> None:
    c = Conditional(
        title="T", date=dt.date(2031, 3, 3), prefix="Body", extra={"dateline": "London"}
    )
    looks = {
        "alignment-forum-post": "T\n3rd Mar 2031\n",
        "arxiv-abstract": "[Submitted on 3 Mar 2031]\nTitle: T\n",
        "forecast-question": "Forecast as of March 3, 2031\n",
        "news-article": "\n\nLONDON, March 3, 2031 — Body",
        "plain": "T\n2031-03-03\n\nBody",
        "textbook-section": "2031\n\nT\n\nBody",
        "transcript": "TRANSCRIPT\nT\nMonday 3 March 2031\n",
    }
    for camera, look in looks.items():
        assert look in render(c.with_(camera=camera)), camera


def test_arxiv_number_is_stable_across_runs() -> None:
    c = Conditional(camera="arxiv-abstract", title="Stable", date=dt.date(2031, 3, 3))
    assert render(c).startswith("arXiv:3103.90577 [cs.AI]\n")


def test_premises_are_stated_the_way_each_source_would() -> None:
    c = Conditional(
        title="T",
        world=["A moratorium has held since 2027", "Labs comply"],
        authors=[Author(name="Ada Lovelace", affiliation="ARC")],
        prefix="P",
    )
    looks = {
        "alignment-forum-post": "\n\nContext: A moratorium has held since 2027. Labs comply.\n\nP",
        "arxiv-abstract": "Abstract: A moratorium has held since 2027. Labs comply. P",
        "news-article": "\n\nA moratorium has held since 2027. Labs comply.\n\nP",
        "textbook-section": "Historical note\nA moratorium has held since 2027. Labs comply.\n\nP",
        "forecast-question": "Background\nA moratorium has held since 2027. Labs comply.\n",
        "transcript": "ADA LOVELACE: Good morning, everyone. Before we begin, some context for the "
        "record. A moratorium has held since 2027. Labs comply.\n\nP",
        "plain": "A moratorium has held since 2027\nLabs comply\n\nT\n",
    }
    for camera, look in looks.items():
        assert look in render(c.with_(camera=camera)), camera
    briefing = render(c.with_(camera="transcript", authors=[]))
    assert "Briefing note: A moratorium has held since 2027. Labs comply.\n\nP" in briefing


def test_forecast_question_uses_background_and_resolution_criteria() -> None:
    c = load_conditional(EXAMPLES / "forecast-question.yaml")
    text = render(c)
    background = text.index("\nBackground\n" + c.extra["background"][:40])
    criteria = text.index("\nResolution criteria\n" + c.extra["resolution_criteria"][:40])
    assert background < criteria < text.index("Comment by Priya Raman (Good Judgment Inc.)\n")
    assert "Question closes: December 31, 2028\n" in text


def test_transcript_lists_participants_and_marks_ai() -> None:
    c = Conditional(
        camera="transcript",
        title="T",
        authors=[Author(name="Ada", affiliation="DSIT"), Author(name="Model-7", kind="ai")],
        prefix="ADA: Let us begin.",
    )
    assert "Participants:\nAda, DSIT (Chair)\nModel-7 (AI system)\n\nADA: Let us begin." in render(
        c
    )


@pytest.mark.parametrize("camera", BUILTINS)
def test_empty_prefix_ends_where_the_body_starts(camera: str) -> None:
    c = Conditional(camera=camera, title="T", date=dt.date(2031, 3, 3), world=["W."])
    text = render(c)
    assert not text.endswith((" ", "\t")) and "\n\n\n" not in text
    assert text.rstrip("\n").endswith(("W.", "T", "Abstract: W.", "2031-03-03"))


def test_minimal_conditionals_render_without_stray_lines() -> None:
    for camera in BUILTINS:
        for data in ({"prefix": "Just text"}, {"title": "Only a title"}):
            text = render(conditional_from_dict({"camera": camera, **data}))
            assert not text[0].isspace() and "\n\n\n" not in text, (camera, text)


def test_describe_camera_says_what_it_imitates() -> None:
    for camera in BUILTINS:
        assert (BUILTIN_CAMERAS / f"{camera}.j2").read_text().startswith("{#")
        assert describe_camera(camera)
    assert "arXiv" in describe_camera("arxiv-abstract")
    assert "memorandum" in describe_camera("lab-memo", USER_CAMERAS)


# --- the model: round trips, copies, shorthands ----------------------------------------------


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_to_yaml_round_trips(example: Path, tmp_path: Path) -> None:
    c = load_conditional(example, cameras_dir=USER_CAMERAS)
    again = load_conditional(write(tmp_path, c.to_yaml()), cameras_dir=USER_CAMERAS)
    assert again == c
    assert again.to_yaml() == c.to_yaml()


def test_to_yaml_round_trips_awkward_text() -> None:
    c = Conditional(
        title="2031-03-03",
        prefix="Line one\n  indented\n\n",
        world=["yes", "null", "- dash", "key: value", "trailing space ", "tab\tand ünïcode ✓"],
        extra={"n": 1, "d": dt.date(2030, 1, 1), "nested": {"a": [1, "two", None]}},
        authors=["O'Brien", {"name": "AI", "kind": "ai"}],
    )
    assert Conditional.from_yaml(c.to_yaml()) == c


def test_extra_tuples_become_lists() -> None:
    c = Conditional(title="T", extra={"tags": ("a", ("b",))})
    assert c.extra == {"tags": ["a", ["b"]]}
    assert Conditional.from_yaml(c.to_yaml()) == c


def test_shorthands_wrap_single_values() -> None:
    c = conditional_from_dict({"title": "T", "world": "One premise", "authors": "Paul Christiano"})
    assert c.world == ["One premise"]
    assert c.authors == [Author(name="Paul Christiano")]
    assert c.authors[0].kind == "human"


def test_with_makes_a_validated_copy() -> None:
    c = Conditional(title="T", world=["W"], prefix="P")
    later = c.with_(date="2040-01-01")
    assert later.date == dt.date(2040, 1, 1) and c.date is None
    assert c.without_premises() == Conditional(title="T", prefix="P")
    with pytest.raises(InputError, match="field 'date'"):
        c.with_(date="soon")
    with pytest.raises(InputError, match="Did you mean 'world'"):
        c.with_(worlds=["W"])


def test_conditionals_are_immutable() -> None:
    c = Conditional(title="T")
    with pytest.raises(ValueError, match="frozen"):
        c.title = "U"  # type: ignore[misc]


def test_future_dates_are_fine() -> None:
    assert conditional_from_dict({"title": "T", "date": "2999-12-31"}).date == dt.date(2999, 12, 31)


# --- every bad input is an InputError that says where, what and how to fix it ----------------


def test_unknown_field_names_the_allowed_ones(tmp_path: Path) -> None:
    err = load_error(tmp_path, "titel: A paper\nprefix: x\n")
    assert err.source == str(tmp_path / "c.yaml") and err.field == "titel"
    assert "not a known field" in err.problem
    assert "Did you mean 'title'?" in err.fix and "camera, date, authors, world" in err.fix
    assert str(err).startswith(f"{tmp_path / 'c.yaml'}, field 'titel': ")


def test_bad_author_kind_names_path_value_and_allowed_values(tmp_path: Path) -> None:
    err = load_error(tmp_path, "title: T\nauthors:\n  - name: A\n    kind: robot\n")
    assert err.field == "authors[0].kind"
    assert "'robot'" in err.problem
    assert "'human' or 'ai'" in err.fix


def test_unknown_author_field(tmp_path: Path) -> None:
    err = load_error(tmp_path, "title: T\nauthors:\n  - name: A\n    affilation: MIT\n")
    assert err.field == "authors[0].affilation"
    assert "Did you mean 'affiliation'?" in err.fix and "name, affiliation, kind" in err.fix


@pytest.mark.parametrize(
    ("data", "field", "fix"),
    [
        ({"title": "T", "authors": [{"name": " "}]}, "authors[0].name", "author's name"),
        ({"title": "T", "authors": [5]}, "authors[0]", "name"),
        ({"title": "T", "date": "next year"}, "date", "2031-03-03"),
        ({"title": "T", "date": 1_700_000_000}, "date", "ISO date"),
        ({"title": "T", "date": dt.datetime(2031, 3, 3, 10)}, "date", "ISO date"),
        ({"title": 2031}, "title", "quote numbers"),
        ({"title": "T", "world": ["ok", "  "]}, "world", "premises"),
        ({"title": "T", "world": {"a": 1}}, "world[0]", "premises"),
        ({"title": "T", "world": {"set"}}, "world", "premises"),
        ({"title": "T", "extra": ["a"]}, "extra", "mapping"),
        ({"title": "T", "extra": {1: "a"}}, "extra[1] (key)", "mapping"),
        ({"title": "T", "extra": {"tags": {"a", "b"}}}, "extra", "mapping"),
        ({"title": "T", "extra": {"a": {"b": object()}}}, "extra", "mapping"),
        ({"title": "T", "extra": {"a": {1: 2}}}, "extra", "mapping"),
        ({"title": "T", "extra": {"n": 10**5000}}, "extra", "mapping"),
        ({"title": "T", "responses": [None]}, "responses[0]", "possible responses"),
        ({"title": "T", "camera": "../../etc/passwd"}, "camera", "camera template"),
        ({"title": "T", 7: "x"}, "7", "Allowed fields"),
    ],
)
def test_bad_values(data: dict, field: str, fix: str) -> None:
    err = dict_error(data)
    assert (err.source, err.field) == ("test.yaml", field)
    assert fix in err.fix


def test_nothing_to_continue(tmp_path: Path) -> None:
    err = load_error(tmp_path, "title: '  '\nprefix: ''\ndate: 2031-01-01\n")
    assert "title or a prefix" in err.problem and err.fix


def test_several_problems_are_all_mentioned() -> None:
    err = dict_error({"title": 1, "date": "x", "authors": [{"kind": "robot"}]})
    assert err.problem.startswith("4 problems:")
    for field in ("'date'", "'title'", "'authors[0].name'", "'authors[0].kind'"):
        assert f"field {field}" in err.problem
    assert "quote numbers" in err.problem and "'human' or 'ai'" in err.problem  # each its fix


def test_an_unknown_camera_and_an_impossible_date_are_reported_together(tmp_path: Path) -> None:
    """Dates are read as text and validated with the other fields, so one message has both."""
    err = load_error(tmp_path, "camera: arxiv\ndate: 2031-02-30\ntitle: T\n")
    assert err.problem.startswith("2 problems:") and err.source.endswith(".yaml")
    assert "field 'camera': unknown camera 'arxiv'" in err.problem
    assert "arxiv-abstract" in err.problem  # the cameras that exist
    assert "field 'date': '2031-02-30' is not a real date (day is out of range" in err.problem


def test_an_impossible_date_alone_names_its_field(tmp_path: Path) -> None:
    err = load_error(tmp_path, "title: T\ndate: 2031-13-01\n")
    assert err.field == "date" and "month must be in 1..12" in err.problem


def test_bad_values_are_cut_short_in_messages() -> None:
    err = dict_error({"title": "T", "date": "x" * 10_000})
    assert len(str(err)) < 500


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("title: T\nprefix: [unclosed\n", "line 3"),
        ("title: T\n  bad indent: x\n", "line 2"),
        ("title: T\ntitle: U\n", "line 2"),
        ("title: T\nextra: {d: !!timestamp nope}\n", "line 2"),
        ('title: T\nprefix: "\\U00200000"\n', "line 2"),
        ('title: T\nprefix: "\\U80000000"\n', "line 2"),
    ],
)
def test_yaml_errors_give_the_line(tmp_path: Path, text: str, where: str) -> None:
    err = load_error(tmp_path, text)
    assert err.source == str(tmp_path / "c.yaml")
    assert where in err.problem and err.fix


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is empty"),
        ("# only a comment\n", "is empty"),
        ("- a list\n", "got a list"),
        ("just text\n", "got text"),
        ("title: \x00\n", "binary file (a NUL byte at offset 7)"),
        ("a: &a [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" * 1, "nested too deeply"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ],
)
def test_files_that_are_not_conditionals(tmp_path: Path, text: str, problem: str) -> None:
    assert problem in load_error(tmp_path, text).problem


def test_yaml_alias_bombs_are_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    err = load_error(tmp_path, "\n".join(lines) + "\n")
    assert "too large" in err.problem


def test_missing_unreadable_and_folder_paths(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_conditional(tmp_path / "nope.yaml")
    with pytest.raises(InputError, match="is not a file"):
        load_conditional(tmp_path)
    (tmp_path / "latin1.yaml").write_bytes("title: caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        load_conditional(tmp_path / "latin1.yaml")


def test_unknown_camera_lists_the_available_ones(tmp_path: Path) -> None:
    err = load_error(tmp_path, "camera: arxiv\ntitle: T\n")
    assert err.field == "camera" and "unknown camera 'arxiv'" in err.problem
    assert "arxiv-abstract" in err.fix and "--cameras" in err.fix
    with pytest.raises(InputError, match="lab-memo"):
        load_conditional(EXAMPLES / "lab-memo.yaml")
    with pytest.raises(InputError, match="unknown camera"):
        render(Conditional(camera="nope", title="T"))


def test_missing_cameras_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cameras folder not found") as info:
        list_cameras(tmp_path / "none")
    assert info.value.source == str(tmp_path / "none")


# --- user cameras and the sandbox ------------------------------------------------------------


def camera_dir(tmp_path: Path, **templates: str) -> Path:
    folder = tmp_path / "cameras"
    folder.mkdir(exist_ok=True)
    for name, text in templates.items():
        (folder / f"{name.replace('_', '-')}.j2").write_text(text)
    return folder


def render_with(tmp_path: Path, template: str, **fields: object) -> str:
    folder = camera_dir(tmp_path, mine=template)
    return render(Conditional(camera="mine", title="T", **fields), cameras_dir=folder)


def render_error(tmp_path: Path, template: str) -> InputError:
    with pytest.raises(InputError) as info:
        render_with(tmp_path, template)
    return info.value


def test_user_camera_renders(tmp_path: Path) -> None:
    c = load_conditional(EXAMPLES / "lab-memo.yaml", cameras_dir=USER_CAMERAS)
    text = render(c, cameras_dir=USER_CAMERAS)
    assert text.startswith("MEMORANDUM\nTo: Research leads, Model evaluation team\n")
    assert "Date: February 11, 2030\n" in text and text.endswith(c.prefix)
    assert render_with(
        tmp_path, "{{ title | upper }}: {{ date | datefmt('arxiv') }}\n", date="2031-03-03"
    ) == ("T: 3 Mar 2031")


def test_user_camera_overrides_a_builtin(tmp_path: Path) -> None:
    folder = camera_dir(tmp_path, news_article="CUSTOM NEWS {{ title }}\n")
    c = Conditional(camera="news-article", title="T")
    assert render(c, cameras_dir=folder) == "CUSTOM NEWS T"
    assert render(c).startswith("T\n")


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ title.__class__.__mro__[1].__subclasses__() }}",
        "{{ date.__class__.__init__.__globals__ }}",
        "{{ world.append('x') }}",
        "{{ extra.update({'a': 1}) }}",
    ],
)
def test_sandbox_blocks_unsafe_access(tmp_path: Path, template: str) -> None:
    err = render_error(tmp_path, "line one\n" + template)
    assert "unsafe" in err.problem
    assert err.source == f"{tmp_path / 'cameras' / 'mine.j2'}, line 2"
    assert "sandbox" in err.fix


def test_template_syntax_error_reports_the_line(tmp_path: Path) -> None:
    err = render_error(tmp_path, "Title: {{ title }}\n\n{% if title %}\n{{ title }\n")
    assert "syntax error" in err.problem
    assert err.source == f"{tmp_path / 'cameras' / 'mine.j2'}, line 4"


def test_undefined_values_report_the_line_and_the_variables(tmp_path: Path) -> None:
    err = render_error(tmp_path, "{{ title }}\n{{ extra.missing }}\n")
    assert "undefined" in err.problem and err.source.endswith("mine.j2, line 2")
    assert "camera, date, authors" in err.fix
    assert "undefined" in render_error(tmp_path, "{{ no_such_variable }}").problem


def test_filter_failures_are_template_errors(tmp_path: Path) -> None:
    err = render_error(tmp_path, "\n\n{{ date | datefmt('klingon') }}")
    assert "unknown date style 'klingon'" in err.problem and err.source.endswith("line 3")


def test_template_that_is_not_utf8(tmp_path: Path) -> None:
    (camera_dir(tmp_path) / "latin.j2").write_bytes("caf\xe9 {{ title }}".encode("latin-1"))
    c = Conditional(camera="latin", title="T")
    with pytest.raises(InputError, match="not UTF-8"):
        render(c, cameras_dir=tmp_path / "cameras")
    with pytest.raises(InputError, match="not UTF-8"):
        describe_camera("latin", tmp_path / "cameras")


def test_include_of_a_missing_template(tmp_path: Path) -> None:
    assert "not found" in render_error(tmp_path, "{% include 'nope.j2' %}").problem


def test_a_nul_is_refused_from_a_dict_as_from_a_file():
    """Found by the conditional fuzz test: built from data, a NUL passed, and the conditional
    then failed its own YAML round trip."""
    from condpred.condition.conditional import conditional_from_dict

    with pytest.raises(InputError, match="NUL"):
        conditional_from_dict({"prefix": "\x00"})
