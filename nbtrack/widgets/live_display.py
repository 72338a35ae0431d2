"""The live view of a ``%%track`` cell: an IPython display handle fed by :mod:`nbtrack.live`.

In a rich front end (a Jupyter kernel) the first flush that carries metrics creates one
display in the cell's output; later flushes update it in place, and the cell's end replaces
it with the run summary. A plain terminal shell cannot update output in place, so there
nothing is shown live and the summary prints as before.
"""

from __future__ import annotations

from typing import Any

from nbtrack.live import LiveFeed, LiveView


def can_update_in_place(shell: Any) -> bool:
    """Whether ``shell``'s front end can update a display in place.

    The terminal's display publisher prints each display; kernels and output captures
    (``capture_output``, ipywidgets' ``Output``) replace it with one that keeps displays.
    """
    from IPython.core.displaypub import DisplayPublisher

    publisher = getattr(shell, "display_pub", None)
    return publisher is not None and type(publisher) is not DisplayPublisher


class LiveDisplay:
    """One live display for one run; create with :func:`start_live_display`."""

    def __init__(self, run: Any, shell: Any) -> None:
        self._shell = shell
        self._handle: Any = None
        publisher = shell.display_pub
        # The flush thread has no parent message of its own: send its displays as output
        # of the cell that started the run (what the kernel would use for this thread too).
        self._parent = getattr(publisher, "parent_header", None)
        self._set_thread_parent = getattr(publisher, "set_thread_parent", None)
        self.feed = LiveFeed(run, self._publish)

    def _publish(self, view: LiveView, first: bool) -> None:
        from IPython.display import display

        token = None
        if self._set_thread_parent is not None and self._parent:
            token = self._set_thread_parent(self._parent)
        try:
            if first or self._handle is None:
                self._handle = display(view, display_id=True)  # type: ignore[no-untyped-call]
            else:
                self._handle.update(view)
        finally:
            if token is not None:
                self._shell.display_pub.reset_thread_parent(token)

    def finish(self, summary: Any | None) -> bool:
        """Stop updating; show ``summary`` in place of the live view.

        Returns False when no live view was ever shown (the caller displays the summary
        itself). With ``summary=None`` the last live view stays as it is.
        """
        started = self.feed.close()
        if not started or self._handle is None:
            return False
        if summary is not None:
            self._handle.update(summary)
        return True


def start_live_display(run: Any, shell: Any) -> LiveDisplay | None:
    """Attach a live display to ``run`` if ``shell`` can update output in place."""
    if run is None or not can_update_in_place(shell):
        return None
    return LiveDisplay(run, shell)
