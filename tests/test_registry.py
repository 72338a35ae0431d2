"""The model registry's core through a real store: versions and lineage, stages, aliases,
refs and loading, gates, approvals, policy, rollback, history, hooks, plan/commit."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from registry_helpers import make_run, snapshot, write_policy

import nbtrack
from nbtrack.errors import (
    ArtifactError,
    PromotionRefusedError,
    RegistryConfigError,
    RegistryConflictError,
    RegistryError,
    UnknownModelError,
    UsageError,
)
from nbtrack.registry import Registry, RegistryHookWarning, Stage, on_event
from nbtrack.store.sqlite import Store


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def reg_for(store: Store, project: Path, user: str = "ana") -> Registry:
    return Registry(store, user=user, cwd=project)


# -- versions and lineage -------------------------------------------------------------------
def test_register_copies_lineage_and_starts_in_development(store: Store, project: Path) -> None:
    number = make_run(
        store,
        {"val_acc": 0.9, "val_loss": 0.3},
        params={"lr": 0.01, "layers": 3},
        inputs={"X_test": np.arange(12.0)},
    )
    store.update_run(store.resolve(number), {"git": {"commit": "a" * 40, "dirty": False}})
    version = reg_for(store, project).register(number, "digits-classifier", "model")
    run = nbtrack.get_run(number, store=store)
    assert (version.model, version.version, version.stage) == (
        "digits-classifier",
        1,
        "development",
    )
    assert version.lineage.run_id == run.id and version.lineage.run_number == number
    assert version.lineage.params == {"lr": 0.01, "layers": 3}
    assert version.lineage.seed == 7
    assert version.lineage.metrics == {"val_acc": 0.9, "val_loss": 0.3}
    assert version.lineage.code_hash and version.lineage.rng_hash
    assert version.lineage.git_commit == "a" * 40
    assert version.lineage.input_hashes() == {"X_test": run.inputs[0].hash}
    assert version.hash == run.artifacts[0].hash
    assert version.created_by == "ana"
    assert version.ref == "models:/digits-classifier/1"


def test_versions_are_immutable_and_reregistering_returns_the_same(
    store: Store, project: Path
) -> None:
    number = make_run(store, {"val_acc": 0.9})
    reg = reg_for(store, project)
    first = reg.register(number, "digits")
    again = reg.register(number, "digits")
    assert again.version == first.version == 1
    assert len(reg.audit()) == 1  # the second call wrote nothing
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        conn = sqlite3.connect(store.db_path)
        conn.execute("UPDATE registry_versions SET hash='x'")


def test_register_needs_a_clear_artifact(store: Store, project: Path) -> None:
    reg = reg_for(store, project)
    none = make_run(store, {"val_acc": 0.9}, artifact=None)
    with pytest.raises(UsageError, match="has no artifacts"):
        reg.register(none, "digits")
    with nbtrack.run(name="two", store=store, capture_env=False, capture_data=False) as track:
        track.artifact(b"a", "model")
        track.artifact(b"b", "scaler")
    with pytest.raises(UsageError, match=r"2 artifacts \(model, scaler\)"):
        reg.register(track.number, "digits")
    with pytest.raises(UsageError, match="no artifact 'weights'"):
        reg.register(track.number, "digits", "weights")
    assert reg.register(track.number, "digits", "scaler").artifact == "scaler"
    with pytest.raises(UsageError, match="not a model name"):
        reg.register(track.number, "bad/name", "model")


def test_refs_and_load_model_check_the_content(store: Store, project: Path) -> None:
    reg = reg_for(store, project)
    for i, acc in enumerate((0.90, 0.95)):
        reg.register(make_run(store, {"val_acc": acc}, artifact=f"weights-{i}"), "digits")
    reg.promote("digits", 1, "production")
    reg.set_alias("digits", "champion", 2)
    assert nbtrack.load_model("digits@production", store=store) == "weights-0"
    assert nbtrack.load_model("models:/digits/2", store=store) == "weights-1"
    assert nbtrack.load_model("models:/digits/production", store=store) == "weights-0"
    assert reg.resolve("digits@champion").version == 2
    assert reg.resolve("digits@latest").version == 2
    assert reg.resolve("digits/1").version == 1
    for bad, kind in [
        ("digits", UsageError),
        ("digits@canary", UnknownModelError),
        ("digits@nope", UnknownModelError),
        ("digits/9", UnknownModelError),
        ("nosuch@production", UnknownModelError),
    ]:
        with pytest.raises(kind):
            reg.resolve(bad)
    # Damaged content is never handed out as the model.
    path = store.artifact_file(reg.version("digits", 1).hash)
    path.write_bytes(b"tampered!")
    with pytest.raises(ArtifactError, match="damaged"):
        nbtrack.load_model("digits@production", store=store)


def test_gc_keeps_a_registered_artifact_after_its_run_is_deleted(
    store: Store, project: Path
) -> None:
    reg = reg_for(store, project)
    number = make_run(store, {"val_acc": 0.9}, artifact=b"keep me")
    reg.register(number, "digits")
    store.delete_runs([store.resolve(number)])
    store.gc(grace=0)
    assert reg.load("digits/1") == b"keep me"
    assert reg.run_facts(reg.version("digits", 1)).status is None


# -- stages ---------------------------------------------------------------------------------
def test_one_production_version_and_step_down(store: Store, project: Path) -> None:
    reg = reg_for(store, project)
    for acc in (0.90, 0.93, 0.95):
        reg.register(make_run(store, {"val_acc": acc}), "digits")
    reg.promote("digits", 1, "production")
    outcome = reg.promote("digits", 2, "production", reason="better")
    assert "v1 stepped down to staging" in outcome.message
    stages = {v.version: v.stage for v in reg.versions("digits")}
    assert stages == {1: Stage.STAGING, 2: Stage.PRODUCTION, 3: Stage.DEVELOPMENT}
    # The database itself refuses a second production version.
    conn = sqlite3.connect(store.db_path)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO registry_stages (model_id, version, stage, since) "
            "VALUES (1, 3, 'production', 0)"
        )
    summary = reg.models()[0]
    assert summary.production == 2 and summary.stages["staging"] == [1]


def test_demote_archive_and_archived_versions_stay_put(store: Store, project: Path) -> None:
    reg = reg_for(store, project)
    reg.register(make_run(store, {"val_acc": 0.9}), "digits")
    reg.promote("digits", 1, "canary")
    assert "demoted to staging" in reg.promote("digits", 1, "staging").message
    reg.promote("digits", 1, "archived")
    before = snapshot(store.db_path)
    for stage in ("production", "development"):
        with pytest.raises(RegistryError, match="archived version cannot move"):
            reg.promote("digits", 1, stage)
    with pytest.raises(RegistryError, match="archived"):
        reg.set_alias("digits", "champion", 1)
    with pytest.raises(RegistryError, match="already in archived"):
        reg.promote("digits", 1, "archived")
    assert snapshot(store.db_path) == before


def test_aliases(store: Store, project: Path) -> None:
    reg = reg_for(store, project)
    for acc in (0.9, 0.95):
        reg.register(make_run(store, {"val_acc": acc}), "digits")
    assert reg.set_alias("digits", "champion", 1).message == "digits@champion -> v1"
    assert reg.set_alias("digits", "champion", 2).message == "digits@champion -> v2 (was v1)"
    assert reg.version("digits", 2).aliases == ("champion",)
    for bad in ("production", "latest", "12", "a b"):
        with pytest.raises(UsageError):
            reg.set_alias("digits", bad, 1)
    reg.remove_alias("digits", "champion")
    with pytest.raises(UnknownModelError):
        reg.resolve("digits@champion")


def test_rollback_in_one_step(store: Store, project: Path) -> None:
    reg = reg_for(store, project)
    for acc in (0.90, 0.93, 0.95):
        reg.register(make_run(store, {"val_acc": acc}), "digits")
    reg.promote("digits", 1, "production")
    with pytest.raises(RegistryError, match="only version production has had"):
        reg.rollback("digits")
    reg.promote("digits", 2, "production")
    reg.promote("digits", 3, "production")
    outcome = reg.rollback("digits", reason="latency regression")
    assert outcome.message.startswith("rolled back production: digits v2 is back")
    assert reg.resolve("digits@production").version == 2
    assert reg.version("digits", 3).stage == Stage.STAGING
    assert outcome.entry is not None and outcome.entry.event == "rollback"
    assert outcome.entry.reason == "latency regression"
    # Rolling back again goes to v3 (the one before the current), not further into history.
    reg.rollback("digits")
    assert reg.resolve("digits@production").version == 3
    reg.promote("digits", 2, "archived")
    with pytest.raises(RegistryError, match="v2, in production before v3, is archived"):
        reg.rollback("digits")


def test_history_answers_what_was_in_production_when(store: Store, project: Path) -> None:
    reg = reg_for(store, project)
    for acc in (0.9, 0.95):
        reg.register(make_run(store, {"val_acc": acc}), "digits")
    reg.promote("digits", 1, "production")
    time.sleep(0.02)
    middle = time.time()
    time.sleep(0.02)
    reg.promote("digits", 2, "production")
    assert [p.version for p in reg.at("digits", "production", middle)] == [1]
    assert [p.version for p in reg.at("digits", "production", time.time())] == [2]
    assert [p.version for p in reg.at("digits", "production", middle - 60, time.time() + 1)] == [
        1,
        2,
    ]
    assert reg.at("digits", "production", middle - 3600) == []


# -- gates ----------------------------------------------------------------------------------
def test_metric_thresholds_and_force_needs_a_reason(store: Store, project: Path) -> None:
    write_policy(
        project,
        """
        [registry.stages.production]
        metrics = ["val_acc >= 0.95", "val_loss < 0.5"]
        """,
    )
    reg = reg_for(store, project)
    reg.register(make_run(store, {"val_acc": 0.93, "val_loss": 0.2}), "digits")
    report = reg.check("digits", 1, "production")
    assert [(r.gate, r.passed) for r in report.results] == [
        ("val_acc >= 0.95", False),
        ("val_loss < 0.5", True),
    ]
    assert report.results[0].key.endswith("nbtrack.toml: registry.stages.production.metrics")
    before = snapshot(project.parent / "store" / "nbtrack.db")
    with pytest.raises(PromotionRefusedError, match=r"1 of 2 checks failed \(val_acc >= 0.95"):
        reg.promote("digits", 1, "production")
    after = snapshot(project.parent / "store" / "nbtrack.db")
    # Refused: no stage changed; only the gate result was appended to the audit log.
    assert after["registry_stages"] == before["registry_stages"]
    assert [e.event for e in reg.audit()][-1] == "gate"
    with pytest.raises(UsageError, match="--force needs --reason"):
        reg.promote("digits", 1, "production", force=True)
    outcome = reg.promote("digits", 1, "production", force=True, reason="hotfix for outage")
    assert "FORCED" in outcome.message
    assert outcome.entry is not None and outcome.entry.data["forced"] is True
    assert outcome.entry.data["failed_gates"] == ["val_acc >= 0.95"]


def test_unknown_metric_is_one_line_naming_file_and_key(store: Store, project: Path) -> None:
    write_policy(project, '[registry.stages.staging]\nmetrics = ["val_acuracy >= 0.9"]\n')
    reg = reg_for(store, project)
    reg.register(make_run(store, {"val_acc": 0.93}), "digits")
    before = snapshot(store.db_path)
    with pytest.raises(RegistryConfigError) as err:
        reg.promote("digits", 1, "staging")
    message = str(err.value)
    assert "nbtrack.toml: registry.stages.staging.metrics" in message
    assert "'val_acuracy' is not a metric of digits v1 (it has: val_acc)" in message
    assert "\n" not in message
    assert snapshot(store.db_path) == before


def test_better_than_production_uses_the_metric_direction(store: Store, project: Path) -> None:
    write_policy(
        project,
        """
        [registry.stages.production]
        better_than_production = [{ metric = "val_loss", by = 0.05 }, { metric = "score" }]
        """,
    )
    reg = reg_for(store, project)
    # "score" is declared "min" by the runs (a heuristic would say max): declared wins.
    goals = {"score": "min"}
    reg.register(make_run(store, {"val_loss": 0.40, "score": 5.0}, goals=goals), "m")
    reg.register(make_run(store, {"val_loss": 0.37, "score": 4.0}, goals=goals), "m")
    reg.register(make_run(store, {"val_loss": 0.30, "score": 4.5}, goals=goals), "m")
    first = reg.check("m", 1, "production")
    assert first.passed and "no version in production yet" in first.results[0].detail
    reg.promote("m", 1, "production")
    report = reg.check("m", 2, "production")
    assert [r.passed for r in report.results] == [False, True]  # 0.03 < 0.05 better
    assert "+0.03 better (min is better)" in report.results[0].detail
    report = reg.check("m", 3, "production")
    assert [r.passed for r in report.results] == [True, True]


def test_inputs_run_status_verification_and_git_gates(store: Store, project: Path) -> None:
    write_policy(
        project,
        """
        [registry.stages.production]
        inputs_match = ["X_test"]
        run_finished = true
        verified = true
        clean_git = true
        """,
    )
    reg = reg_for(store, project)
    a = make_run(store, {"val_acc": 0.9}, inputs={"X_test": np.arange(10.0)})
    b = make_run(store, {"val_acc": 0.95}, inputs={"X_test": np.arange(11.0)})
    for n in (a, b):
        reg.register(n, "digits")
    store.update_run(store.resolve(a), {"git": {"commit": "b" * 40, "dirty": False}})
    reg.promote("digits", 1, "production", force=True, reason="bootstrap")
    report = reg.check("digits", 2, "production")
    by_gate = {r.gate: r for r in report.results}
    assert "X_test differs from v1" in by_gate["inputs X_test match production"].detail
    assert by_gate["run finished"].passed
    assert not by_gate["reproduction verified"].passed
    assert by_gate["clean git tree"].detail == "no git commit was recorded for the run"
    # A verification fact (what `nbtrack export --verify` records) satisfies the gate.
    c = make_run(store, {"val_acc": 0.95})
    store.record_verification(store.resolve(b), store.resolve(c))
    assert reg.check("digits", 2, "production").results[2].passed
    # A run still recording does not pass run_finished.
    with nbtrack.run(name="live", store=store, capture_env=False, capture_data=False) as track:
        track.log(val_acc=0.99)
        track.artifact(b"live", "model")
        track.input(np.arange(10.0), "X_test")
        live = track.register("digits", "model")
        assert live is not None
        gates = {r.gate: r for r in reg.check("digits", live.version, "production").results}
        assert not gates["run finished"].passed and "is running" in gates["run finished"].detail
        assert gates["inputs X_test match production"].passed


# -- approvals and who may act --------------------------------------------------------------
POLICY = """
[registry.stages.production]
approvals = 2
approvers = ["ana", "ben", "carl"]
self_approval = false
promoters = ["ana", "ops-bot"]

