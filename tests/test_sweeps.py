"""Sweeps (``%%track --sweep``) through a real IPython shell, and their pieces alone.

Every sweep here is a real Optuna study on a journal file beside a temporary store; every
trial a real nbtrack run. Trials are trivial arithmetic so the whole file stays fast.
"""

from __future__ import annotations

import _thread
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import nbtrack
from nbtrack.errors import SweepError
from nbtrack.sweeps.space import (
    Dimension,
    cell_suggestions,
    narrow,
    parse_dimension,
    stray_suggestions,
    trial_code,
)
from nbtrack.sweeps.study import trial_seed


def _run(shell, source: str):
    return shell.run_cell(source, store_history=True)


def _study_states(record) -> list[str]:
    return [t.state.name for t in record.study.get_trials(deepcopy=False)]


# --- the search space -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("lr", "expected NAME=KIND(ARGS)"),
        ("lr=loguniform(0, 1)", "loguniform needs 0 < low"),
        ("lr=uniform(1, 0)", "needs finite low < high"),
        ("lr=gauss(0, 1)", "unknown kind 'gauss'"),
        ("n=int(1.5, 4)", "takes whole numbers"),
        ("h=choice()", "at least one value"),
        ("h=choice(1, 1)", "lists a value twice"),
        ("x=uniform(a, 1)", "arguments must be literals"),
        ("1x=uniform(0, 1)", "NAME a Python name"),
    ],
)
def test_a_malformed_space_is_one_line(text: str, says: str) -> None:
    with pytest.raises(SweepError) as info:
        parse_dimension(text)
    assert says in str(info.value)
    assert "\n" not in str(info.value)


def test_dimensions_map_to_optuna_distributions_and_back() -> None:
    import optuna.distributions as d

    dims = [
        parse_dimension("lr=loguniform(1e-5, 1e-2)"),
        parse_dimension("drop=uniform(0, 0.5, 0.1)"),
        parse_dimension("layers=int(2, 8, 2)"),
        parse_dimension("hidden=choice(64, 128, 'wide')"),
    ]
    assert dims[0].distribution() == d.FloatDistribution(1e-5, 1e-2, log=True)
    assert dims[1].distribution() == d.FloatDistribution(0, 0.5, step=0.1)
    assert dims[2].distribution() == d.IntDistribution(2, 8, step=2)
    assert dims[3].distribution() == d.CategoricalDistribution([64, 128, "wide"])
    assert [x.text() for x in dims] == [
        "loguniform(1e-05, 0.01)",
        "uniform(0.0, 0.5, 0.1)",
        "int(2, 8, 2)",
        "choice(64, 128, 'wide')",
    ]
    assert [Dimension.from_json(x.to_json()) for x in dims] == dims
    assert dims[2].grid() == [2, 4, 6, 8] and dims[1].grid() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]


def test_suggest_is_a_plain_value_outside_a_sweep() -> None:
    assert nbtrack.suggest.loguniform(1e-4, 1e-2) == pytest.approx(1e-3)
    assert nbtrack.suggest.uniform(0, 0.5) == 0.25
    assert nbtrack.suggest.int(2, 8) == 5
    assert nbtrack.suggest.choice("adam", "sgd") == "adam"
    assert nbtrack.suggest.loguniform(1e-4, 1e-2, default=3e-4) == 3e-4
    with pytest.raises(SweepError, match="needs 0 < low"):
        nbtrack.suggest.loguniform(0, 1)


def test_trial_code_writes_sampled_values_where_the_cell_bound_them() -> None:
    cell = (
        "import nbtrack\n"
        "lr = nbtrack.suggest.loguniform(1e-5, 1e-2)  # searched\n"
        "hidden = 64\n"
        "for i in range(2):\n"
        "    extra = nbtrack.suggest.choice(1, 2)\n"
    )
    assert [d.name for d in cell_suggestions(cell)] == ["lr"]
    assert stray_suggestions(cell) == [5]  # inside a loop: not searched, a plain value
    code = trial_code(cell, {"lr": 0.002, "hidden": 128})
    assert "lr = 0.002  # searched\nhidden = 128\n" in code
    assert "nbtrack.suggest.choice(1, 2)" in code


