"""Re-checking a store for secrets, and redacting them in place (``nbtrack scan``).

Runs recorded before nbtrack redacted secrets typed into cells, or before a project added
names and patterns to its ``[secrets]`` table, may hold credentials: in params, in the
stored code and history, notes, tags, errors, git remotes, the environment snapshot or
artifacts' metadata. :func:`scan_store` finds them by the one rule of
:mod:`nbtrack.secrets` (reporting where and by which rule, never the value);
:func:`redact_store` rewrites them exactly as a run recorded today would have been
written, so a scan afterwards is clean.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nbtrack.secrets import (
    DEFAULT_RULES,
    KNOWN_VALUE_RULE,
    PLAIN_COLUMNS,
    REDACTED,
    Redactor,
    SecretRules,
)
from nbtrack.store.sqlite import Store, decode_row

__all__ = ["Finding", "ScanResult", "scan_store", "redact_store"]

_ELSEWHERE = KNOWN_VALUE_RULE


@dataclass(frozen=True)
class Finding:
    """Something in one run (or sweep) that looks secret: where (``field``) and why
    (``rule``). ``run`` and ``run_id`` are the sweep's number and id when ``kind`` is
    ``"sweep"``."""

    run: int
    run_id: str
    field: str
    rule: str
    kind: str = "run"

    @property
    def where(self) -> str:
        """``#12`` for a run, ``sweep #3`` for a sweep."""
        return f"#{self.run}" if self.kind == "run" else f"{self.kind} #{self.run}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``nbtrack scan --json``)."""
        return {
            "kind": self.kind,
            "run": self.run,
            "run_id": self.run_id,
            "field": self.field,
            "rule": self.rule,
        }


@dataclass(frozen=True)
class ScanResult:
    """What a scan found (or a redaction removed) in a store."""

    store: str
    runs: int
    findings: tuple[Finding, ...]
    #: Counts of what was rewritten, when the scan redacted (``None`` for a plain scan).
    redacted: dict[str, Any] | None = None

    @property
    def clean(self) -> bool:
        """Nothing secret found."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``nbtrack scan --json``)."""
        return {
            "store": self.store,
            "runs_scanned": self.runs,
            "clean": self.clean,
            "findings": [f.to_dict() for f in self.findings],
            "redacted": self.redacted,
        }


@dataclass
class _Plan:
    """The findings of one pass over the store, and the writes that would remove them."""

    runs: int = 0
    findings: list[Finding] = field(default_factory=list)
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    artifacts: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    sweeps: dict[str, dict[str, Any]] = field(default_factory=dict)


def scan_store(store: Store, rules: SecretRules = DEFAULT_RULES) -> ScanResult:
    """Everything in ``store`` that looks secret by ``rules``; the store is not changed."""
    plan = _plan(store, rules)
    return ScanResult(store.shown, plan.runs, tuple(plan.findings))


def redact_store(store: Store, rules: SecretRules = DEFAULT_RULES) -> ScanResult:
    """Redact everything :func:`scan_store` finds, in place, in one transaction (see
    :meth:`~nbtrack.store.sqlite.Store.redact_in_place`, and on PostgreSQL
    :meth:`~nbtrack.store.postgres.PostgresStore.redact_in_place`, whose counts say in
    ``remains`` what the database may still hold); returns what was redacted."""
    plan = _plan(store, rules)
    if plan.findings:
        counts = store.redact_in_place(plan.columns, plan.blobs, plan.artifacts, plan.sweeps)
        _audit_redaction(store, plan.findings)
    else:
        # Nothing left to rewrite; still drop old copies an interrupted redaction left.
        counts = {"runs": 0, "blobs": 0, "artifacts": 0, "compacted": store.compact()}
    return ScanResult(store.shown, plan.runs, tuple(plan.findings), counts)


