"""The typed entry schema: logs written by the code before the schema existed parse, a writer
cannot write an entry the schema does not describe, and a reader or verify names seq, type and
field of an entry that does not fit.

`tests/data/logs/` holds two real run directories written before this schema (see its
README): a `guarded-rl run` and a `GuardedLoop`.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from guarded_rl.audit.events import (
    EVENT_MODELS,
    SCHEMA_VERSION,
    CycleUpdateProposed,
    RetentionPurge,
    RunStarted,
    StepUpdateProposed,
    UpdateApplied,
    json_schema,
    parse_event,
    validate_payload,
)
from guarded_rl.audit.explain import explain_update, render_explanation
from guarded_rl.audit.history import RunHistory
from guarded_rl.audit.log import GENESIS, AuditEntry, AuditLog, entry_body, read_log
from guarded_rl.audit.signer import HeadSigner, origin_of
from guarded_rl.commands.verify import verify_run
from guarded_rl.errors import AuditError, InputError
from guarded_rl.integrations.torch import GuardedLoop
from guarded_rl.rundir.paths import HEAD_FILE

LOGS = Path(__file__).parents[2] / "data" / "logs"
STORED = ("cli-run", "torch-loop")


@pytest.mark.parametrize("name", STORED)
def test_every_entry_of_a_stored_log_parses(name: str) -> None:
    entries = read_log(LOGS / name / "audit.jsonl")
    events = [parse_event(entry) for entry in entries]
    assert [e.type for e in events] == [e.type for e in entries]
    started = events[0].payload
    assert isinstance(started, RunStarted)
    assert "schema_version" not in entries[0].payload  # written before the field existed
    assert started.schema_version == SCHEMA_VERSION == 1
    shape = CycleUpdateProposed if name == "cli-run" else StepUpdateProposed
    proposed = [e.payload for e in events if e.type == "update_proposed"]
    assert proposed and all(isinstance(p, shape) for p in proposed)


@pytest.mark.parametrize("name", STORED)
def test_a_stored_log_verifies_and_its_updates_explain(name: str, tmp_path: Path) -> None:
    run_dir = tmp_path / name
    shutil.copytree(LOGS / name, run_dir)
    report = verify_run(run_dir, public_key=LOGS / name / "audit.pub")
    assert report.ok, report.failure
    history = RunHistory.load(run_dir)
    explained = explain_update(history, 1)
    assert explained["decision"]["outcome"] == "approved"
    assert explained["weights"]["applied"]
    assert explained["trigger"]["loop_step"] is (name == "torch-loop")
    text = render_explanation(explained)
    assert text.startswith("Update of cycle 1: APPROVED")
    if name == "torch-loop":  # the held step a reviewer approved, and a rejected one
        assert explained["review"]["decisions"][0]["decision"] == "approve"
        assert explain_update(history, 2)["decision"]["outcome"] == "rejected"
    else:
        assert explained["trigger"]["generated"] > 0 and explained["top_samples"]


GRANT = {"subject": "p-" + "0" * 32, "purposes": ["training"], "consent_text_sha256": "a" * 64}


def _purge(**change: Any) -> dict[str, Any]:
    return {"retention_days": 30, "feedback_rows": 0} | change


@pytest.mark.parametrize(
    ("type_", "payload", "field"),
    [
        ("no_such_type", _purge(), "type"),
        ("retention_purge", _purge(feedback_rows=-1), "payload.feedback_rows"),
        ("retention_purge", _purge(feedback_rows="3"), "payload.feedback_rows"),
        ("retention_purge", _purge(note="a name"), "payload.note"),
        ("retention_purge", {"retention_days": 30}, "payload.feedback_rows"),
        ("update_applied", {"cycle": 0, "model_sha256": "not a hash"}, "payload.model_sha256"),
        ("consent_granted", {**GRANT, "subject": "alice"}, "payload.subject"),
    ],
)
def test_a_writer_with_a_wrong_payload_writes_nothing(
    tmp_path: Path, type_: str, payload: dict[str, Any], field: str
) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append("retention_purge", _purge())
        before = path.read_bytes()
        with pytest.raises(AuditError) as caught:
            log.append(type_, payload)
        assert log.size == 1
        log.append("retention_purge", _purge(feedback_rows=2))  # the chain goes on unharmed
    assert caught.value.field == field
    assert f"seq 1: {'unknown' if type_ == 'no_such_type' else type_}" in caught.value.message
    assert path.read_bytes().startswith(before)
    assert [e.payload["feedback_rows"] for e in read_log(path)] == [0, 2]


def test_a_writer_accepts_a_model_instance(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.jsonl") as log:
        entry = log.append("retention_purge", RetentionPurge(retention_days=7, feedback_rows=3))
    assert entry.payload == {"retention_days": 7, "feedback_rows": 3}
    assert read_log(tmp_path / "audit.jsonl") == [entry]


def test_the_two_update_proposed_shapes_are_told_apart_by_counts() -> None:
    [cycle] = [
        e.payload
        for e in read_log(LOGS / "cli-run" / "audit.jsonl")
        if e.type == "update_proposed" and e.payload["cycle"] == 0
    ]
    assert isinstance(validate_payload("update_proposed", cycle), CycleUpdateProposed)
    without_counts = {k: v for k, v in cycle.items() if k != "counts"}
    with pytest.raises(AuditError) as caught:  # then it must be a loop step, which it is not
        validate_payload("update_proposed", without_counts)
    assert caught.value.field is not None and caught.value.field.startswith("payload.")


def test_parse_event_names_seq_type_and_field() -> None:
    entry = AuditEntry(5, 1.0, "update_applied", {"cycle": -1, "model_sha256": "a" * 64}, "", "")
    with pytest.raises(AuditError) as caught:
        parse_event(entry, file="audit.jsonl")
    assert caught.value.one_line().startswith(
        "audit.jsonl: payload.cycle = -1: seq 5: update_applied entry does not fit the schema"
    )
    ok = parse_event(AuditEntry(5, 1.0, "update_applied", {"cycle": 1, "model_sha256": "a" * 64},
                                "", ""))  # fmt: skip
    assert isinstance(ok.payload, UpdateApplied) and ok.payload.cycle == 1


def _forge(run_dir: Path, entries: list[tuple[str, dict[str, Any]]]) -> None:
    """A log as the holder of its key could write it: chained, signed, not schema-checked."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from guarded_rl.audit.head import write_public_key
    from guarded_rl.rundir.paths import PUBLIC_KEY_FILE

    run_dir.mkdir()
    prev, lines = GENESIS, []
    for seq, (type_, payload) in enumerate(entries):
        body = entry_body(seq, 1.0 + seq, type_, payload, prev)
        prev = hashlib.sha256(body).hexdigest()
        lines.append(b'{"hash":"' + prev.encode() + b'",' + body[1:] + b"\n")
    (run_dir / "audit.jsonl").write_bytes(b"".join(lines))
    key = Ed25519PrivateKey.generate()
    write_public_key(run_dir / PUBLIC_KEY_FILE, key.public_key())
    log = AuditLog(run_dir / "audit.jsonl")
    HeadSigner(log, key, origin_of("0" * 16), run_dir / HEAD_FILE).sign()
    log.close()


