"""Every example runs (tiny budgets) and prints what it promises."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_linear_generator_learns() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "linear_generator.py"), "--steps", "120"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r"like-rate before ([\d.]+) after ([\d.]+)", result.stdout)
    assert match, result.stdout
    before, after = map(float, match.groups())
    assert after > before + 0.15


def test_minimal_loop_learns_under_guard_and_adds_few_lines(cli, tmp_path: Path) -> None:
    """The example runs guarded and writes a verifying run; without its `# guard` lines (the
    step line back to `optimizer.step()`) it is the plain loop, and runs too."""
    source = (EXAMPLES / "minimal_loop.py").read_text(encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "minimal_loop.py"), "--steps", "80"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r"like-rate before ([\d.]+) after ([\d.]+)", result.stdout)
    assert match, result.stdout
    before, after = map(float, match.groups())
    assert after > before + 0.15
    run_dir = tmp_path / re.search(r"run directory: (\S+)", result.stdout).group(1)  # type: ignore[union-attr]
    verified = cli("audit", "verify", str(run_dir))
    assert verified.returncode == 0, verified.stderr
    explained = cli("audit", "explain", str(run_dir), "5")
    assert "optimizer step of the guarded training loop" in explained.stdout

    code_lines = [line for line in source.splitlines() if "# guard" in line and "`" not in line]
    assert len(code_lines) <= 10
    plain = "\n".join(
        line.split("guard.step(")[0] + "optimizer.step()" if "guard.step(" in line else line
        for line in source.splitlines()
        if "# guard" not in line or "guard.step(" in line
    )
    assert "guard" not in plain.replace("guarded", "").replace("# guard", "")
    (tmp_path / "plain.py").write_text(plain, encoding="utf-8")
    unguarded = subprocess.run(
        [sys.executable, str(tmp_path / "plain.py"), "--steps", "80"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert unguarded.returncode == 0, unguarded.stderr
    assert "like-rate before" in unguarded.stdout and "run directory" not in unguarded.stdout

    doc = (EXAMPLES.parent / "docs" / "integrations" / "torch.md").read_text(encoding="utf-8")
    added = [line[1:] for line in doc.splitlines() if line.startswith("+")]
    assert added == code_lines  # the how-to shows exactly the lines that run


def test_driving_runs_shielded_and_guarded(cli, tmp_path: Path) -> None:
    """Smoke budget: the shield acts, every update is gated, episodes reach the log."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "driving.py"), "--updates", "4", "--episodes", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"mean return before -?[\d.]+ after -?[\d.]+", result.stdout), result.stdout
    interventions = re.search(r"shield interventions (\d+) in (\d+) steps", result.stdout)
    assert interventions and int(interventions.group(1)) > 0, result.stdout
    run_dir = tmp_path / re.search(r"run directory: (\S+)", result.stdout).group(1)  # type: ignore[union-attr]
    assert cli("audit", "verify", str(run_dir)).returncode == 0
    shown = cli("audit", "show", str(run_dir), "--type", "episodes", "--json")
    assert shown.returncode == 0 and '"episodes": 2' in shown.stdout


def test_gymnasium_how_to_shows_lines_of_the_example() -> None:
    source = (EXAMPLES / "driving.py").read_text(encoding="utf-8")
    doc = (EXAMPLES.parent / "docs" / "integrations" / "gymnasium.md").read_text(encoding="utf-8")
    added = [line[1:].strip() for line in doc.splitlines() if line.startswith("+")]
    assert added and all(line in source for line in added), [a for a in added if a not in source]


def _plain(source: str) -> str:
    """An example without its `# guard` lines: `code  # guard: was X` lines go back to X."""
    lines = []
    for line in source.splitlines():
        if "# guard: was " in line:
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(indent + line.split("# guard: was ", 1)[1])
        elif "# guard" not in line or "`" in line:
            lines.append(line)
    return "\n".join(lines)