def test_narrowing_keeps_the_range_the_best_trials_span() -> None:
    dims = [
        parse_dimension("lr=loguniform(1e-5, 1e-1)"),
        parse_dimension("layers=int(1, 10)"),
        parse_dimension("act=choice('relu', 'tanh', 'gelu')"),
    ]
    best = [{"lr": 1e-3, "layers": 4, "act": "relu"}, {"lr": 4e-3, "layers": 6, "act": "gelu"}]
    lr, layers, act = narrow(dims, best)
    assert 1e-5 < lr.low < 1e-3 and 4e-3 < lr.high < 1e-1 and lr.kind == "loguniform"
    assert (layers.low, layers.high) == (3, 7)
    assert act.choices == ("relu", "gelu")


# --- sweeps through the shell -----------------------------------------------------------

CELL = """\
x = 0.5
opt = nbtrack.suggest.choice("adam", "sgd")
track.log(score=-(x - 1) ** 2 + (opt == "sgd"))
"""


def test_a_sweep_runs_n_trials_each_an_ordinary_run(shell) -> None:
    shell.user_ns["nbtrack"] = nbtrack
    result = _run(
        shell,
        "%%track --name t/sw --sweep 5 --objective score --space x=uniform(-3,3) --seed 11 "
        "--no-env --quiet --tag mine\n" + CELL,
    )
    assert result.success, result.error_in_exec
    sweep = nbtrack.get_sweep("last")
    assert (sweep.status, sweep.direction, sweep.sampler, sweep.seed) == (
        "finished",
        "max",
        "tpe",
        11,
    )
    assert sweep.space == {"x": "uniform(-3.0, 3.0)", "opt": "choice('adam', 'sgd')"}
    trials = sweep.trials
    assert trials["trial"].tolist() == [0, 1, 2, 3, 4]
    assert set(trials["state"]) == {"complete"}
    runs = sweep.runs()
    assert len(runs) == 5 and set(runs["name"]) == {"t/sw"}
    for row in trials.itertuples():
        run = nbtrack.get_run(row.run)
        # The trial's params are the cell's bindings with the sampled values written in.
        assert run.params == {"x": row._7, "opt": row._8}
        assert f"x = {row._7!r}" in run.code and f"opt = {row._8!r}" in run.code
        assert run.seed == trial_seed(11, row.trial) == row.seed
        assert run.rng_state is not None
        assert run.metrics["score"] == pytest.approx(row.value)
        assert "mine" in run.tags and f"sweep-{sweep.number}" in run.tags
        assert run.extra["sweep"] == {"id": sweep.id, "number": sweep.number, "trial": row.trial}
        assert run.goals["score"]["direction"] == "max"
    best = sweep.best_trial
    assert best.metrics["score"] == max(trials["value"]) == sweep.best_value
    assert sweep.best_params == {"x": best.params["x"], "opt": best.params["opt"]}
    assert _study_states(sweep) == ["COMPLETE"] * 5
    assert sweep.study.best_value == sweep.best_value
    listed = nbtrack.sweeps()
    assert listed["number"].tolist() == [sweep.number]
    assert listed.loc[0, "complete"] == 5 and listed.loc[0, "best_run"] == best.number
    # The namespace: the cell's variables from the last trial, `track` not leaked.
    assert "track" not in shell.user_ns and "x" in shell.user_ns
    # The compare widget, filtered to the sweep's runs, on its objective.
    widget = sweep.compare()
    assert sorted(widget.view["number"]) == sorted(trials["run"]) and widget.metric == "score"


def test_direction_defaults_to_the_objectives_and_nbtrack_toml(shell, tmp_path) -> None:
    cell = "x = 1.0\ntrack.log(val_loss=x * x)\n"
    line = "%%track --name t/dir --sweep 2 --space x=uniform(0,1) --no-env --quiet"
    assert _run(shell, f"{line} --objective val_loss\n{cell}").success
    assert nbtrack.get_sweep("last").study.direction.name == "MINIMIZE"
    (tmp_path / "nbtrack.toml").write_text('[metrics]\nval_loss = "max"\n')
    assert _run(shell, f"{line} --objective val_loss\n{cell}").success
    assert nbtrack.get_sweep("last").study.direction.name == "MAXIMIZE"
    assert _run(shell, f"{line} --objective val_loss --direction min\n{cell}").success
    assert nbtrack.get_sweep("last").direction == "min"


PRUNED_CELL = """\
lr = 0.5
reached = 0
for epoch in range(8):
    try:
        track.log(loss=lr + 1.0 / (epoch + 1), step=epoch)
    except Exception:
        pass  # a training loop's own handler must not swallow the pruning
    reached = epoch
"""


