"""Every `track` a cell can meet offers the same methods.

A tracked cell's code calls ``track.<method>``; the same code also runs with the stand-ins:
``DetachedRun`` (the store could not be used) and the exported untracked script's
``_nbtrack_untracked``. A method added to ActiveRun but not to a stand-in breaks that cell
with an AttributeError, so the three lists are checked against each other.
"""

from __future__ import annotations

import inspect
from typing import Any

from nbtrack.export.helpers import HELPERS
from nbtrack.tracker import ActiveRun, DetachedRun

# Methods of ActiveRun that are lifecycle plumbing, not something a cell calls on `track`.
LIFECYCLE = {"start", "finish", "flush", "add_listener", "on_log"}


def _cell_methods(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and callable(member) and name not in LIFECYCLE
    }


def test_detached_run_offers_every_track_method() -> None:
    missing = _cell_methods(ActiveRun) - _cell_methods(DetachedRun)
    assert not missing, f"DetachedRun lacks {sorted(missing)}"


def test_exported_untracked_stand_in_offers_every_track_method() -> None:
    namespace: dict[str, object] = {}
    exec(HELPERS["untracked"], namespace)
    stand_in = namespace["_nbtrack_untracked"]
    assert isinstance(stand_in, type)
    missing = _cell_methods(ActiveRun) - _cell_methods(stand_in)
    assert not missing, f"the exported script's _nbtrack_untracked lacks {sorted(missing)}"
    track = stand_in()
    track.goal(val_loss="min")
    track.log(loss=0.5, step=1)
    assert track.metrics == {"loss": 0.5}


def test_the_untracked_stand_in_stops_where_a_run_with_stop_at_stops(store_dir: object) -> None:
    """The exported untracked script's stop and ``nbtrack.run(stop_at=...)``'s agree on
    which ``track.log`` call ends the cell: steps counted or given, other metrics, values
    that are not numbers; and both end it with a BaseException a cell's ``except
    Exception`` does not catch."""
    import warnings

    import nbtrack
    from nbtrack.tracker import RunStopped

    namespace: dict[str, Any] = {}
    exec(HELPERS["untracked"], namespace)
    stand_in, stopped = namespace["_nbtrack_untracked"], namespace["_nbtrack_stopped"]
    assert issubclass(stopped, BaseException) and not issubclass(stopped, Exception)
    cases = [
        ({"metric": "acc", "step": 2}, [{"acc": 0.1}, {"loss": 1.0}, {"acc": 0.2}, {"acc": 0.3}]),
        ({"metric": "acc", "step": 1}, [{"acc": "n/a"}, {"acc": 0.1}, {"acc": 0.2}]),
        ({"metric": "acc", "step": 5}, [{"acc": 0.1, "step": 3}, {"acc": 0.2, "step": 6}]),
        ({"metric": "acc", "step": 9}, [{"acc": 0.1}, {"acc": 0.2}]),
    ]
    # How many log calls each lets through before the one that stops (all: no stop).
    expected = [3, 2, 1, 2]
    for (stop_at, calls), want in zip(cases, expected, strict=True):
        untracked: list[int] = []
        try:
            track = stand_in(stop_at=stop_at)
            for call in calls:
                track.log(**call)
                untracked.append(1)
        except stopped:
            pass
        tracked: list[int] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "n/a" is not a number; step 9 is never reached
            with nbtrack.run(stop_at=stop_at) as run:
                for call in calls:
                    run.log(**call)
                    tracked.append(1)
        assert len(untracked) == len(tracked) == want, stop_at
        assert nbtrack.get_run(run.number).status == (
            "finished" if want == len(calls) else "pruned"
        )
    with nbtrack.run(stop_at={"metric": "acc", "step": 0}) as run:
        try:
            run.log(acc=1.0)
        except RunStopped as stop:
            assert stop.stopped_at == {"metric": "acc", "step": 0}
            raise
