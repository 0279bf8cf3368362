"""`guarded-rl report` on real runs: the default run in HTML, Markdown and JSON with evidence
references that resolve to its log; a run without human approvals shows oversight as gaps
while one with a signed approval meets them; a tampered run says so on the report's first line;
bad input is one clear line and writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from guarded_rl.audit.log import read_log
from guarded_rl.report.frameworks import available_frameworks, load_framework

# human-oversight controls, by framework
OVERSIGHT = {"eu-ai-act": "Art. 14", "nist-ai-rmf": "GOVERN 3.2", "iso-42001": "A.9.2"}


def _report(cli: Any, run_dir: Path, out: Path, *args: str) -> Any:
    return cli("report", str(run_dir), "--out", str(out), *args)


def _json(cli: Any, run_dir: Path, out: Path, framework: str) -> dict[str, Any]:
    made = _report(cli, run_dir, out, "--framework", framework, "--format", "json")
    assert made.returncode == 0, made.stderr
    return json.loads(out.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_default_run_report_in_every_format_with_evidence_that_resolves(
    cli: Any, default_run: Path, tmp_path: Path
) -> None:
    before = sorted(p.name for p in default_run.iterdir())
    entries = {e.seq: e for e in read_log(default_run / "audit.jsonl")}
    for framework in available_frameworks():
        report = _json(cli, default_run, tmp_path / f"{framework}.json", framework)
        assert report["verification"]["ok"] and report["headline"].startswith("Audit log verified")
        spec = load_framework(framework)
        assert [c["id"] for c in report["controls"]] == [c.id for c in spec.control]
        for control in report["controls"]:
            found = [e["found"] for e in control["evidence"]]
            expected = "met" if all(found) else "partly met" if any(found) else "gap"
            if control["rule"] == "any":
                expected = "met" if any(found) else "gap"
            assert control["status"] == expected, control
            for evidence in control["evidence"]:
                assert evidence["count"] >= len(evidence["refs"])
                for ref in evidence["refs"]:
                    entry = entries[ref["seq"]]
                    assert (entry.hash, entry.type) == (ref["hash"], ref["type"])
        assert report["updates"]["proposed"] == 40
        assert len(report["fairness"]["output_probes"]) == 4
    md = _report(cli, default_run, tmp_path / "r.md", "--format", "md")
    assert md.returncode == 0, md.stderr
    text = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("**Audit log verified")
    assert "## Controls" in text and "| Art. 12 |" in text
    html = _report(cli, default_run, tmp_path / "r.html", "--format", "html")
    assert html.returncode == 0, html.stderr
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'id="controls"' in page and page.count("data:image/png;base64,") >= 4
    assert sorted(p.name for p in default_run.iterdir()) == before  # the run is not touched


def test_oversight_is_a_gap_without_human_approvals_and_met_with_a_signed_one(
    cli: Any, default_run: Path, tmp_path: Path
) -> None:
    for framework, control_id in OVERSIGHT.items():
        report = _json(cli, default_run, tmp_path / f"default-{framework}.json", framework)
        status = {c["id"]: c["status"] for c in report["controls"]}
        assert status[control_id] == "gap", framework

    reviewers = tmp_path / "reviewers.toml"
    for name, role in (("alice", "reviewer"), ("olivia", "operator")):
        made = cli(
            "review", "keygen", "--name", name, "--role", role, "--reviewers", str(reviewers),
            cwd=tmp_path,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    run_dir = tmp_path / "strict"
    policy = Path(__file__).resolve().parents[2] / "guarded_rl" / "policies" / "strict.toml"
    ran = cli(
        "run", "--policy", str(policy), "--reviewers", str(reviewers), "--cycles", "1",
        "--users", "16", "--operator-key", str(next(tmp_path.glob("olivia*.key"))),
        "--run-dir", str(run_dir),
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    key = next(tmp_path.glob("alice*.key"))
    approved = cli(
        "review", "approve", str(run_dir), "u0", "--reviewer", "alice", "--key", str(key),
        "--note", "probe outputs read, fine",
    )  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    for framework, control_id in OVERSIGHT.items():
        report = _json(cli, run_dir, tmp_path / f"strict-{framework}.json", framework)
        status = {c["id"]: c["status"] for c in report["controls"]}
        assert status[control_id] == "met", framework
        assert report["oversight"]["signatures_verified"] == 1
    # reproducibility: --replay re-executes the updates and reports each one's status
    replayed = _report(cli, run_dir, tmp_path / "replayed.json", "--format", "json", "--replay")
    assert replayed.returncode == 0, replayed.stderr
    lines = json.loads((tmp_path / "replayed.json").read_text())["reproducibility"]["replay"]
    assert [line["status"] for line in lines] == ["reproduced"], lines


def test_a_tampered_run_says_so_first_and_fails_unless_allowed(
    cli: Any, default_run: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "tampered"
    shutil.copytree(default_run, run_dir)
    log = run_dir / "audit.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if '"type":"update_proposed"' in line)
    # a payload changed after signing, into a shape the report does not expect
    lines[at] = lines[at].replace('"checks":[', '"checks":null,"was":[', 1)
    log.write_text("".join(lines), encoding="utf-8")

    out = tmp_path / "r.md"
    refused = _report(cli, run_dir, out, "--format", "md")
    assert refused.returncode == 3, refused.stderr
    assert "failed verification" in refused.stderr and len(refused.stderr.splitlines()) == 1
    first = out.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("**AUDIT LOG FAILED VERIFICATION"), first
    allowed = _report(cli, run_dir, tmp_path / "r.json", "--format", "json", "--allow-unverified")
    assert allowed.returncode == 0, allowed.stderr
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["headline"].startswith("AUDIT LOG FAILED VERIFICATION")
    assert {c["status"] for c in report["controls"]} == {"unverified"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--framework", "sox-404"], "--framework = 'sox-404': unknown framework"),
        (["--framework", "{bad}"], "--framework"),
        (["--format", "pdf"], "--format"),
    ],
)
def test_bad_framework_or_format_is_one_line_and_writes_nothing(
    cli: Any, default_run: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    out = tmp_path / "r.html"
    result = _report(cli, default_run, out, *args)
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_malformed_framework_file_and_missing_run_dir(
    cli: Any, default_run: Path, tmp_path: Path
) -> None:
    framework = tmp_path / "mine.toml"
    framework.write_text('name = "mine"\ntitle = "Mine"\nversion = "1"\ncontrol = []\n')
    out = tmp_path / "r.json"
    bad = _report(cli, default_run, out, "--framework", str(framework))
    assert bad.returncode == 2 and "mine.toml" in bad.stderr and "control" in bad.stderr
    assert len(bad.stderr.splitlines()) == 1 and not out.exists()
    missing = _report(cli, tmp_path / "nope", out)
    assert missing.returncode == 2 and "no such run directory" in missing.stderr
    assert not out.exists()