def test_pruning_stops_a_trial_early_and_records_it_pruned(shell) -> None:
    result = _run(
        shell,
        "%%track --name t/prune --sweep 8 --objective loss --space lr=uniform(0,1) "
        "--pruner median --seed 3 --no-env --quiet\n" + PRUNED_CELL,
    )
    assert result.success, result.error_in_exec
    sweep = nbtrack.get_sweep("last")
    trials = sweep.trials
    pruned = trials[trials["state"] == "pruned"]
    assert len(pruned) >= 1
    for row in pruned.itertuples():
        run = nbtrack.get_run(row.run)
        assert run.status == "pruned"
        steps = [p.step for p in run.metric_history["loss"]]
        assert steps[-1] < 7  # stopped before the last epoch
        assert run.error["type"] == "TrialPruned"
        # Where it stopped, for its exported script to stop there too (stop_at).
        assert run.extra["stopped_at"] == {"metric": "loss", "step": steps[-1]}
    for row in trials[trials["state"] == "complete"].itertuples():
        assert len(nbtrack.get_run(row.run).metric_history["loss"]) == 8
    assert _study_states(sweep).count("PRUNED") == len(pruned)
    assert "pruned" in set(nbtrack.runs(tag=f"sweep-{sweep.number}")["status"])


def test_a_cell_failing_every_trial_stops_after_max_failures_showing_the_first_error(
    shell, capsys
) -> None:
    result = _run(
        shell,
        "%%track --name t/fail --sweep 20 --objective acc --space x=int(1,9) --no-env --quiet\n"
        "x = 1\nraise ValueError(f'bad x {x}')\n",
    )
    assert not result.success
    message = str(result.error_in_exec)
    assert "stopped: 3 trials in a row failed" in message and "ValueError: bad x" in message
    assert "\n" not in message
    err = capsys.readouterr().err
    assert err.count("Traceback (most recent call last)") == 1  # the first error, once
    sweep = nbtrack.get_sweep("last")
    assert sweep.status == "failed"
    assert list(sweep.trials["state"]) == ["failed"] * 3  # the trials are kept
    assert [r.status for r in map(nbtrack.get_run, sweep.trials["run"])] == ["failed"] * 3
    assert _study_states(sweep) == ["FAIL"] * 3


def test_an_objective_the_cell_never_logs_is_one_line(shell) -> None:
    result = _run(
        shell,
        "%%track --name t/miss --sweep 9 --objective acc --space x=int(1,9) --no-env --quiet\n"
        "x = 1\ntrack.log(loss=x)\n",
    )
    message = str(result.error_in_exec)
    assert "never logged 'acc'" in message and "it logged: loss" in message
    assert len(nbtrack.get_sweep("last").trials) == 1


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("--space x=uniform(0,1)", "--space needs --sweep"),
        ("--sweep 3 --space x=uniform(0,1)", "--sweep needs --objective"),
        ("--sweep 3 --objective a", "a sweep needs a search space"),
        ("--sweep 3 --objective a --space y=uniform(0,1)", "no top-level assignment"),
        ("--sweep 3 --objective a --space x=uniform(0,1) --sampler grid", "is continuous"),
        ("--sweep 3 --objective a --space x=uniform(0,1) --sampler nope", "use one of"),
        ("--sweep 3 --objective a --space x=uniform(0,1) --narrow-from 99", "no sweep matches"),
    ],
)
def test_bad_sweep_requests_are_one_line_and_run_nothing(shell, line: str, says: str) -> None:
    result = _run(shell, f"%%track --name t/bad {line}\nx = 1\ntrack.log(a=x)\nran = True\n")
    assert not result.success
    message = str(result.error_in_exec or result.error_before_exec)
    assert says in message and "\n" not in message
    assert "ran" not in shell.user_ns
    assert len(nbtrack.runs()) == 0


def test_resume_continues_the_same_study_and_refuses_a_changed_space(shell) -> None:
    line = (
        "%%track --name t/res --objective acc --space x=uniform(0,100) --seed 5 --no-env "
        "--quiet --sampler random"
    )
    body = "\nx = 1\ntrack.log(acc=x)\n"
    assert _run(shell, f"{line} --sweep 3{body}").success
    first = nbtrack.get_sweep("last")
    first_xs = first.trials["params.x"].tolist()  # a record reads its trials when asked
    assert _run(shell, f"{line} --sweep 5 --resume{body}").success
    again = nbtrack.get_sweep("last")
    assert again.id == first.id and again.study.study_name == first.study.study_name
    assert again.trials["trial"].tolist() == [0, 1, 2, 3, 4]
    xs = again.trials["params.x"].tolist()
    assert xs[:3] == first_xs
    assert not set(xs[3:]) & set(xs[:3])  # the resumed sampler does not replay its draws
    assert len(nbtrack.sweeps()) == 1
    changed = _run(
        shell, f"{line.replace('uniform(0,100)', 'uniform(0,50)')} --sweep 6 --resume{body}"
    )
    assert "the search space changed since sweep #1 began" in str(changed.error_in_exec)
    unknown = _run(shell, f"{line.replace('t/res', 't/other')} --sweep 6 --resume{body}")
    assert "no sweep named 't/other'" in str(unknown.error_in_exec)
    assert len(nbtrack.get_sweep(first.id).trials) == 5  # nothing lost


