"""Issue acceptance through the real CLI: human-approval gates, the persistent review queue and
signed four-eyes decisions (`guarded-rl review`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from guarded_rl.audit.log import read_log

ROOT = Path(__file__).resolve().parents[2]
STRICT = ROOT / "guarded_rl" / "policies" / "strict.toml"


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alice, bob, dave (reviewers), carol (observer) and olivia (operator, who starts the
    runs with her key: four-eyes needs to know who that is) registered; mallory's key is not."""
    from guarded_rl.approval.reviewers import create_reviewer_key

    home = tmp_path_factory.mktemp("reviewers")
    for name, role in (("alice", "reviewer"), ("bob", "reviewer"), ("dave", "reviewer"),
                       ("carol", "observer"), ("olivia", "operator")):  # fmt: skip
        create_reviewer_key(name, role, home / f"{name}.key", home / "reviewers.toml")
    create_reviewer_key("mallory", "reviewer", home / "mallory.key")
    return home


def _policy(path: Path, people: Path, **gate: object) -> Path:
    """A policy file sending every update to review, without the costly output probes."""
    lines = ["[fairness]", "probe_every = 0", "[gate]", 'human_review = "always"']
    lines.append(f'reviewers = "{people / "reviewers.toml"}"')
    lines += [f"{k} = {json.dumps(v)}" for k, v in gate.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _operator(people: Path, name: str = "olivia") -> list[str]:
    """Run arguments proving who starts (or resumes) the run."""
    return ["--operator-key", str(people / f"{name}.key")]


def _queue(cli, run_dir: Path, *extra: str) -> list[dict[str, object]]:
    result = cli("review", "list", str(run_dir), "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["proposals"]


def _decide(cli, people: Path, run_dir: Path, verb: str, pid: str, name: str, *extra: str):
    key = people / f"{name}.key"
    return cli("review", verb, str(run_dir), pid, "--reviewer", name, "--key", str(key), *extra)


def _types(run_dir: Path) -> list[str]:
    return [e.type for e in read_log(run_dir / "audit.jsonl")]


def _refused_without_trace(result, run_dir: Path, before: bytes, *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and "Traceback" not in line
    for needle in needles:
        assert needle in line, line
    assert (run_dir / "audit.jsonl").read_bytes() == before  # nothing recorded
    assert (
        not list((run_dir / "review" / "inbox").glob("*.json"))
        if (run_dir / "review" / "inbox").exists()
        else True
    )


def test_strict_policy_holds_every_update_and_one_signed_approval_applies_it(
    cli, people: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "strict"
    result = cli(
        "run", "--policy", str(STRICT), "--reviewers", str(people / "reviewers.toml"),
        "--cycles", "2", "--users", "16", *_operator(people), "--run-dir", str(run_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    proposed = [o for o in summary["outcome_by_cycle"] if o is not None]
    assert proposed and set(proposed) == {"pending"}  # every update waits for a person
    assert summary["updates"]["applied"] == 0 and "update_applied" not in _types(run_dir)
    assert "await review" in result.stdout
    pending = _queue(cli, run_dir)
    assert [p["status"] for p in pending] == ["pending"] * len(proposed)
    first = str(pending[0]["id"])

    # a decision signed with a key nobody registered is refused and leaves no trace
    before = (run_dir / "audit.jsonl").read_bytes()
    stranger = _decide(cli, people, run_dir, "approve", first, "mallory")
    _refused_without_trace(stranger, run_dir, before, "mallory", "--reviewer")
    # ... as is a registered name with somebody else's key
    wrong_key = cli(
        "review", "approve", str(run_dir), first, "--reviewer", "alice",
        "--key", str(people / "mallory.key"),
    )  # fmt: skip
    _refused_without_trace(wrong_key, run_dir, before, "not the one registered for alice")

    # ... and so is a decision mallory signed and somebody submits
    forged = tmp_path / "mallory.json"
    _sign_as_mallory(people, run_dir, pending[0], forged)
    submitted = cli("review", "submit", str(run_dir), str(forged))
    _refused_without_trace(submitted, run_dir, before, "not a registered reviewer's")

    approved = _decide(cli, people, run_dir, "approve", first, "alice", "--note", "looks fine")
    assert approved.returncode == 0, approved.stderr
    assert f"{first}: applied" in approved.stdout
    verified = cli("audit", "verify", str(run_dir))
    assert verified.returncode == 0 and "1 reviewer signature(s) verified" in verified.stdout
    entries = read_log(run_dir / "audit.jsonl")
    tail = [e.type for e in entries[len(before.splitlines()) :]]
    assert tail[:4] == ["review_decision", "update_approved", "update_applied", "checkpoint_saved"]
    decision = next(e for e in entries if e.type == "review_decision").payload
    assert decision["decision"]["body"]["note"] == "looks fine"
    assert decision["decision"]["body"]["reviewer"].startswith("rk-")
    assert "alice" not in (run_dir / "audit.jsonl").read_text()  # reviewers by fingerprint only
    candidate = next(p for p in pending if p["id"] == first)["candidate_sha256"]
    applied = next(e for e in entries if e.type == "update_applied").payload
    assert applied["model_sha256"] == candidate
    # the other proposals were made from the weights that are no longer live
    statuses = {p["id"]: p["status"] for p in _queue(cli, run_dir, "--all")}
    assert statuses[first] == "applied"
    assert all(s == "superseded" for pid, s in statuses.items() if pid != first)
    explained = cli("audit", "explain", str(run_dir), str(pending[0]["cycle"]))
    assert "approve by reviewer rk-" in explained.stdout and "looks fine" in explained.stdout


def _sign_as_mallory(people: Path, run_dir: Path, proposal: dict[str, object], out: Path) -> None:
    from guarded_rl.approval.decision import sign_decision
    from guarded_rl.approval.reviewers import load_reviewer_key
    from guarded_rl.approval.run_review import RunReview, write_decision

    signed = sign_decision(
        load_reviewer_key(people / "mallory.key"),
        origin=RunReview.read(run_dir).origin,
        proposal_id=str(proposal["id"]),
        candidate_sha256=str(proposal["candidate_sha256"]),
        decision="approve",
        note="",
    )
    write_decision(out, signed)


def test_four_eyes_operator_must_prove_their_key_so_a_name_cannot_bypass_it(
    cli, people: Path, tmp_path: Path
) -> None:
    """`--operator someone-else` used to let alice start a run and approve it herself: a name
    proves nothing, so with four-eyes and reviewers the start must be signed with the
    operator's own reviewer key, and that key's owner cannot approve."""
    policy = _policy(tmp_path / "p.toml", people)
    run_dir = tmp_path / "run"
    named = cli(
        "run", "--policy", str(policy), "--cycles", "1", "--users", "8",
        "--operator", "someone-else", "--run-dir", str(run_dir),
    )  # fmt: skip
    assert named.returncode == 2, named.stderr
    line = named.stderr.strip()
    assert "--operator-key" in line and "four-eyes" in line and "\n" not in line
    assert not run_dir.exists()  # refused before anything was written
    lying = cli(
        "run", "--policy", str(policy), "--cycles", "1", "--users", "8",
        *_operator(people, "alice"), "--operator", "bob", "--run-dir", str(run_dir),
    )  # fmt: skip
    assert lying.returncode == 2 and "alice's" in lying.stderr, lying.stderr
    assert not run_dir.exists()
    stranger = cli(
        "run", "--policy", str(policy), "--cycles", "1", "--users", "8",
        *_operator(people, "mallory"), "--run-dir", str(run_dir),
    )  # fmt: skip
    assert stranger.returncode == 2 and "not in the reviewers file" in stranger.stderr
    assert not run_dir.exists()


def test_four_eyes_two_different_reviewers_and_not_the_operator(
    cli, people: Path, tmp_path: Path
) -> None:
    policy = _policy(tmp_path / "two.toml", people, approvals_required=2)
    run_dir = tmp_path / "run"
    result = cli(
        "run", "--policy", str(policy), "--cycles", "1", "--users", "8",
        *_operator(people, "alice"), "--run-dir", str(run_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [proposal] = _queue(cli, run_dir)
    pid = str(proposal["id"])
    before = (run_dir / "audit.jsonl").read_bytes()

    own = _decide(cli, people, run_dir, "approve", pid, "alice")
    _refused_without_trace(own, run_dir, before, "operator", "four-eyes")

    # a decision signed elsewhere (--out), then changed, is refused; so are unknown proposals
    # and notes with personal data (the audit log keeps none)
    signed = tmp_path / "decision.json"
    made = _decide(
        cli, people, run_dir, "reject", pid, "bob", "--note", "odd", "--out", str(signed)
    )
    assert made.returncode == 0 and oct(signed.stat().st_mode & 0o777) == "0o600"
    assert (run_dir / "audit.jsonl").read_bytes() == before  # --out records nothing
    data = json.loads(signed.read_text())
    data["body"]["decision"] = "approve"  # a rejection turned into an approval
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(data))
    tampered = cli("review", "submit", str(run_dir), str(forged))
    _refused_without_trace(tampered, run_dir, before, "signature does not verify")
    unknown = _decide(cli, people, run_dir, "approve", "u99", "bob")
    _refused_without_trace(unknown, run_dir, before, "u99", f"a pending proposal: ['{pid}']")
    pii = _decide(cli, people, run_dir, "approve", pid, "bob", "--note", "ask bob@example.org")
    _refused_without_trace(pii, run_dir, before, "personal data")

    observer = _decide(cli, people, run_dir, "approve", pid, "carol")
    _refused_without_trace(observer, run_dir, before, "role", "observer")

    first = _decide(cli, people, run_dir, "approve", pid, "bob")
    assert first.returncode == 0 and "approved 1 of 2" in first.stdout, first.stderr
    assert "update_applied" not in _types(run_dir)
    after_bob = (run_dir / "audit.jsonl").read_bytes()
    twice = _decide(cli, people, run_dir, "approve", pid, "bob")
    _refused_without_trace(twice, run_dir, after_bob, "counts once")
    assert "update_applied" not in _types(run_dir)

    second = _decide(cli, people, run_dir, "approve", pid, "dave")
    assert second.returncode == 0 and f"{pid}: applied" in second.stdout, second.stderr
    types = _types(run_dir)
    assert types.count("review_decision") == 2 and types.count("update_applied") == 1
    approved = next(e for e in read_log(run_dir / "audit.jsonl") if e.type == "update_approved")
    assert len(set(approved.payload["approvals"])) == 2
    assert cli("audit", "verify", str(run_dir)).returncode == 0

    # decided: nothing more is accepted, not even the genuine decision signed earlier
    late = cli("review", "submit", str(run_dir), str(signed))
    _refused_without_trace(late, run_dir, (run_dir / "audit.jsonl").read_bytes(), "already")


def _start(cli_args: list[str]) -> subprocess.Popen[str]:
    """The run in the background (its own process group, so a kill takes all of it)."""
    import shutil
    import sys

    script = Path(sys.executable).parent / "guarded-rl"
    command = [str(script)] if script.exists() else [shutil.which("guarded-rl") or "guarded-rl"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.Popen(
        [*command, *cli_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def _pending_ids(run_dir: Path) -> list[str]:
    """In-process (polling through the CLI would cost a second per look)."""
    from guarded_rl.approval.run_review import RunReview
    from guarded_rl.errors import GuardedRLError

    try:
        queue = RunReview.read(run_dir).queue
    except GuardedRLError:  # not started yet
        return []
    return [p.proposal_id for p in queue.values() if p.status == "pending"]


def _wait_for_pending(cli, run_dir: Path, pid: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"run ended early: {proc.communicate()}")
        if pid in _pending_ids(run_dir):
            return
        time.sleep(0.5)
    pytest.fail("no pending proposal appeared")


def test_wait_mode_applies_a_live_approval_and_a_pending_proposal_survives_a_kill(
    cli, people: Path, tmp_path: Path
) -> None:
    policy = _policy(tmp_path / "wait.toml", people, on_pending="wait")
    run_dir = tmp_path / "run"
    args = ["run", "--policy", str(policy), "--cycles", "3", "--users", "6", *_operator(people)]
    proc = _start([*args, "--run-dir", str(run_dir)])
    try:
        _wait_for_pending(cli, run_dir, "u0", proc)
        time.sleep(1.5)
        assert proc.poll() is None  # waiting, not running more cycles
        assert "update_proposed" in _types(run_dir)
        assert sum(t == "update_proposed" for t in _types(run_dir)) == 1
        # the run holds the lock: the checked decision goes to its inbox, the loop applies it
        live = _decide(cli, people, run_dir, "approve", "u0", "bob", "--note", "ok")
        assert live.returncode == 0 and "queued" in live.stdout, live.stderr
        _wait_for_pending(cli, run_dir, "u1", proc)
        os.killpg(proc.pid, signal.SIGKILL)  # killed while waiting for u1
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    types = _types(run_dir)
    at = types.index("review_decision")
    assert types[at : at + 3] == ["review_decision", "update_approved", "update_applied"]
    assert types.index("update_applied") < [i for i, t in enumerate(types)
                                            if t == "update_proposed"][1]  # fmt: skip

    # after the kill: u1 is still pending, and can be decided and resumed from
    assert [p["id"] for p in _queue(cli, run_dir)] == ["u1"]
    candidate = _queue(cli, run_dir)[0]["candidate_sha256"]
    ok = _decide(cli, people, run_dir, "approve", "u1", "dave")
    assert ok.returncode == 0 and "u1: applied" in ok.stdout, ok.stderr
    resumed = cli("run", "--resume", str(run_dir), "--cycles", "1", *_operator(people))
    assert resumed.returncode == 0, resumed.stderr
    entries = read_log(run_dir / "audit.jsonl")
    assert [e.payload["live_sha256"] for e in entries if e.type == "run_resumed"] == [candidate]
    assert cli("audit", "verify", str(run_dir)).returncode == 0


def test_wait_mode_stops_after_its_timeout_and_continue_mode_applies_in_the_loop(
    cli, people: Path, tmp_path: Path
) -> None:
    waiting = _policy(
        tmp_path / "w.toml",
        people,
        on_pending="wait",
        wait_timeout_seconds=1.5,
        review_expiry_hours=0.001,  # 3.6 s
    )
    run_dir = tmp_path / "timeout"
    result = cli(
        "run", "--policy", str(waiting), "--cycles", "3", "--users", "6", *_operator(people),
        "--run-dir", str(run_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["outcome"] == "review_timeout" and summary["cycles"] == 1
    assert summary["review"]["pending"] == ["u0"]
    assert "review wait timed out" in result.stdout
    # ... and the proposal it waited for expires
    [proposal] = _queue(cli, run_dir)
    time.sleep(max(0.0, float(proposal["expires_at"]) - time.time()) + 0.2)
    expired = _decide(cli, people, run_dir, "approve", "u0", "bob")
    _refused_without_trace(expired, run_dir, (run_dir / "audit.jsonl").read_bytes(), "expired")

    going = _policy(tmp_path / "c.toml", people, on_pending="continue")
    run_dir = tmp_path / "continue"
    proc = _start(
        ["run", "--policy", str(going), "--cycles", "15", "--users", "3", *_operator(people),
         "--run-dir", str(run_dir)]
    )  # fmt: skip
    try:
        _wait_for_pending(cli, run_dir, "u1", proc)  # the loop went on while u0 waited
        live = _decide(cli, people, run_dir, "approve", "u0", "bob")
        assert live.returncode == 0 and "queued" in live.stdout, live.stderr
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "review: u0: applied" in out
    entries = read_log(run_dir / "audit.jsonl")
    applied = [e.payload for e in entries if e.type == "update_applied"]
    assert [a["proposal_id"] for a in applied] == ["u0"]
    later = [e.payload for e in entries if e.type == "update_pending"]
    after = [p for p in later if p["base_sha256"] == applied[0]["model_sha256"]]
    assert after  # cycles after the approval proposed from the newly live weights
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["updates"]["applied_after_review"] == 1
