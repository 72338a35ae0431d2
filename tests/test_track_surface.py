"""Every `track` a cell can meet offers the same methods.

A tracked cell's code calls ``track.<method>``; the same code also runs with the stand-ins:
``DetachedRun`` (the store could not be used) and the exported untracked script's
``_nbtrack_untracked``. A method added to ActiveRun but not to a stand-in breaks that cell
with an AttributeError, so the three lists are checked against each other.
"""

from __future__ import annotations

import inspect

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
