"""`guarded-rl audit verify` against every attack it must catch, on a real run directory.

One short real run is made per module; each test works on its own copy (with its key file,
which lives next to the run directory).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from guarded_rl.audit.log import entry_body

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import os
    import subprocess
    import sys

    base = tmp_path_factory.mktemp("pristine")
    run_dir = base / "run"
    script = Path(sys.executable).parent / "guarded-rl"
    result = subprocess.run(
        [
            str(script),
            "run",
            "--cycles",
            "4",
            "--users",
            "4",
            "--seed",
            "3",
            "--run-dir",
            str(run_dir),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.fixture
def run_copy(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(pristine, target)
    from guarded_rl.rundir.paths import RunPaths

    key = RunPaths(pristine).recorded_key_file()
    shutil.copy2(key, tmp_path / "run.key")
    toml = (target / "run.toml").read_text().replace(str(key), str(tmp_path / "run.key"))
    (target / "run.toml").write_text(toml)
    return target


def _lines(run_dir: Path) -> list[bytes]:
    return (run_dir / "audit.jsonl").read_bytes().splitlines(keepends=True)


def _write(run_dir: Path, lines: list[bytes]) -> None:
    (run_dir / "audit.jsonl").write_bytes(b"".join(lines))


def _failed_at(result, seq: int | str) -> None:
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    where = f"seq {seq}" if isinstance(seq, int) else seq
    assert where in lines[0], lines[0]


def _rechain(lines: list[bytes], start: int) -> list[bytes]:
    """What a forger without the key does: recompute every hash from `start` on."""
    out = lines[:start]
    prev = json.loads(lines[start - 1])["hash"] if start else "0" * 64
    for seq, raw in enumerate(lines[start:], start=start):
        obj = json.loads(raw)
        body = entry_body(seq, obj["ts"], obj["type"], obj["payload"], prev)
        import hashlib

        digest = hashlib.sha256(body).hexdigest()
        out.append(b'{"hash":"' + digest.encode() + b'",' + body[1:] + b"\n")
        prev = digest
    return out


def test_untouched_run_verifies(cli, run_copy: Path) -> None:
    result = cli("audit", "verify", str(run_copy))
    assert result.returncode == 0, result.stderr
    assert "intact" in result.stdout


def test_changed_byte_is_caught_at_its_entry(cli, run_copy: Path) -> None:
    lines = _lines(run_copy)
    target = next(i for i, raw in enumerate(lines) if b'"cycle":' in raw)
    lines[target] = lines[target].replace(b'"cycle":', b'"cycle": ', 1)
    _write(run_copy, lines)
    _failed_at(cli("audit", "verify", str(run_copy)), target)


def test_changed_value_is_caught(cli, run_copy: Path) -> None:
    lines = _lines(run_copy)
    target = next(i for i, raw in enumerate(lines) if b'"update_proposed"' in raw)
    lines[target] = re.sub(rb'"liked":(\d+)', b'"liked":999', lines[target], count=1)
    _write(run_copy, lines)
    _failed_at(cli("audit", "verify", str(run_copy)), target)


def test_deleted_entry_is_caught(cli, run_copy: Path) -> None:
    lines = _lines(run_copy)
    del lines[4]
    _write(run_copy, lines)
    _failed_at(cli("audit", "verify", str(run_copy)), 4)


def test_inserted_entry_is_caught(cli, run_copy: Path) -> None:
    lines = _lines(run_copy)
    lines.insert(6, lines[3])
    _write(run_copy, lines)
    _failed_at(cli("audit", "verify", str(run_copy)), 6)


def test_reordered_entries_are_caught(cli, run_copy: Path) -> None:
    lines = _lines(run_copy)
    lines[6], lines[7] = lines[7], lines[6]
    _write(run_copy, lines)
    _failed_at(cli("audit", "verify", str(run_copy)), 6)


def test_truncated_tail_is_caught(cli, run_copy: Path) -> None:
    lines = _lines(run_copy)
    _write(run_copy, lines[:-2])
    result = cli("audit", "verify", str(run_copy))
    _failed_at(result, len(lines) - 2)
    assert "truncated" in result.stderr


def test_forged_appended_entry_is_caught(cli, run_copy: Path) -> None:
    lines = _lines(run_copy)
    forged = json.loads(lines[-1])
    forged["type"], forged["payload"] = "rollback", {"to_update": 0, "reason": "forged"}
    lines.append(json.dumps(forged).encode() + b"\n")
    lines = _rechain(lines, len(lines) - 1)  # a correctly chained, unsigned entry
    _write(run_copy, lines)
    result = cli("audit", "verify", str(run_copy))
    _failed_at(result, len(lines) - 1)
    assert "not covered by the signed head" in result.stderr


def test_rewritten_and_rechained_history_is_caught(cli, run_copy: Path) -> None:
    lines = _lines(run_copy)
    target = next(i for i, raw in enumerate(lines) if b'"update_proposed"' in raw)
    lines[target] = re.sub(rb'"liked":(\d+)', b'"liked":999', lines[target], count=1)
    _write(run_copy, _rechain(lines, target))
    result = cli("audit", "verify", str(run_copy))
    _failed_at(result, "head")
    assert "Merkle root" in result.stderr


def test_swapped_head_is_caught(cli, run_copy: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    result = cli("run", "--cycles", "1", "--users", "2", "--run-dir", str(other))
    assert result.returncode == 0, result.stderr
    shutil.copy2(other / "audit.head", run_copy / "audit.head")
    _failed_at(cli("audit", "verify", str(run_copy)), "head")
    # ...and with the other run's public key too, the root still gives it away
    shutil.copy2(other / "audit.pub", run_copy / "audit.pub")
    _failed_at(cli("audit", "verify", str(run_copy)), "head")


def test_head_with_forged_signature_is_caught(cli, run_copy: Path) -> None:
    head = json.loads((run_copy / "audit.head").read_text())
    head["tree_size"] -= 1
    (run_copy / "audit.head").write_text(json.dumps(head))
    result = cli("audit", "verify", str(run_copy))
    _failed_at(result, "head")
    assert "signature" in result.stderr


def _referencing_entry(run_dir: Path) -> tuple[int, str]:
    for seq, raw in enumerate(_lines(run_dir)):
        payload = json.loads(raw)["payload"]
        if payload.get("checkpoint_id"):
            return seq, payload["checkpoint_id"]
    raise AssertionError("no checkpoint referenced")


def test_changed_checkpoint_blob_is_caught(cli, run_copy: Path) -> None:
    seq, checkpoint_id = _referencing_entry(run_copy)
    manifest = json.loads(
        (run_copy / "checkpoints" / "manifests" / f"{checkpoint_id}.json").read_text()
    )
    blob = run_copy / "checkpoints" / "blobs" / next(iter(manifest["model"].values()))["sha256"]
    data = bytearray(blob.read_bytes())
    data[0] ^= 0x01
    blob.write_bytes(bytes(data))
    _failed_at(cli("audit", "verify", str(run_copy)), seq)


def test_missing_checkpoint_blob_is_caught(cli, run_copy: Path) -> None:
    seq, checkpoint_id = _referencing_entry(run_copy)
    manifest = json.loads(
        (run_copy / "checkpoints" / "manifests" / f"{checkpoint_id}.json").read_text()
    )
    (run_copy / "checkpoints" / "blobs" / next(iter(manifest["model"].values()))["sha256"]).unlink()
    _failed_at(cli("audit", "verify", str(run_copy)), seq)


def test_missing_run_directory_is_a_usage_error(cli, tmp_path: Path) -> None:
    result = cli("audit", "verify", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_anchor_proves_the_log_only_grew(cli, run_copy: Path, tmp_path: Path) -> None:
    anchor = tmp_path / "anchor.head"
    head = cli("audit", "head", str(run_copy))
    assert head.returncode == 0
    anchor.write_text(head.stdout)
    resumed = cli("run", "--resume", str(run_copy), "--cycles", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert cli("audit", "verify", str(run_copy), "--anchor", str(anchor)).returncode == 0
    # a forger with the key could re-sign a rewritten history; the anchor still catches it
    lines = _lines(run_copy)
    target = next(i for i, raw in enumerate(lines) if b'"reason":"start"' in raw)
    lines[target] = lines[target].replace(b'"reason":"start"', b'"reason":"final"')
    _write(run_copy, _rechain(lines, target))
    from guarded_rl.audit.head import load_signing_key
    from guarded_rl.audit.log import AuditLog
    from guarded_rl.audit.signer import HeadSigner

    log = AuditLog(run_copy / "audit.jsonl")
    origin = json.loads(lines[0])["payload"]["run_id"]
    HeadSigner(
        log, load_signing_key(tmp_path / "run.key"), f"guarded-rl/{origin}", run_copy / "audit.head"
    ).sign()
    log.close()
    assert cli("audit", "verify", str(run_copy)).returncode == 0  # self-consistent again
    _failed_at(cli("audit", "verify", str(run_copy), "--anchor", str(anchor)), "anchor")


def test_anchor_may_be_the_heads_json_text(cli, run_copy: Path) -> None:
    head = cli("audit", "head", str(run_copy)).stdout
    verified = cli("audit", "verify", str(run_copy), "--anchor", head)
    assert verified.returncode == 0, verified.stderr
    assert "extends anchor" in verified.stdout
    forged = json.loads(head) | {"tree_size": 1}
    _failed_at(cli("audit", "verify", str(run_copy), "--anchor", json.dumps(forged)), "anchor")


@pytest.mark.parametrize(
    ("anchor", "says"),
    [("no-such.head", "no such anchor file"), ('{"tree_size": 1', "not valid JSON")],
)
def test_an_unusable_anchor_is_a_one_line_usage_error(
    cli, run_copy: Path, anchor: str, says: str
) -> None:
    result = cli("audit", "verify", str(run_copy), "--anchor", anchor)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--anchor" in lines[0] and says in lines[0], result.stderr
    assert "audit head" in lines[0]  # says what it takes


def test_torn_tail_is_reported_and_repaired(cli, run_copy: Path) -> None:
    lines = _lines(run_copy)
    with (run_copy / "audit.jsonl").open("ab") as fh:
        fh.write(lines[-1][:40])  # a write cut short
    result = cli("audit", "verify", str(run_copy))
    _failed_at(result, len(lines))
    assert "torn" in result.stderr
    repaired = cli("audit", "repair", str(run_copy))
    assert repaired.returncode == 0, repaired.stderr
    assert cli("audit", "verify", str(run_copy)).returncode == 0
    shown = cli("audit", "show", str(run_copy), "--type", "repair", "--json")
    assert json.loads(shown.stdout.splitlines()[0])["payload"]["torn_tail_removed_bytes"] == 40


def test_repair_refuses_tampering(cli, run_copy: Path) -> None:
    lines = _lines(run_copy)
    del lines[3]
    _write(run_copy, lines)
    result = cli("audit", "repair", str(run_copy))
    assert result.returncode == 3
    assert "refusing" in result.stderr


def test_show_and_explain(cli, run_copy: Path) -> None:
    shown = cli("audit", "show", str(run_copy), "--json")
    types = [json.loads(line)["type"] for line in shown.stdout.splitlines()]
    assert types[0] == "run_started" and types[-1] == "run_finished"
    assert "update_proposed" in types and "update_applied" in types
    explained = cli("audit", "explain", str(run_copy), "1")
    assert explained.returncode == 0, explained.stderr
    for words in (
        "Why it was proposed",
        "Who the feedback came from",
        "Safety:",
        "Drift:",
        "Decision:",
        "advantage",
    ):
        assert words in explained.stdout
    as_json = json.loads(cli("audit", "explain", str(run_copy), "1", "--json").stdout)
    assert as_json["decision"]["rule"] == "auto_small_step"
    assert as_json["decision"]["approver"] == "gate:auto"
    assert set(as_json["bias"]["data"]["by_group"]) <= {"A", "B"}
    assert as_json["bias"]["data"]["passed"] is True
    missing = cli("audit", "explain", str(run_copy), "99")
    assert missing.returncode == 2 and "UPDATE" in missing.stderr


# -- writers refuse a forged history (they must not launder it by re-signing) ---------------


def _forge(run_dir: Path, seq: int) -> None:
    """What an attacker without the key can do: change an entry's payload (within its schema:
    a consent under another text) and recompute the plain SHA-256 chain from there on (the
    signed head is left as it was)."""
    import hashlib

    out, prev = [], None
    for i, raw in enumerate(_lines(run_dir)):
        entry = json.loads(raw)
        if i == seq:
            entry["payload"]["consent_text_sha256"] = "f" * 64
        if prev is not None:
            entry["prev"] = prev
        if i >= seq:
            body = entry_body(i, entry["ts"], entry["type"], entry["payload"], entry["prev"])
            digest = hashlib.sha256(body).hexdigest()
            raw = b'{"hash":"' + digest.encode() + b'",' + body[1:] + b"\n"
            prev = digest
        out.append(raw)
    _write(run_dir, out)


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(run_dir)): p.read_bytes()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.mark.parametrize(
    "command",
    [
        ("consent", "grant", "{run}", "--user", "newcomer", "--purpose", "training"),
        ("consent", "purge", "{run}", "--days", "1"),
        ("run", "--resume", "{run}", "--cycles", "1"),
        ("audit", "repair", "{run}"),
    ],
    ids=["consent-grant", "consent-purge", "run-resume", "audit-repair"],
)
def test_writers_refuse_a_forged_history(cli, run_copy: Path, command: tuple[str, ...]) -> None:
    _forge(run_copy, 2)
    assert "Merkle root" in cli("audit", "verify", str(run_copy)).stderr
    before = _snapshot(run_copy)
    result = cli(*(part.format(run=run_copy) for part in command))
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "signed head" in result.stderr or "Merkle root" in result.stderr
    assert _snapshot(run_copy) == before  # nothing written, nothing cut
    assert cli("audit", "verify", str(run_copy)).returncode == 3


def test_repair_refuses_a_forged_history_with_an_appended_entry(cli, run_copy: Path) -> None:
    """The laundering of issue 15: rewrite, re-chain, append one more chained entry; repair
    must not re-sign it all."""
    import hashlib

    _forge(run_copy, 2)
    last = json.loads(_lines(run_copy)[-1])
    seq = len(_lines(run_copy))
    body = entry_body(seq, last["ts"] + 1, "run_resumed", {"forged": True}, last["hash"])
    line = b'{"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'",' + body[1:] + b"\n"
    with (run_copy / "audit.jsonl").open("ab") as fh:
        fh.write(line)
    before = _snapshot(run_copy)
    result = cli("audit", "repair", str(run_copy))
    assert result.returncode == 3 and "refusing" in result.stderr, result.stderr
    assert _snapshot(run_copy) == before


def test_repair_never_cuts_a_signed_line(cli, run_copy: Path) -> None:
    """A signed last line cut short is tampering (or disk loss), not a crash: refuse, keep."""
    data = (run_copy / "audit.jsonl").read_bytes()
    (run_copy / "audit.jsonl").write_bytes(data[:-40])
    before = _snapshot(run_copy)
    result = cli("audit", "repair", str(run_copy))
    assert result.returncode == 3 and "refusing" in result.stderr, result.stderr
    assert _snapshot(run_copy) == before


def test_writers_refuse_unsigned_entries_until_repaired(cli, run_copy: Path) -> None:
    """Chained entries after the signed head (a crash before signing) are not signed silently
    by the next writer; repair re-signs them and says so."""
    import hashlib

    last = json.loads(_lines(run_copy)[-1])
    seq = len(_lines(run_copy))
    resumed = {"from_cycle": 4, "cycles": 1, "live_sha256": "a" * 64, "versions": {}}
    body = entry_body(seq, last["ts"] + 1, "run_resumed", resumed, last["hash"])
    line = b'{"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'",' + body[1:] + b"\n"
    with (run_copy / "audit.jsonl").open("ab") as fh:
        fh.write(line)
    before = _snapshot(run_copy)
    grant = cli("consent", "grant", str(run_copy), "--user", "x", "--purpose", "training")
    assert grant.returncode == 3 and "audit repair" in grant.stderr, grant.stderr
    assert _snapshot(run_copy) == before
    repaired = cli("audit", "repair", str(run_copy))
    assert repaired.returncode == 0, repaired.stderr
    assert cli("audit", "verify", str(run_copy)).returncode == 0
    shown = cli("audit", "show", str(run_copy), "--type", "repair", "--json")
    assert json.loads(shown.stdout.splitlines()[0])["payload"]["resigned_from_seq"] == seq


# -- the wrong key is refused before anything is written ------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("consent", "grant", "{run}", "--user", "u", "--purpose", "training", "--key-file", "{k}"),
        ("consent", "purge", "{run}", "--days", "1", "--key-file", "{k}"),
        ("run", "--resume", "{run}", "--cycles", "1", "--key-file", "{k}"),
        ("rollback", "{run}", "--to", "1", "--reason", "x", "--key-file", "{k}"),
        ("run", "--resume", "{run}", "--cycles", "1"),  # run.toml edited to name the other key
    ],
    ids=["consent-grant", "consent-purge", "run-resume", "rollback", "run-toml-edited"],
)
def test_another_runs_key_is_refused(
    cli, run_copy: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    from guarded_rl.audit.head import generate_signing_key

    other = tmp_path / "other.key"
    generate_signing_key(other)
    toml = run_copy / "run.toml"
    toml.write_text(toml.read_text().replace(str(tmp_path / "run.key"), str(other)))
    before = _snapshot(run_copy)
    result = cli(*(part.format(run=run_copy, k=other) for part in command))
    assert result.returncode == 2, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "\n" not in result.stderr.split("error:", 1)[1].strip()
    assert "not this run's key" in result.stderr and str(other) in result.stderr
    after = _snapshot(run_copy)
    assert after == before
    assert cli("audit", "verify", str(run_copy)).returncode == 0


def test_a_run_keeps_personal_data_private(pristine: Path) -> None:
    """Run directory 0700, store 0600, its key wrapped by a store key kept with the signing
    key outside the run directory (issue 15, item 17)."""
    import stat
    import tomllib

    from guarded_rl.rundir.paths import RunPaths

    assert stat.S_IMODE(pristine.stat().st_mode) == 0o700
    for path in pristine.glob("feedback.sqlite*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    recorded = tomllib.loads((pristine / "run.toml").read_text())["run"]["store_key_file"]
    store_key = RunPaths(pristine).recorded_store_key_file()
    assert Path(recorded) == store_key and store_key.is_file()
    assert pristine not in store_key.parents
    assert stat.S_IMODE(store_key.stat().st_mode) == 0o600


def test_a_swapped_feedback_store_fails_verification(cli, run_copy: Path, tmp_path: Path) -> None:
    """The store is bound to the run by the id `run_started` records (issue 15, item 23)."""
    from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore

    intact = cli("audit", "verify", str(run_copy))
    assert intact.returncode == 0 and "not covered by verify: run.toml and summary.json" in (
        intact.stdout
    )
    other = SQLiteFeedbackStore(tmp_path / "other.sqlite")
    other.close()
    for stale in run_copy.glob("feedback.sqlite*"):
        stale.unlink()
    shutil.copy2(tmp_path / "other.sqlite", run_copy / "feedback.sqlite")
    result = cli("audit", "verify", str(run_copy))
    _failed_at(result, "feedback.sqlite")
    assert "swapped store" in result.stderr


@pytest.mark.parametrize(
    "command", [("consent", "list", "{run}"), ("replay", "{run}", "--update", "1")]
)
def test_a_feedback_store_that_is_not_a_database_is_one_line(
    cli, run_copy: Path, command: tuple[str, ...]
) -> None:
    """A hostile or broken `feedback.sqlite` is named in one line, not a traceback (was)."""
    for stale in run_copy.glob("feedback.sqlite*"):
        stale.unlink()
    (run_copy / "feedback.sqlite").write_bytes(b"not a database " * 100)
    result = cli(*(arg.format(run=run_copy) for arg in command))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "feedback.sqlite" in line and "not a feedback store" in line


def test_resuming_a_copied_run_writes_only_to_the_copy(cli, pristine: Path, run_copy: Path) -> None:
    """Every path of a resumed run comes from the directory opened (issue 15, item 18)."""
    before = _snapshot(pristine)
    resumed = cli("run", "--resume", str(run_copy), "--cycles", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert _snapshot(pristine) == before
    summary = json.loads((run_copy / "summary.json").read_text())
    assert summary["first_cycle"] == 4 and summary["cycles"] == 1
    assert cli("audit", "verify", str(run_copy)).returncode == 0
