"""Each stage of ``export_run`` (nbtrack.export.runs) alone, on a small hand-built history."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nbtrack import __version__
from nbtrack.errors import ExportError
from nbtrack.export.runs import (
    Flags,
    Pins,
    SlicedHistory,
    TranslatedHistory,
    describe_run,
    export_run,
    params_as_flags,
    pin_dependencies,
    render_run,
    slice_history,
    translate_history,
)
from nbtrack.model import HistoryEntry
from nbtrack.records import RunRecord
from nbtrack.trackline import TrackOptions

TRACKED_BODY = "epochs = 2\ntrack.log_params(depth=3)\ntrack.log(loss=lr * epochs + warm)\n"
HISTORY = [
    HistoryEntry(1, "import random\nlr = 0.1\nunused = 5\n"),
    HistoryEntry(2, "%%track --seed 3 --name warm\nwarm = 1\ntrack.log(a=1)\n"),
    HistoryEntry(3, "x = (\n"),  # a syntax error: it never ran
    HistoryEntry(4, "print('noise')\n"),
    HistoryEntry(5, "%%track --name t/run --seed 7 --future-flag 4\n" + TRACKED_BODY),
]


def _record(**changes: Any) -> RunRecord:
    fields: dict[str, Any] = dict(
        id="0123456789abcdef0123",
        number=12,
        name="t/run",
        status="finished",
        kind="cell",
        start_time=0.0,
        end_time=1.0,
        notebook=None,
        note=None,
        tags=[],
        params={"epochs": 2, "lr": 0.1, "depth": 3},
        metrics={"loss": 1.2},
        metric_history={},
        seed=7,
        deterministic=False,
        seed_calls=[],
        rng_state=None,
        environment={"python": {"version": "3.11.7"}, "packages": {}},
        git={},
        inputs=[],
        models=[],
        code=TRACKED_BODY,
        history=list(HISTORY),
        artifacts=[],
        error=None,
        warnings=[],
        # --future-flag: an option from another nbtrack version, left out rather than refused
        extra={"magic_line": "--name t/run --seed 7 --future-flag 4", "seeded": ["random"]},
        store=None,
    )
    fields.update(changes)
    return RunRecord(**fields)


# --- 1. translate ---------------------------------------------------------------------------


def test_translate_history_gives_plain_cells_and_the_tracked_options() -> None:
    history = translate_history(_record())
    assert [count for count, _ in history.cells] == [1, 2, 4, 5]
    assert history.skipped == (3,)
    assert history.tracked_count == 5
    assert history.options == TrackOptions(name="t/run", seed=7)
    assert history.cells[-1][1] == TRACKED_BODY
    # An earlier %%track cell replays untracked, seeded as the magic seeded it.
    assert history.cells[1][1] == "_nbtrack_seed(3)\ntrack = _nbtrack_untracked()\nwarm = 1\n" + (
        "track.log(a=1)\n"
    )
    assert {"untracked", "seed"} <= history.helpers[1]
    assert history.helpers[0] == frozenset()


def test_translate_history_refuses_a_run_without_history_or_with_track_twice() -> None:
    with pytest.raises(ExportError, match="no notebook history to export"):
        translate_history(_record(history=[]))
    with pytest.raises(ExportError, match="starts with %%track again"):
        translate_history(_record(code="%%track\nx = 1\n"))


def test_a_cell_whose_track_line_was_refused_never_ran_and_is_skipped() -> None:
    refused = HistoryEntry(2, "%%track --bogus\nx = 1\n")
    history = translate_history(_record(history=[HISTORY[0], refused, HISTORY[-1]]))
    assert history.skipped == (2,)
    assert [count for count, _ in history.cells] == [1, 5]


def test_a_cell_whose_set_the_magic_refused_never_ran_and_is_skipped() -> None:
    # --set of a name the cell does not bind: the magic refuses it with the same rule.
    refused = HistoryEntry(2, "%%track --set missing=1\nx = 1\n")
    history = translate_history(_record(history=[HISTORY[0], refused, HISTORY[-1]]))
    assert history.skipped == (2,)
    assert [count for count, _ in history.cells] == [1, 5]


def test_translate_history_uses_the_history_line_when_none_was_recorded() -> None:
    history = translate_history(_record(extra={}, code=""))
    assert history.options == TrackOptions(name="t/run", seed=7)
    assert history.cells[-1][1] == TRACKED_BODY


# --- 2. slice -------------------------------------------------------------------------------


def test_slice_history_keeps_what_the_tracked_cell_reads() -> None:
    sliced = slice_history(translate_history(_record()), reset_rng=("random",))
    assert sliced.kept == (0, 1)  # In[1] (lr) and In[2] (warm); In[4] only prints
    assert sliced.dropped == (4,)
    assert "lr = 0.1" in sliced.texts[0] and "unused" not in sliced.texts[0]
    assert sliced.statements[0][0] < sliced.statements[0][1]  # part of In[1]
    assert "warm = 1" in sliced.texts[1] and "track.log(a=1)" not in sliced.texts[1]
    assert sliced.statements[1] == (2, 4)  # of the untracked prologue (2 lines) and the body
    assert sliced.tracked_code == TRACKED_BODY
    assert {"untracked", "seed"} <= sliced.helpers
    assert sliced.notes == ()


def test_slice_history_keeps_cells_that_raised_whole_and_notes_unknown_names() -> None:
    history = TranslatedHistory(
        cells=((1, "a = 1\nb = 2\n"), (2, "print(a, c)\n")),
        helpers=(frozenset(), frozenset()),
        options=TrackOptions(),
    )
    sliced = slice_history(history, failed={1: "ValueError"})
    assert sliced.kept == (0,)
    assert sliced.texts == ("a = 1\nb = 2\n",)  # whole: how far it got is unknown
    assert sliced.failed == {1: "ValueError"}
    assert len(sliced.notes) == 1 and sliced.notes[0].endswith(": c")


# --- 3. parameters as flags -----------------------------------------------------------------


def _sliced(texts: tuple[str, ...], tracked: str) -> SlicedHistory:
    return SlicedHistory(
        kept=tuple(range(len(texts))),
        texts=texts,
        statements=tuple((1, 1) for _ in texts),
        tracked_code=tracked,
        helpers=frozenset(),
        dropped=(),
    )


def test_only_params_whose_binding_is_replaced_become_flags() -> None:
    flags = params_as_flags(
        _sliced(("lr = 0.1\n",), TRACKED_BODY), {"epochs": 2, "lr": 0.1, "depth": 3}
    )
    assert [p.name for p in flags.params] == ["epochs", "lr"]
    assert [p.default for p in flags.params] == [2, 0.1]
    assert "epochs = PARAMS['epochs']" in flags.tracked_code
    assert flags.texts == ("lr = PARAMS['lr']\n",)
    assert flags.not_flags == ("depth",)
    assert len(flags.notes) == 1
    assert "depth" in flags.notes[0] and "track.log_params" in flags.notes[0]


def test_the_tracked_cells_binding_wins_over_an_earlier_cell() -> None:
    flags = params_as_flags(_sliced(("lr = 0.5\n",), "lr = 0.1\nprint(lr)\n"), {"lr": 0.1})
    assert flags.texts == ("lr = 0.5\n",)  # the run read the tracked cell's value
    assert flags.tracked_code.startswith("lr = PARAMS['lr']")
    assert flags.not_flags == () and flags.notes == ()


# --- 4. pin ---------------------------------------------------------------------------------


def test_pin_dependencies_uses_recorded_versions() -> None:
    pins = pin_dependencies(
        ["import numpy as np\nimport json\n"],
        {"numpy": "1.26.4"},
        needs_nbtrack=True,
        needs_ipython=False,
    )
    assert pins.dependencies == ("nbtrack>=" + __version__, "numpy==1.26.4")
    assert pins.notes == ()
    bare = pin_dependencies(["x = 1\n"], {}, needs_nbtrack=False, needs_ipython=False)
    assert bare.dependencies == ()


# --- 5. describe ----------------------------------------------------------------------------


def test_describe_run_says_what_the_script_holds_and_collects_the_notes() -> None:
    record = _record()
    history = translate_history(record)
    sliced = slice_history(history, reset_rng=("random",))
    flags = params_as_flags(sliced, record.params)
    pins = Pins(dependencies=(), notes=("a pin note",))
    description = describe_run(record, history, sliced, flags, pins, track=True)
    assert description.title == "Reproduce nbtrack run #12 't/run' (id 0123456789ab)."
    text = " ".join(" ".join(description.paragraphs).split())  # unwrapped
    assert "(In[1], In[2])" in text and "tracked cell In[5]" in text
    assert "Left out (the run does not depend on them): In[4]." in text
    assert "Not valid Python, so they never ran: In[3]." in text
    assert "Seed: 7" in text
    assert "python SCRIPT.py --epochs ... --lr ..." in text
    assert description.notes == (*flags.notes, "a pin note")
    unseeded = describe_run(
        dataclasses.replace(record, seed=None), history, sliced, flags, pins, track=False
    )
    assert "no seed and no recorded RNG state" in unseeded.notes[-2]
    assert "untracked" in unseeded.paragraphs[0]


# --- 6. render, and the pipeline --------------------------------------------------------------


def test_render_run_writes_the_tracked_cell_as_a_run_block() -> None:
    record = _record()
    history = translate_history(record)
    sliced = slice_history(history, reset_rng=("random",))
    flags = params_as_flags(sliced, record.params)
    pins = Pins(dependencies=("nbtrack>=" + __version__,))
    description = describe_run(record, history, sliced, flags, pins, track=True)
    result = render_run(record, history, sliced, flags, pins, description, track=True)
    ast.parse(result.script)
    assert "with nbtrack.run(name='t/run', seed=SEED, params=PARAMS) as track:" in result.script
    assert result.kept == (1, 2, 5) and result.dropped == (4,) and result.skipped == (3,)
    assert result.notes == description.notes
    assert result == export_run(record)  # export_run is exactly these stages composed


def test_untracked_script_runs_with_its_flags(tmp_path: Path) -> None:
    """The untracked prologue (one definition, in export/cells.py) seeds as the run did."""
    result = export_run(_record(), track=False)
    script = result.script
    assert script.count("track = _nbtrack_untracked()") == 2  # In[2] and the tracked cell
    assert "_nbtrack_seed(SEED)\ntrack = _nbtrack_untracked()" in script
    path = tmp_path / "run.py"
    path.write_text(script, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(path), "--epochs", "3"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "'loss': 1.3" in done.stdout  # lr 0.1 * 3 epochs + warm 1
    helped = subprocess.run(
        [sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=60
    )
    assert "--epochs" in helped.stdout and "--lr" in helped.stdout
    assert "--depth" not in helped.stdout  # logged with track.log_params: not a flag


LOOP_BODY = """\
epochs = 6
for epoch in range(epochs):
    try:
        track.log(loss=lr / (epoch + 1), step=epoch)
    except Exception:
        pass  # the loop's own handler: the stop must end the cell anyway