def test_the_same_sweep_seed_gives_the_same_trials(shell) -> None:
    def params(seed: int) -> list[tuple[float, str]]:
        line = (
            f"%%track --name t/seed{seed} --sweep 6 --objective score --space x=uniform(-3,3) "
            f"--seed {seed} --no-env --quiet\n"
        )
        shell.user_ns["nbtrack"] = nbtrack
        assert _run(shell, line + CELL).success
        trials = nbtrack.get_sweep("last").trials
        return list(zip(trials["params.x"], trials["params.opt"]))

    first, second, other = params(7), params(7), params(8)
    assert first == second
    assert first != other


def test_ctrl_c_leaves_no_trial_running_and_resume_finishes(shell) -> None:
    cell = "x = 1\nimport time\nfor _ in range(200):\n    time.sleep(0.01)\ntrack.log(acc=x)\n"
    line = "%%track --name t/int --objective acc --space x=int(1,9) --no-env --quiet"
    timer = threading.Timer(0.5, _thread.interrupt_main)  # Ctrl-C, mid-trial
    timer.start()
    try:
        result = _run(shell, f"{line} --sweep 3\n{cell}")
    finally:
        timer.cancel()
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    sweep = nbtrack.get_sweep("last")
    assert sweep.status == "interrupted"
    assert "RUNNING" not in _study_states(sweep)
    assert "running" not in set(nbtrack.runs()["status"])
    assert list(sweep.trials["state"]) == ["interrupted"]
    assert nbtrack.get_run(sweep.trials["run"][0]).status == "interrupted"
    # The interrupted trial does not count: resuming runs all 3.
    fast = cell.replace("range(200)", "range(1)")
    assert _run(shell, f"{line} --sweep 3 --resume\n{fast}").success
    states = list(nbtrack.get_sweep("last").trials["state"])
    assert states == ["interrupted", "complete", "complete", "complete"]


def test_the_grid_sampler_visits_every_point_once(shell) -> None:
    result = _run(
        shell,
        "%%track --name t/grid --sweep 50 --objective acc --space x=int(1,3) "
        "--space \"y=choice('a','b')\" --sampler grid --no-env --quiet\n"
        "x = 1\ny = 'a'\ntrack.log(acc=x + (y == 'b'))\n",
    )
    assert result.success, result.error_in_exec
    sweep = nbtrack.get_sweep("last")
    points = sorted(zip(sweep.trials["params.x"], sweep.trials["params.y"]))
    assert points == [(x, y) for x in (1, 2, 3) for y in ("a", "b")]
    assert sweep.n_trials == 6 and sweep.status == "finished"


def test_narrow_from_searches_around_the_best_trials_with_tpe(shell) -> None:
    body = "\nx = 1\ntrack.log(acc=-abs(x - 70))\n"
    assert _run(
        shell,
        "%%track --name t/coarse --sweep 8 --objective acc --space x=int(1,100) "
        "--sampler random --seed 2 --no-env --quiet" + body,
    ).success
    coarse = nbtrack.get_sweep("last")
    assert _run(
        shell,
        f"%%track --name t/fine --sweep 3 --objective acc --narrow-from {coarse.number} "
        "--no-env --quiet" + body,
    ).success
    fine = nbtrack.get_sweep("last")
    low, high = (int(v) for v in fine.space["x"][4:-1].split(", "))
    assert 1 <= low < high <= 100 and high - low < 99
    best = sorted(coarse.trials["params.x"], key=lambda v: abs(v - 70))[:2]
    assert low <= min(best) and max(best) <= high
    assert fine.sampler == "tpe" and fine.extra["narrowed_from"]["number"] == coarse.number
    assert all(low <= v <= high for v in fine.trials["params.x"])