def _plan(store: Store, rules: SecretRules) -> _Plan:
    rows = [decode_row(row) for row in store.list_runs()]
    code_hashes = list(
        dict.fromkeys(
            h
            for row in rows
            for h in [row["code_hash"], *(entry[1] for entry in row["history"])]
            if h
        )
    )
    texts = {h: blob.decode("utf-8", "replace") for h, blob in store.get_blobs(code_hashes).items()}
    sweeps = store.list_sweeps()
    redactor = Redactor(rules)
    # Learn every secret value first, so one found in one run is removed from all.
    redactor.learn_code(texts.values())
    for sweep in sweeps:
        redactor.learn_code([sweep["code"] or "", *(source for _, source in sweep["history"])])
    for row in rows:
        redactor.learn_params(row["params"])
        overrides = row["extra"].get("overrides") if isinstance(row["extra"], dict) else None
        if isinstance(overrides, Mapping):
            redactor.learn_params(overrides)

    plan = _Plan(runs=len(rows))
    code_rules: dict[str, str] = {}
    for digest, text in texts.items():
        redacted = redactor.code(text)
        if redacted != text:
            plan.blobs[digest] = redacted.encode("utf-8")
            code_rules[digest] = "; ".join(redactor.explain_code(text)) or _ELSEWHERE
    env_rules = _environments(store, rows, redactor, plan)
    artifacts: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for run_id, name, meta in store.artifact_rows():
        artifacts.setdefault(run_id, []).append((name, meta))

    for row in rows:
        run = _RunFindings(int(row["number"]), str(row["id"]), redactor, plan.findings)
        fields = {k: v for k, v in row.items() if k not in PLAIN_COLUMNS}
        cleaned = redactor.fields(fields)
        changed = {k: cleaned[k] for k in fields if cleaned[k] != fields[k]}
        for column, value in changed.items():
            run.diff(column, fields[column], value, names=column in ("params", "extra"))
        if "params" in changed:
            newly = [k for k, v in changed["params"].items() if v == REDACTED]
            extra = dict(changed.get("extra", row["extra"]) or {})
            extra["redacted_params"] = list(
                dict.fromkeys([*(extra.get("redacted_params") or []), *newly])
            )
            changed["extra"] = extra
        if changed:
            plan.columns[run.run_id] = changed
        if row["code_hash"] in code_rules:
            run.add("code", code_rules[row["code_hash"]])
        for count, digest in row["history"]:
            if digest in code_rules:
                run.add(f"history In[{count}]", code_rules[digest])
        if row["env_hash"] in env_rules:
            for path, rule in env_rules[row["env_hash"]]:
                run.add(f"environment.{path}", rule)
        for name, meta in artifacts.get(run.run_id, []):
            new_name, new_meta = redactor.text(name), redactor.value(meta)
            if new_name != name or new_meta != meta:
                plan.artifacts.append((run.run_id, name, new_name, new_meta))
                if new_name != name:
                    run.add("artifact name", "; ".join(redactor.explain_text(name)))
                run.diff(f"artifact {new_name!r} meta", meta, new_meta, names=False)
    for sweep in sweeps:
        _sweep(sweep, redactor, plan)
    return plan


def _sweep(sweep: dict[str, Any], redactor: Redactor, plan: _Plan) -> None:
    """A sweep keeps its cell's code and history as text (its trials run that code)."""
    found = _RunFindings(int(sweep["number"]), str(sweep["id"]), redactor, plan.findings, "sweep")
    changed: dict[str, Any] = {}
    code = sweep["code"] or ""
    if redactor.code(code) != code:
        changed["code"] = redactor.code(code)
        found.add("code", "; ".join(redactor.explain_code(code)))
    history = [[count, redactor.code(source)] for count, source in sweep["history"]]
    if history != [list(entry) for entry in sweep["history"]]:
        changed["history"] = history
        for (count, source), (_, new) in zip(sweep["history"], history, strict=True):
            if new != source:
                found.add(f"history In[{count}]", "; ".join(redactor.explain_code(source)))
    extra = dict(sweep["extra"] or {})
    template = extra.pop("template", None)
    cleaned = redactor.value(extra, names=True)
    found.diff("extra", extra, cleaned, names=True)
    new_template = redactor.code(template) if isinstance(template, str) else template
    if new_template != template:
        found.add("extra.template", "; ".join(redactor.explain_code(str(template))))
    if cleaned != extra or new_template != template:
        changed["extra"] = cleaned | ({} if template is None else {"template": new_template})
    for column in ("name", "notebook"):
        value = sweep[column]
        if isinstance(value, str) and redactor.text(value) != value:
            changed[column] = redactor.text(value)
            found.add(column, "; ".join(redactor.explain_text(value)))
    if changed:
        plan.sweeps[str(sweep["id"])] = changed


