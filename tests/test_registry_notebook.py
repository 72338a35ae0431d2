"""The registry example notebook through a real kernel (nbclient), then what it shows and
what it left in the store.

``example_notebooks/02_registry.ipynb`` trains two logistic regressions on scikit-learn's
digits, registers both, shows the gates refusing, a refused self-approval, two approvals,
promotions, a rollback, the audit log and ``nbtrack models audit --verify``. It runs in a
fresh ``python3`` kernel of this interpreter, in a temporary folder, writing to a
temporary store.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from nbtrack.registry import RegistryReader
from nbtrack.store.sqlite import Store

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "example_notebooks" / "02_registry.ipynb"
MODEL = "digits-classifier"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[nbformat.NotebookNode, Path]:
    base = tmp_path_factory.mktemp("registry-notebook")
    spec_dir = base / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (nbtrack tests)",
                "language": "python",
            }
        )
    )
    work = base / "work"
    work.mkdir()
    copy = work / NOTEBOOK.name
    shutil.copy(NOTEBOOK, copy)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(base / "jupyter"))
        mp.setenv("NBTRACK_STORE", str(base / "store"))
        mp.setenv("NBTRACK_NOTEBOOK", str(copy))
        mp.delenv("NBTRACK_USER", raising=False)  # the notebook says who acts, cell by cell
        notebook = nbformat.read(copy, as_version=4)
        NotebookClient(
            notebook,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(work)}},
        ).execute()
    return notebook, base


def _text(cell: nbformat.NotebookNode) -> str:
    return "".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", [])
    )


def _cell(
    notebook: nbformat.NotebookNode, starts: str, *, exact: bool = False
) -> nbformat.NotebookNode:
    """The one code cell whose source is ``starts`` or (unless ``exact``) starts with it."""
    [found] = [
        c
        for c in notebook.cells
        if c.cell_type == "code"
        and (c.source == starts or (not exact and c.source.startswith(starts + "\n")))
    ]
    return found


def test_the_notebook_shows_the_story_in_order(executed) -> None:
    notebook, _ = executed
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    refused = _text(_cell(notebook, 'print(registry.check(MODEL, first, "production"))\ntry:'))
    assert "digits-classifier v1 -> production: FAILED (1 of 5)" in refused
    assert "REFUSED: digits-classifier v1 was not promoted to production" in refused
    assert "2 approvals: 0/2" in refused
    self_approval = _text(_cell(notebook, 'try:\n    registry.approve(MODEL, first, "production")'))
    assert "dev@example.org registered digits-classifier v1 and may not approve it" in self_approval
    approved = _text(_cell(notebook, 'for reviewer in ("ana@example.org", "ben@example.org"):'))
    assert "ben@example.org approved digits-classifier v1 for production" in approved
    assert "digits-classifier v1 -> production: PASSED" in approved
    replaced = _text(_cell(notebook, 'for reviewer in ("ana@example.org", "carl@example.org"):'))
    assert "[hook] promote: digits-classifier v2 -> production by ana@example.org" in replaced
    assert "v1 stepped down to staging" in replaced
    worse = _text(_cell(notebook, 'print(registry.check(MODEL, first, "production"))', exact=True))
    assert "val_acc better than production by >= 0  FAILED" in worse
    rolled = _text(
        _cell(
            notebook,
            'print(registry.rollback(MODEL, "production", reason="p99 latency regression").message)',
        )
    )
    assert "rolled back production: digits-classifier v1 is back (v2 stepped down)" in rolled
    assert "[hook] rollback" in rolled
    assert "production is v1: val_acc 0.95" in _text(
        _cell(notebook, 'served = nbtrack.load_model(f"{MODEL}@production")')
    )
    widget = _cell(notebook, 'nbtrack.models_widget(MODEL, stage="production")')
    assert any(
        "application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in widget.outputs
    )
    audit = _text(_cell(notebook, "print(render.audit_text(registry.audit(MODEL)[-12:]))"))
    assert "rollback digits-classifier v1 -> production  — p99 latency regression" in audit
    verified = _text(_cell(notebook, "import subprocess\nimport sys"))
    assert "audit log verified: 10 entries" in verified and "exit status 0" in verified


def test_the_store_holds_the_versions_decisions_and_an_intact_audit_chain(executed) -> None:
    _, base = executed
    assert (base / "work" / ".nbtrack" / "gates.toml").is_file()  # the demo's policy file
    store = Store(base / "store", create=False)
    try:
        reg = RegistryReader(store)
        v1, v2 = reg.versions(MODEL)
        assert (str(v1.stage), str(v2.stage)) == ("production", "staging")
        assert (v1.lineage.params, v2.lineage.params) == ({"C": 0.01}, {"C": 0.1})
        assert v1.metrics["val_acc"] < v2.metrics["val_acc"]
        assert {"X_train", "X_val"} <= set(v1.lineage.input_hashes())
        assert v1.lineage.input_hashes()["X_val"] == v2.lineage.input_hashes()["X_val"]
        assert v1.created_by == v2.created_by == "dev@example.org"
        assert v1.lineage.notebook == str(base / "work" / NOTEBOOK.name)
        approvers = {(d.version, d.user) for d in reg.decisions(MODEL) if d.approved}
        assert approvers == {
            (1, "ana@example.org"),
            (1, "ben@example.org"),
            (2, "ana@example.org"),
            (2, "carl@example.org"),
        }
        events = [e.event for e in reg.audit(MODEL)]
        assert events == [
            "register",
            "register",
            "gate",  # the refused promotion
            "approve",
            "approve",
            "promote",
            "approve",
            "approve",
            "promote",
            "rollback",
        ]
        check = reg.verify_audit()
        assert check.ok and check.entries == 10
        assert [p.version for p in reg.history(MODEL, "production")] == [1, 2, 1]
    finally:
        store.close()