print("end of the cell")
"""


def _pruned(**extra: Any) -> RunRecord:
    """Run #12 as a sweep trial its pruner stopped at step 2 of loss."""
    history = [*HISTORY[:4], HistoryEntry(5, "%%track --name t/run --seed 7\n" + LOOP_BODY)]
    return _record(
        status="pruned",
        code=LOOP_BODY,
        history=history,
        params={"epochs": 6, "lr": 0.1},
        metrics={"loss": 0.1 / 3},
        extra={
            "magic_line": "--name t/run --seed 7",
            "seeded": ["random"],
            "sweep": {"id": "s1", "number": 1, "trial": 4},
            "stopped_at": {"metric": "loss", "step": 2},
            **extra,
        },
    )


def test_a_pruned_run_exports_to_a_script_that_stops_where_it_stopped(
    tmp_path: Path, store_dir: Path
) -> None:
    import nbtrack

    result = export_run(_pruned())
    ast.parse(result.script)
    call = (
        "nbtrack.run(name='t/run', seed=SEED, params=PARAMS, stop_at={'metric': 'loss', 'step': 2})"
    )
    assert f"with {call} as track:" in result.script
    text = " ".join(result.script.split())
    assert "Run #12 was pruned by its sweep at step 2 of loss; the script stops there too." in text
    assert "recorded run's status is" not in text
    path = tmp_path / "pruned.py"
    path.write_text(result.script + 'print("after the block")\n', encoding="utf-8")
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "end of the cell" not in done.stdout and "after the block" in done.stdout
    run = nbtrack.get_run("last")
    assert run.status == "pruned" and run.extra["stopped_at"] == {"metric": "loss", "step": 2}
    assert run.metrics == {"loss": 0.1 / 3}
    # A run that ran to its end, or whose stop this nbtrack cannot read, is not stopped.
    plain = "with nbtrack.run(name='t/run', seed=SEED, params=PARAMS) as track:"
    assert plain in export_run(_record()).script
    odd = export_run(_pruned(stopped_at={"metric": "loss", "step": "late"}))
    assert plain in odd.script
    assert any("does not read" in note for note in odd.notes)


def test_a_pruned_run_exported_untracked_stops_there_too(tmp_path: Path) -> None:
    script = export_run(_pruned(), track=False).script
    stand_in = "track = _nbtrack_untracked(stop_at={'metric': 'loss', 'step': 2})\ntry:\n"
    assert stand_in in script
    path = tmp_path / "untracked.py"
    path.write_text(script, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(path), "--lr", "0.3"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "note: stopped at step 2 of loss, where the recorded run stopped" in done.stdout
    assert "end of the cell" not in done.stdout
    assert "metrics: {'loss': 0.09999999999999999}" in done.stdout  # 0.3 / 3, after the stop


def test_flags_dataclass_is_frozen() -> None:
    flags = Flags(params=(), texts=(), tracked_code="")
    with pytest.raises(dataclasses.FrozenInstanceError):
        flags.tracked_code = "x"  # type: ignore[misc]
