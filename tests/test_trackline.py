"""The ``%%track`` option grammar (nbtrack.trackline): parsing, errors, help and the docs."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nbtrack.errors import UsageError
from nbtrack.trackline import (
    OPTIONS,
    TrackOptions,
    markdown_table,
    option_label,
    parse_track_line,
    usage_text,
)

DOCS = Path(__file__).resolve().parents[1] / "docs"

# For each option of the grammar: a line using it (long and short spellings) and the field
# it must set. A new option without a case here fails test_every_option_has_a_case.
CASES = {
    "name": [("--name digits/mlp", "digits/mlp"), ("-n 'two words'", "two words")],
    "seed": [("--seed 42", 42), ("-s 0", 0), ("--seed 4294967295", 2**32 - 1)],
    "deterministic": [("--deterministic", True)],
    "tags": [("--tag a -t b --tag a", ("a", "b", "a"))],
    "note": [('--note "lower lr, more epochs"', "lower lr, more epochs")],
    "project": [("--project vision-team", "vision-team"), ("--project ' a/b '", "a/b")],
    "overrides": [
        (
            "--set lr=1e-3 --set opt=adam --set layers=[64,32]",
            (("lr", 1e-3), ("opt", "adam"), ("layers", [64, 32])),
        )
    ],
    "no_data": [("--no-data", True)],
    "no_env": [("--no-env", True)],
    "quiet": [("--quiet", True), ("-q", True)],
    # Sweep options (docs/sweeps.md); all but --sweep need --sweep, which sets "sweep" too.
    "sweep": [("--sweep 40", 40)],
    "objective": [("--sweep 1 --objective val_acc", "val_acc")],
    "direction": [("--sweep 1 --direction maximize", "max")],
    "space": [
        (
            "--sweep 1 --space lr=loguniform(1e-5,1e-2) --space 'h=choice(64, 128)'",
            ("lr=loguniform(1e-5,1e-2)", "h=choice(64, 128)"),
        )
    ],
    "sampler": [("--sweep 1 --sampler random", "random")],
    "pruner": [("--sweep 1 --pruner median", "median")],
    "workers": [("--sweep 1 --workers 3", 3)],
    "resume": [("--sweep 1 --resume", True)],
    "narrow_from": [("--sweep 1 --narrow-from 2", "2")],
    "max_failures": [("--sweep 1 --max-failures 5", 5)],
}


def test_every_option_has_a_case_and_a_field() -> None:
    dests = [spec.dest for spec in OPTIONS]
    assert sorted(CASES) == sorted(dests)
    assert [f.name for f in dataclasses.fields(TrackOptions)] == dests


@pytest.mark.parametrize(
    ("dest", "line", "expected"),
    [(dest, line, value) for dest, cases in CASES.items() for line, value in cases],
)
def test_each_option_sets_its_field_and_nothing_else(
    dest: str, line: str, expected: object
) -> None:
    options = parse_track_line(line)
    assert getattr(options, dest) == expected
    if dest != "sweep" and options.sweep is not None:
        options = dataclasses.replace(options, sweep=None)  # the option it needs
    assert dataclasses.replace(options, **{dest: getattr(TrackOptions(), dest)}) == TrackOptions()


def test_empty_line_is_the_defaults() -> None:
    assert parse_track_line("") == TrackOptions()
    assert parse_track_line("   ") == TrackOptions()


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("--bogus", "unrecognized arguments: --bogus"),
        ("--name", "--name/-n: expected one argument"),
        ("--seed notanint", "invalid int value: 'notanint'"),
        ("--seed -1", "--seed -1 is out of range"),
        ("--seed 4294967296", "--seed 4294967296 is out of range"),
        ("--set lr", "bad --set option 'lr'"),
        ("--set 1x=2", "bad --set option '1x=2'"),
        ('--note "unclosed', "cannot split the options (No closing quotation)"),
        ("--det", "unrecognized arguments: --det"),  # no abbreviations
        ("--project 'two words'", "--project 'two words' is not a project name"),
        ("stray", "unrecognized arguments: stray"),
    ],
)
def test_bad_lines_are_one_line_usage_errors(line: str, says: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_track_line(line)
    message = str(info.value)
    assert says in message
    assert "\n" not in message


def test_not_strict_ignores_options_it_does_not_know() -> None:
    line = "--sweep 40 --sampler tpe --name a/b --seed 3 --future-flag"
    with pytest.raises(UsageError, match="unrecognized arguments"):
        parse_track_line(line)
    options = parse_track_line(line, strict=False)
    assert options == TrackOptions(name="a/b", seed=3, sweep=40, sampler="tpe")
    # Known options are still checked: the line was valid for the nbtrack that ran it.
    with pytest.raises(UsageError, match="out of range"):
        parse_track_line("--seed 4294967296 --sweep 4", strict=False)


@pytest.mark.parametrize(
    "options",
    [
        TrackOptions(),
        TrackOptions(
            name="a b/'c'",
            seed=7,
            deterministic=True,
            tags=("x", "y z"),
            note='say "hi"',
            project="vision/detection",
            overrides=(("lr", 0.1), ("opt", "adam"), ("text", "1"), ("big", float("inf"))),
            no_data=True,
            no_env=True,
            quiet=True,
        ),
        TrackOptions(
            sweep=40,
            objective="val_acc",
            direction="max",
            space=("lr=loguniform(1e-5, 1e-2)", "opt=choice('adam', 'sgd')"),
            sampler="tpe",
            pruner="median",
            workers=3,
            resume=True,
            narrow_from="2",
            max_failures=5,
        ),
    ],
)
def test_to_line_parses_back_to_the_same_options(options: TrackOptions) -> None:
    assert parse_track_line(options.to_line()) == options


def test_usage_text_lists_every_option_with_its_help() -> None:
    text = usage_text()
    assert text.startswith("Usage: %%track ")
    for spec in OPTIONS:
        for flag in spec.flags:
            assert re.search(rf"(^|[\s\[,]){re.escape(flag)}\b", text), flag
        assert spec.help.split()[0] in text


def _docs_option_table(path: Path) -> list[tuple[str, str]]:
    """The rows of the markdown table whose header is `| option | meaning |`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("| option | meaning |")
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        rows.append((cells[0], cells[1]))
    return rows


def test_docs_table_lists_exactly_the_grammars_options() -> None:
    rows = _docs_option_table(DOCS / "tracking.md")
    assert [label for label, _ in rows] == [option_label(spec) for spec in OPTIONS]
    assert [meaning for _, meaning in rows] == [spec.help for spec in OPTIONS]
    # The table is generated: paste markdown_table() into docs/tracking.md after a change.
    assert markdown_table() in (DOCS / "tracking.md").read_text(encoding="utf-8")


def test_grammar_is_core_and_cheap_to_import() -> None:
    code = (
        "import sys, nbtrack.trackline as t; t.parse_track_line('--seed 1 --set a=1');"
        "bad = [m for m in ('IPython', 'numpy', 'pandas') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