def test_verify_and_history_refuse_an_entry_outside_the_schema(tmp_path: Path) -> None:
    entries = [(e.type, e.payload) for e in read_log(LOGS / "torch-loop" / "audit.jsonl")]
    entries[0][1].pop("key_id")  # the forger's own key signs the head
    entries[4] = ("update_applied", {**entries[4][1], "user_name": "alice"})
    run_dir = tmp_path / "forged"
    _forge(run_dir, entries)
    shutil.copytree(LOGS / "torch-loop" / "checkpoints", run_dir / "checkpoints")
    report = verify_run(run_dir)
    assert report.failure_seq == 4
    assert report.failure is not None and report.failure.startswith(
        "seq 4: payload.user_name: update_applied entry does not fit the schema"
    )
    with pytest.raises(AuditError, match=r"payload\.user_name"):
        RunHistory.load(run_dir)


def test_a_new_run_records_the_schema_version(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    with GuardedLoop(
        model, torch.optim.SGD(model.parameters(), lr=0.1), run_dir=tmp_path / "run",
        probe=torch.eye(2),
    ) as guard:  # fmt: skip
        model(torch.eye(2)).sum().backward()
        guard.step(rewards=[1.0])
    first = read_log(tmp_path / "run" / "audit.jsonl")[0]
    assert first.payload["schema_version"] == 1
    assert verify_run(tmp_path / "run").ok


def test_the_json_schema_describes_every_type() -> None:
    document = json_schema()
    named = [v["properties"]["type"]["const"] for v in document["oneOf"]]
    assert named == sorted(EVENT_MODELS)
    assert document["required"] == ["hash", "payload", "prev", "seq", "ts", "type"]
    refs = {v["properties"]["payload"]["$ref"].removeprefix("#/$defs/") for v in document["oneOf"]}
    assert refs <= set(document["$defs"])
    proposed = document["$defs"]["UpdateProposed"]["oneOf"]
    assert {p["$ref"] for p in proposed} == {
        "#/$defs/CycleUpdateProposed",
        "#/$defs/StepUpdateProposed",
    }
    [only] = json_schema(["rollback"])["oneOf"]
    assert only["properties"]["type"] == {"const": "rollback"}
    with pytest.raises(InputError, match="unknown audit entry type"):
        json_schema(["nope"])