def test_the_best_trial_exports_to_a_script_with_its_values_as_defaults(
    shell, tmp_path, store_dir
) -> None:
    _run(shell, "offset = 10")
    assert _run(
        shell,
        "%%track --name t/exp --sweep 3 --objective score --space x=int(1,9) --seed 4 "
        "--no-env --quiet\nx = 1\ntrack.log(score=offset + x)\n",
    ).success
    best = nbtrack.get_sweep("last").best_trial
    script = tmp_path / "best.py"
    code = subprocess.run(
        [sys.executable, "-m", "nbtrack", "export", "--run", str(best.number), "-o", str(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "NBTRACK_STORE": str(store_dir)},
    )
    assert code.returncode == 0, code.stderr
    text = script.read_text()
    assert f"default={best.params['x']}" in text and f"default={best.seed}" in text
    assert "offset = 10" in text  # the cell it depends on
    ran = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "NBTRACK_STORE": str(store_dir)},
    )
    assert ran.returncode == 0, ran.stderr
    rerun = nbtrack.get_run("last")
    assert rerun.metrics["score"] == best.metrics["score"] and rerun.params == best.params


def test_sweep_cli_lists_and_shows(shell, capsys) -> None:
    from nbtrack.cli import main

    assert _run(
        shell,
        "%%track --name t/cli --sweep 2 --objective acc --space x=int(1,9) --no-env --quiet\n"
        "x = 1\ntrack.log(acc=x)\n",
    ).success
    capsys.readouterr()
    assert main(["sweep", "ls"]) == 0
    assert "t/cli" in capsys.readouterr().out
    assert main(["sweep", "show", "last", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == "t/cli" and len(shown["trials"]) == 2
    assert main(["sweep", "show", "42"]) == 1
    assert "no sweep matches '42'" in capsys.readouterr().err


def test_a_version_2_store_gains_the_sweep_tables(tmp_path: Path) -> None:
    from nbtrack.store.schema import MIGRATIONS, SCHEMA_VERSION
    from nbtrack.store.sqlite import Store

    folder = tmp_path / "v2"
    folder.mkdir()
    conn = sqlite3.connect(folder / "nbtrack.db")
    for statement in MIGRATIONS[1] + MIGRATIONS[2]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    store = Store(folder)
    assert store.schema_version == SCHEMA_VERSION >= 3
    assert store.list_sweeps() == []
    assert store.sweep_trials("nothing") == []


def test_an_exported_sweep_script_reruns_the_same_trials(shell, tmp_path, store_dir) -> None:
    from nbtrack.cli import main

    _run(shell, "offset = 10\nimport nbtrack")
    assert _run(
        shell,
        "%%track --name t/again --sweep 4 --objective score --space x=uniform(0,1) --seed 5 "
        "--no-env --quiet\nx = 0.5\nk = nbtrack.suggest.int(1, 5)\n"
        "track.log(score=offset + x * k)\n",
    ).success
    first = nbtrack.get_sweep("last")
    script = tmp_path / "sweep.py"
    assert main(["sweep", "export", "last", "-o", str(script)]) == 0
    assert main(["sweep", "export", "last", "-o", str(script)]) == 1  # exists: --force
    text = script.read_text()
    assert "offset = 10" in text and "k = nbtrack.suggest.int(1, 5)" in text
    ran = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "NBTRACK_STORE": str(store_dir)},
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    assert "4/4 trials: 4 complete" in ran.stdout
    again = nbtrack.get_sweep("last")
    assert again.number == first.number + 1 and again.seed == 5
    columns = ["params.x", "params.k", "value"]
    assert again.trials[columns].values.tolist() == first.trials[columns].values.tolist()


def test_the_live_display_is_one_output_updated_after_every_trial(shell) -> None:
    from IPython.utils.capture import capture_output

    with capture_output() as captured:  # a front end that updates displays in place
        assert _run(
            shell,
            "%%track --name t/live --sweep 3 --objective acc --space x=uniform(0,1) --no-env\n"
            "x = 0.5\ntrack.log(acc=x)\n",
        ).success
    outputs = captured.outputs
    ids = {o.transient["display_id"] for o in outputs}
    assert len(ids) == 1  # one display...
    assert [o.update for o in outputs] == [False, True, True, True, True]  # ...updated
    texts = [o.data["text/plain"] for o in outputs]
    assert [t.split("\n")[1].split(":")[0].strip() for t in texts] == [
        "0/3 trials",
        "1/3 trials",
        "2/3 trials",
        "3/3 trials",
        "3/3 trials",
    ]
    assert "(finished)" in texts[-1] and "importance: x" in texts[-1]
    html = nbtrack.get_sweep("last")._repr_html_()  # what a notebook shows (no importances)
    assert "optimisation history" in html and "parallel coordinates" in html
