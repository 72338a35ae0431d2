"""A metric's direction, declared once: the name rule, nbtrack.toml, track.goal, storage."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import nbtrack
from nbtrack.errors import UsageError
from nbtrack.metrics import (
    configured_goals,
    direction,
    heuristic_direction,
    is_better,
    parse_direction,
    resolve,
    tokens,
)


@pytest.mark.parametrize(
    "metric, expected",
    [
        ("val_loss", "min"),
        ("loss", "min"),
        ("wer", "min"),
        ("test/mse", "min"),
        ("latency_ms", "min"),
        ("valLoss", "min"),  # camelCase
        ("trainLossMean", "min"),
        ("HTTPLatencyP99", "min"),
        ("top1-error", "min"),
        ("loss_per_epoch", "min"),  # a rate: "per epoch" qualifies the loss
        ("val.rmse", "min"),
        ("loss2", "min"),
        ("accuracy", "max"),
        ("val_acc", "max"),
        ("power", "max"),  # contains "wer" but is not a word error rate
        ("answer_acc", "max"),  # contains "wer" too
        ("lower_bound", "max"),  # "lower" contains "wer"; "bound" decides
        ("best_loss_epoch", "max"),  # an epoch index: the last word decides, not "loss"
        ("num_steps", "max"),
        ("timestamp", "max"),  # a whole word, not "time"
        ("f1", "max"),
        ("mean", "max"),  # nothing but a modifier: no opinion, the default
    ],
)
def test_name_rule_reads_whole_words_and_the_last_one_decides(metric: str, expected: str) -> None:
    assert heuristic_direction(metric) == expected


def test_tokens_split_on_separators_and_camel_case() -> None:
    assert tokens("test/mse") == ["test", "mse"]
    assert tokens("trainLossPerEpoch") == ["train", "loss", "per", "epoch"]
    assert tokens("HTTPLatency.p99 ms") == ["http", "latency", "p99", "ms"]


def test_written_directions_and_bad_ones() -> None:
    assert parse_direction("Minimize", "x") == "min"
    assert parse_direction("max", "x") == "max"
    with pytest.raises(UsageError, match=r"^goals: acc = 'up' is not a metric direction"):
        parse_direction("up", "goals: acc")
    assert is_better(0.1, 0.2, "min") and not is_better(0.1, 0.2, "max")
    assert not is_better(float("nan"), 0.2, "max") and is_better(0.2, float("nan"), "min")


def test_declared_beats_config_beats_name(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "nbtrack.toml").write_text(
        '[metrics]\npower = "minimize"\nval_loss = "max"\n', encoding="utf-8"
    )
    sub = tmp_path / "notebooks" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)  # found from the working directory upwards
    assert configured_goals() == {"power": "min", "val_loss": "max"}
    assert resolve("power", {}, configured_goals()) == ("min", "config")
    assert resolve("power", {"power": "max"}, configured_goals()) == ("max", "declared")
    assert resolve("val_acc", {}, configured_goals()) == ("max", "heuristic")
    assert direction("val_loss") == "max"
    assert direction("val_loss", {"val_loss": "min"}) == "min"
    assert nbtrack.metric_direction("power") == "min"
    # An edit is seen at once (the cache is keyed by the file's mtime and size).
    (tmp_path / "nbtrack.toml").write_text('[metrics]\npower = "max"\n', encoding="utf-8")
    assert direction("power") == "max" and direction("val_loss") == "min"


def test_bad_config_value_is_one_line_naming_file_and_key(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "nbtrack.toml").write_text('[metrics]\nval_acc = "up"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError) as info:
        configured_goals()
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "nbtrack.toml") in message and "[metrics] val_acc" in message
    (tmp_path / "nbtrack.toml").write_text("[metrics\n", encoding="utf-8")
    with pytest.raises(UsageError, match="nbtrack.toml cannot be read"):
        configured_goals()


def _goals_column(store_dir: Path, number: int) -> dict:
    conn = sqlite3.connect(store_dir / "nbtrack.db")
    raw = conn.execute("SELECT goals FROM runs WHERE number=?", (number,)).fetchone()[0]
    conn.close()
    return json.loads(raw)


def test_directions_are_stored_with_the_run_and_read_back(
    store_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "nbtrack.toml").write_text('[metrics]\npower = "min"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with nbtrack.run(name="t/goals", goals={"val_loss": "max"}, capture_env=False) as track:
        track.goal(acc="minimize")
        assert track.goals == {"val_loss": "max", "acc": "min"}
        assert nbtrack.metric_direction("val_loss") == "max"  # the active run's declaration
        track.log(val_loss=0.5, acc=0.9, power=3.0, wer=0.2)
    stored = _goals_column(store_dir, 1)
    assert stored == {
        "val_loss": {"direction": "max", "source": "declared"},
        "acc": {"direction": "min", "source": "declared"},
        "power": {"direction": "min", "source": "config"},
        "wer": {"direction": "min", "source": "heuristic"},
    }
    record = nbtrack.get_run(1)
    assert record.goals == stored
    assert record.direction("val_loss") == "max" and record.direction("wer") == "min"
    assert record.to_dict()["goals"] == stored
    # What the run stored wins over a later change of nbtrack.toml.
    (tmp_path / "nbtrack.toml").write_text('[metrics]\npower = "max"\n', encoding="utf-8")
    assert nbtrack.get_run(1).direction("power") == "min"


def test_a_bad_goal_is_a_one_line_usage_error(store_dir: Path) -> None:
    with pytest.raises(UsageError, match=r"^goals: loss = 'down' is not a metric direction"):
        nbtrack.run(name="t/bad", goals={"loss": "down"}, capture_env=False)
    with nbtrack.run(name="t/bad", capture_env=False) as track:
        with pytest.raises(UsageError, match="track.goal: loss = 3 is not a metric direction"):
            track.goal(loss=3)
        track.log(loss=1.0)
    assert nbtrack.get_run("last").status == "finished"


def test_goal_in_a_tracked_cell_and_a_bad_config_warns_without_breaking_the_cell(
    shell, store_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "nbtrack.toml").write_text('[metrics]\npower = "sideways"\n', encoding="utf-8")
    result = shell.run_cell(
        "%%track --quiet --name t/cell\n"
        "track.goal(val_loss='max')\n"
        "track.log(val_loss=0.3, power=2.0)\n"
        "after = 1",
        store_history=True,
    )
    assert result.error_in_exec is None and shell.user_ns["after"] == 1
    record = nbtrack.get_run("last")
    assert record.status == "finished"
    assert record.goals["val_loss"] == {"direction": "max", "source": "declared"}
    assert record.goals["power"] == {"direction": "max", "source": "heuristic"}
    problems = [w for w in record.warnings if "nbtrack.toml" in w]
    assert len(problems) == 1 and "[metrics] power = 'sideways'" in problems[0]
    # A DetachedRun (no store) accepts goal() too and does nothing.
    from nbtrack.tracker import DetachedRun

    assert DetachedRun("no store").goal(loss="min") is None