def _environments(
    store: Store, rows: list[dict[str, Any]], redactor: Redactor, plan: _Plan
) -> dict[str, list[tuple[str, str]]]:
    """Redact the environment snapshots (a fixed schema: no name rule, or ``google-auth``
    in the package table would go); returns ``{hash: [(path, rule)]}`` of those changed."""
    hashes = list(dict.fromkeys(row["env_hash"] for row in rows if row["env_hash"]))
    found: dict[str, list[tuple[str, str]]] = {}
    for digest, blob in store.get_blobs(hashes).items():
        try:
            env = json.loads(blob)
        except ValueError:
            continue
        cleaned = redactor.value(env)
        if cleaned != env:
            # The same serialisation a run uses (tracker.store_environment).
            plan.blobs[digest] = json.dumps(cleaned, sort_keys=True, default=str).encode()
            sink: list[Finding] = []
            _RunFindings(0, "", redactor, sink).diff("", env, cleaned, names=False)
            found[digest] = [(f.field, f.rule) for f in sink]
    return found


class _RunFindings:
    """Collects one run's findings; explains each changed value by the rule that matched."""

    def __init__(
        self,
        number: int,
        run_id: str,
        redactor: Redactor,
        sink: list[Finding],
        kind: str = "run",
    ) -> None:
        self.number, self.run_id, self.redactor, self.sink = number, run_id, redactor, sink
        self.kind = kind

    def add(self, where: str, rule: str) -> None:
        self.sink.append(Finding(self.number, self.run_id, where, rule or _ELSEWHERE, self.kind))

    def diff(self, path: str, old: Any, new: Any, *, names: bool) -> None:
        """A finding for each leaf of ``old`` that redaction changes into ``new``."""
        if old == new:
            return
        rules = self.redactor.rules
        if isinstance(old, dict) and isinstance(new, dict):
            for key, value in old.items():
                where = f"{path}.{key}" if path else str(key)
                replaced = new.get(key)
                if names and replaced == REDACTED and value != REDACTED:
                    rule = rules.name_rule(str(key))
                    if rule is not None:
                        self.add(where, rule)
                        continue
                self.diff(where, value, replaced, names=names)
        elif isinstance(old, list | tuple) and isinstance(new, list):
            for index, (value, replaced) in enumerate(zip(old, new, strict=False)):
                self.diff(f"{path}[{index}]", value, replaced, names=names)
        else:
            text = old if isinstance(old, str) else json.dumps(old, default=str)
            explained = self.redactor.explain_text(text)
            if not explained and REDACTED in text:
                explained = ["holds a part that was redacted before"]
            if not explained and new == REDACTED:
                flag = ".argv[" in f".{path}"
                explained = ["the value of a secret-named flag" if flag else "a secret-named entry"]
            self.add(path, "; ".join(explained))


def _audit_redaction(store: Store, findings: list[Finding]) -> None:
    """Where the store has a registry audit trail, append that secrets were redacted: which
    runs and fields, by which rule — never a value. A store with no registry has no trail."""
    from nbtrack.identity import current_host, current_user
    from nbtrack.registry import audit
    from nbtrack.registry.records import Event

    with store.registry_transaction() as writer:
        count, _ = writer.audit_head()
        if count == 0:
            return
        where = sorted({(f.kind, f.run, f.field, f.rule) for f in findings})
        audit.append(
            writer,
            Event.SECRETS_REDACTED,
            None,
            None,
            None,
            "nbtrack scan --redact",
            {
                "redacted": [
                    {"kind": k, "number": n, "field": fd, "rule": r} for k, n, fd, r in where
                ]
            },
            current_user(),
            current_host(),
            time.time(),
            where=store.shown,
        )