[registry.aliases.champion]
movers = ["ana"]
"""


def test_approvals_self_approval_and_rejection(store: Store, project: Path) -> None:
    write_policy(project, POLICY)
    reg_for(store, project, "ana").register(make_run(store, {"val_acc": 0.9}), "digits")
    before = snapshot(store.db_path)
    with pytest.raises(PromotionRefusedError, match="ana registered digits v1 and may not"):
        reg_for(store, project, "ana").approve("digits", 1, "production")
    with pytest.raises(PromotionRefusedError, match="dave may not approve"):
        reg_for(store, project, "dave").approve("digits", 1, "production")
    assert snapshot(store.db_path) == before
    reg_for(store, project, "ben").approve("digits", 1, "production", "looks right")
    with pytest.raises(PromotionRefusedError, match=r"2 approvals: 1/2: ben"):
        reg_for(store, project, "ana").promote("digits", 1, "production")
    reg_for(store, project, "carl").reject("digits", 1, "production", "drift on EU data")
    report = reg_for(store, project).check("digits", 1, "production")
    assert report.results[-1].detail == "rejected by carl (drift on EU data)"
    # --force never overrides approvals.
    with pytest.raises(PromotionRefusedError, match="rejected by carl"):
        reg_for(store, project, "ana").promote(
            "digits", 1, "production", force=True, reason="please"
        )
    reg_for(store, project, "carl").approve("digits", 1, "production", "fixed")
    outcome = reg_for(store, project, "ana").promote("digits", 1, "production")
    assert outcome.report is not None and outcome.report.passed
    decisions = reg_for(store, project).decisions("digits", 1)
    assert [(d.user, d.approved) for d in decisions] == [
        ("ben", True),
        ("carl", False),
        ("carl", True),
    ]


def test_who_may_promote_and_move_aliases(store: Store, project: Path) -> None:
    write_policy(project, POLICY.replace("approvals = 2", "approvals = 0"))
    reg_for(store, project, "ben").register(make_run(store, {"val_acc": 0.9}), "digits")
    before = snapshot(store.db_path)
    with pytest.raises(PromotionRefusedError, match="ben may not move versions of digits into"):
        reg_for(store, project, "ben").promote("digits", 1, "production")
    with pytest.raises(PromotionRefusedError, match="ben may not move the alias 'champion'"):
        reg_for(store, project, "ben").set_alias("digits", "champion", 1)
    assert snapshot(store.db_path) == before
    reg_for(store, project, "ops-bot").promote("digits", 1, "production")
    # Taking a version out of production is governed like putting one in.
    with pytest.raises(PromotionRefusedError, match="ben may not move"):
        reg_for(store, project, "ben").promote("digits", 1, "archived")
    reg_for(store, project, "ben").set_alias("digits", "candidate", 1)  # not governed


def test_identity_comes_from_nbtrack_user(
    store: Store, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_USER", "zoe@example.org")
    version = Registry(store, cwd=project).register(make_run(store, {"a": 1.0}), "m")
    assert version.created_by == "zoe@example.org"
    assert Registry(store, cwd=project).audit()[-1].user == "zoe@example.org"


# -- the policy file ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[registry\n", "cannot be read"),
        ("[registry.stages.prod]\n", "registry.stages.prod: unknown stage; stages are"),
        (
            "[registry.stages.staging]\naprovals = 1\n",
            "registry.stages.staging.aprovals: unknown key",
        ),
        ('[registry.stages.staging]\nmetrics = ["acc ~ 1"]\n', "is not a threshold"),
        ('[registry.stages.staging]\nmetrics = ["acc >= high"]\n', "'high' is not a number"),
        ("[registry.stages.staging]\napprovals = -1\n", "approvals = -1: give a whole number"),
        ('[registry.stages.staging]\napprovals = 2\napprovers = ["a"]\n', "more approvals than"),
        ("[registry.stages.staging]\nverified = 1\n", "verified = 1: write true or false"),
        ("[registry.hooks]\npromoted = 'x'\n", "registry.hooks.promoted: unknown event"),
        ("[registry.nonsense]\n", "registry.nonsense: unknown key"),
    ],
)
def test_a_bad_policy_is_one_line_naming_file_and_key(
    store: Store, project: Path, text: str, message: str
) -> None:
    reg_for(store, project).register(make_run(store, {"acc": 0.9}), "digits")
    path = write_policy(project, text)
    before = snapshot(store.db_path)
    with pytest.raises(RegistryConfigError) as err:
        reg_for(store, project).promote("digits", 1, "staging")
    assert message in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)
    assert snapshot(store.db_path) == before


def test_gates_file_and_per_model_tables(store: Store, project: Path) -> None:
    (project / ".nbtrack").mkdir()
    (project / ".nbtrack" / "gates.toml").write_text(
        '[stages.staging]\nmetrics = ["acc >= 0.5"]\napprovals = 0\n'
        '[models.strict.stages.staging]\nmetrics = ["acc >= 0.99"]\n',
        encoding="utf-8",
    )
    reg = reg_for(store, project)
    n = make_run(store, {"acc": 0.9})
    reg.register(n, "loose")
    reg.register(n, "strict")
    assert reg.check("loose", 1, "staging").passed
    strict = reg.check("strict", 1, "staging")
    assert not strict.passed and "gates.toml: models.strict.stages.staging.metrics" in (
        strict.results[0].key
    )
    write_policy(project, "[registry.stages.staging]\n")
    with pytest.raises(RegistryConfigError, match="declared twice"):
        reg.check("loose", 1, "staging")


# -- the audit log --------------------------------------------------------------------------
def test_audit_chain_detects_edits_and_deletions(store: Store, project: Path) -> None:
    reg = reg_for(store, project)
    for acc in (0.9, 0.95):
        reg.register(make_run(store, {"val_acc": acc}), "digits")
    reg.promote("digits", 1, "production", reason="first")
    reg.promote("digits", 2, "production")
    check = reg.verify_audit()
    assert check.ok and check.entries == 4
    entries = reg.audit("digits")
    assert entries[2].data["metrics"] == {"val_acc": 0.9} and entries[2].reason == "first"
    assert entries[3].data["replaced"] == 1
    assert all(e.host and e.user == "ana" for e in entries)
    jsonl = [json.loads(line) for line in nbtrack.registry.audit.to_jsonl(entries).splitlines()]
    assert [e["seq"] for e in jsonl] == [1, 2, 3, 4]
    conn = sqlite3.connect(store.db_path, isolation_level=None)
    conn.execute("DROP TRIGGER registry_audit_no_update")
    conn.execute("DROP TRIGGER registry_audit_no_delete")
    conn.execute("UPDATE registry_audit SET reason='routine' WHERE seq=3")
    problems = reg.verify_audit().problems
    assert problems == ("entry 3 was edited: its content no longer matches its hash",)
    conn.execute("UPDATE registry_audit SET reason='first' WHERE seq=3")
    assert reg.verify_audit().ok
    conn.execute("DELETE FROM registry_audit WHERE seq=2")
    assert any("entry 2 is missing" in p for p in reg.verify_audit().problems)


def test_writes_refuse_to_extend_a_log_whose_end_was_cut(store: Store, project: Path) -> None:
    reg = reg_for(store, project)
    reg.register(make_run(store, {"val_acc": 0.9}), "digits")
    reg.promote("digits", 1, "staging")
    conn = sqlite3.connect(store.db_path, isolation_level=None)
    conn.execute("DROP TRIGGER registry_audit_no_delete")
    conn.execute("DELETE FROM registry_audit WHERE seq=2")
    assert "the newest 1 were deleted" in reg.verify_audit().problems[-1]
    before = snapshot(store.db_path)
    with pytest.raises(nbtrack.errors.AuditLogError, match="tampered with"):
        reg.promote("digits", 1, "canary")
    assert snapshot(store.db_path) == before


# -- hooks ----------------------------------------------------------------------------------
def test_in_process_and_command_hooks(store: Store, project: Path) -> None:
    out = project / "events.jsonl"
    script = project / "hook.py"
    script.write_text(
        f"import sys\nopen({str(out)!r}, 'a').write(sys.stdin.read() + '\\n')\n",
        encoding="utf-8",
    )
    write_policy(
        project,
        f"""
        [registry.hooks]
        promote = [{json.dumps(f"{sys.executable} {script}")}]
        rollback = "{sys.executable} -c 'import sys; sys.exit(3)'"
        """,
    )
    seen: list[str] = []
    remove = on_event(lambda e: seen.append(f"{e.event}:{e.version}"), ["promote", "rollback"])
    try:
        reg = reg_for(store, project)
        for acc in (0.9, 0.95):
            reg.register(make_run(store, {"val_acc": acc}), "digits")
        reg.promote("digits", 1, "production")
        reg.promote("digits", 2, "production")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            reg.rollback("digits")  # its command fails: a warning, the rollback stands
    finally:
        remove()
    assert seen == ["promote:1", "promote:2", "rollback:1"]
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["event"], e["version"], e["stage"]) for e in events] == [
        ("promote", 1, "production"),
        ("promote", 2, "production"),
    ]
    assert events[1]["data"]["replaced"] == 1 and events[1]["hash"]
    assert any(
        issubclass(w.category, RegistryHookWarning) and "exited with status 3" in str(w.message)
        for w in caught
    )
    assert reg.resolve("digits@production").version == 1


# -- concurrency, deterministically: two checks of the same state, two commits ---------------
def test_a_promotion_checked_against_an_old_state_is_refused(store: Store, project: Path) -> None:
    reg = reg_for(store, project)
    for acc in (0.9, 0.93, 0.95):
        reg.register(make_run(store, {"val_acc": acc}), "digits")
    bob = reg_for(store, project, "bob")
    plan_ana = reg.plan_promotion("digits", 2, "production")
    plan_bob = bob.plan_promotion("digits", 3, "production")
    reg.commit(plan_ana)
    before = snapshot(store.db_path)
    with pytest.raises(RegistryConflictError) as err:
        bob.commit(plan_bob)
    assert "digits changed while digits v3 was being checked for production" in str(err.value)
    assert "promote of v2 to production by ana" in str(err.value)
    assert snapshot(store.db_path) == before


def test_register_inside_a_script_run_and_stand_ins(
    store: Store, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbtrack.tracker import DetachedRun

    with nbtrack.run(name="s", store=store, capture_env=False, capture_data=False) as track:
        track.log(val_acc=0.5)
        track.artifact(b"w", "model")
        track.log(val_acc=0.75)
        version = track.register("digits", "model")
        with pytest.warns(UserWarning, match="was not registered: run #"):
            assert track.register("digits", "nope") is None
    assert version is not None and version.metrics == {"val_acc": 0.75}
    assert DetachedRun("no store").register("digits") is None
    monkeypatch.setenv("NBTRACK_VERIFYING", "1")
    with nbtrack.run(name="s", store=store, capture_env=False, capture_data=False) as track:
        track.artifact(b"w2", "model")
        with pytest.warns(UserWarning, match="only checks a reproduction"):
            assert track.register("digits") is None
    assert len(Registry(store).versions("digits")) == 1


def test_models_frames(store: Store, project: Path) -> None:
    reg = reg_for(store, project)
    for acc in (0.9, 0.95):
        reg.register(make_run(store, {"val_acc": acc}), "digits")
    reg.register(make_run(store, {"rmse": 3.0}), "prices")
    reg.promote("digits", 2, "production")
    reg.set_alias("digits", "champion", 2)
    frame = nbtrack.models(store=store)
    assert list(frame["name"]) == ["digits", "prices"]
    row = frame.set_index("name").loc["digits"]
    assert (
        row["production"] == 2 and row["development"] == [1] and row["aliases"] == {"champion": 2}
    )
    assert frame.set_index("name").loc["prices", "production"] is pd_na()
    versions = nbtrack.models("digits", store=store)
    assert list(versions["version"]) == [1, 2]
    assert list(versions["stage"]) == ["development", "production"]
    assert list(versions["metrics.val_acc"]) == [0.9, 0.95]


def pd_na() -> object:
    import pandas as pd

    return pd.NA