def _run_example(name: str, *args: str, cwd: Path, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        input=stdin,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _run_dir(stdout: str, cwd: Path) -> Path:
    match = re.search(r"run directory: (\S+)", stdout)
    assert match, stdout
    return cwd / match.group(1)


def test_trl_grpo_example_runs_guarded_and_its_how_to_shows_its_lines(cli, tmp_path: Path) -> None:
    """Smoke budget: two GRPO steps, each gated and on the record with its screen counts."""
    out = _run_example("trl_grpo.py", "--steps", "2", "--out", "trl", cwd=tmp_path)
    assert re.search(r"like-rate before [\d.]+ after [\d.]+", out), out
    assert re.search(r"gate: \{'approved': 2\}", out), out
    assert re.search(r"screen: \{'completions': 32", out), out
    run_dir = _run_dir(out, tmp_path)
    assert cli("audit", "verify", str(run_dir)).returncode == 0
    shown = cli("audit", "show", str(run_dir), "--type", "update_proposed", "--json")
    assert shown.returncode == 0 and '"screened"' in shown.stdout

    source = (EXAMPLES / "trl_grpo.py").read_text(encoding="utf-8")
    guard_lines = [line for line in source.splitlines() if "# guard" in line and "`" not in line]
    doc = (EXAMPLES.parent / "docs" / "integrations" / "trl.md").read_text(encoding="utf-8")
    diff = doc.split("```diff\n", 1)[1].split("```", 1)[0].splitlines()
    added = [line[1:] for line in diff if line.startswith("+")]
    removed = [line[1:] for line in diff if line.startswith("-")]
    assert added == guard_lines  # the how-to shows exactly the lines that run
    plain = _plain(source)
    assert all(line in plain.splitlines() for line in removed)
    assert "guard" not in plain.replace("guarded", "").replace("# guard", "")
    compile(plain, "plain_trl_grpo.py", "exec")


def test_news_feed_example_learns_from_its_own_readers(cli, tmp_path: Path) -> None:
    out = _run_example("news_feed.py", "--cycles", "2", "--run-dir", "feed", cwd=tmp_path)
    assert len(re.findall(r"^cycle +\d+ +like-rate [\d.]+", out, re.MULTILINE)) == 2, out
    assert re.search(r"updates applied \d+ pending \d+ rejected \d+", out), out
    run_dir = _run_dir(out, tmp_path)
    assert cli("audit", "verify", str(run_dir)).returncode == 0
    # readers who never consented were asked nothing of the store: only pseudonyms are kept
    granted = cli("audit", "show", str(run_dir), "--type", "consent_granted", "--json")
    assert granted.returncode == 0 and "reader-" not in granted.stdout
    assert '"subject": "p-' in granted.stdout


def test_news_feed_example_asks_the_person_at_the_terminal(cli, tmp_path: Path) -> None:
    answers = "y\nn\ns\ny\n" + "q\n"
    out = _run_example(
        "news_feed.py",
        "--interactive",
        "--cycles",
        "2",
        "--run-dir",
        "me",
        cwd=tmp_path,
        stdin=answers,
    )
    assert out.count("like it?") >= 4, out
    run_dir = _run_dir(out, tmp_path)
    assert cli("audit", "verify", str(run_dir)).returncode == 0


def test_readme_snippets_are_the_code_that_runs() -> None:
    """Each README snippet is copied from its example: chunks between `...` lines appear in
    the example as consecutive lines, in order. Every scenario example has one."""
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    snippets = re.findall(r"<!-- snippet: (\S+) -->\n```python\n(.*?)```", readme, re.S)
    named = {path for path, _ in snippets}
    scenarios = {f"examples/{p.name}" for p in EXAMPLES.glob("*.py")} - {
        "examples/linear_generator.py"
    }
    assert named == scenarios
    for path, block in snippets:
        source = [line.rstrip() for line in (EXAMPLES.parent / path).read_text().splitlines()]
        at = 0
        chunks = [c.strip("\n").splitlines() for c in re.split(r"^\.\.\.$", block, flags=re.M)]
        for chunk in chunks:
            starts = [
                i
                for i in range(at, len(source) - len(chunk) + 1)
                if source[i : i + len(chunk)] == chunk
            ]
            assert starts, f"{path}: README snippet lines not in the example:\n" + "\n".join(chunk)
            at = starts[0] + len(chunk)


def _example(name: str, *args: str, block: str | None = None, cwd: Path | None = None):
    """Run an example; `block` makes that module fail to import, as when it is not installed."""
    env = dict(os.environ)
    if block is not None:
        assert cwd is not None
        stub = cwd / "blocked"
        stub.mkdir(exist_ok=True)
        message = f"No module named {block!r}"
        (stub / f"{block}.py").write_text(
            f"raise ModuleNotFoundError({message!r}, name={block!r})\n"
        )
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(stub), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=cwd,
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_help_gives_the_docstrings_first_paragraph_whole(name: str) -> None:
    result = _example(name, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    description = " ".join(result.stdout.split("\n\n")[1].split())
    doc = ast.get_docstring(ast.parse((EXAMPLES / name).read_text(encoding="utf-8")))
    assert doc
    assert description == " ".join(doc.split("\n\n")[0].split())
    assert description.endswith("."), description


@pytest.mark.parametrize(("name", "module"), [("driving.py", "gymnasium"), ("trl_grpo.py", "trl")])
def test_example_without_its_extra_says_which_to_install(
    name: str, module: str, tmp_path: Path
) -> None:
    helped = _example(name, "--help", block=module, cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr[-2000:]
    assert "usage:" in helped.stdout
    result = _example(name, block=module, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert module in lines[0] and f"pip install 'guarded-rl[{module}]'" in lines[0], lines[0]
