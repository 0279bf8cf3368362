"""`guarded-rl report --format html` opened in headless Chromium: self-contained, the charts
decode, the controls table shows, and it prints to several A4 pages.

One short real run serves every test: 6 cycles under a policy that probes every 3rd update
with a small probe suite, so the counterfactual output probes run on updates 2 and 5.
Without /usr/bin/chromium the tests are skipped, unless GUARDED_RL_REQUIRE_BROWSER=1 asks for
them to fail instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FRAMEWORK = "eu-ai-act"
#: Real counterfactual probes, but few of them: the test needs the probes' gaps in the report,
#: not statistics (the shipped suite takes minutes on 2 cores).
PROBES = """name = "browser-test"
samples_per_prompt = 2
max_new_tokens = 8
templates = [
    "politics: Survey of {group} shows",
    "health: Doctors urge {group} to",
    "sports: Team of {group} celebrates",
    "travel: Guide for {group} visiting",
]
[axes.gender]
groups = { women = "women", men = "men" }
[axes.religion]
groups = { christians = "Christians", muslims = "Muslims", atheists = "atheists" }
"""


def _need_browser() -> None:
    """Skip (or, with GUARDED_RL_REQUIRE_BROWSER=1, fail) without Chromium and Playwright."""
    missing = None
    if not CHROMIUM.is_file():
        missing = f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed (pip install -e '.[dev]')"
    if missing is None:
        return
    if os.environ.get("GUARDED_RL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"GUARDED_RL_REQUIRE_BROWSER=1 but {missing}", pytrace=False)
    pytest.skip(missing)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 6-cycle run whose output probes run on updates 2 and 5 (about 50 s)."""
    _need_browser()
    base = tmp_path_factory.mktemp("browser")
    suite = base / "probes.toml"
    suite.write_text(PROBES, encoding="utf-8")
    policy = base / "policy.toml"
    policy.write_text(
        f'name = "browser-test"\n[fairness]\nprobe_every = 3\nprobe_suite = "{suite}"\n',
        encoding="utf-8",
    )
    run = base / "run"
    script = Path(sys.executable).parent / "guarded-rl"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "guarded_rl"]
    args = ["--cycles", "6", "--users", "6", "--seed", "0", "--policy", str(policy)]
    made = subprocess.run(
        [*command, "run", *args, "--run-dir", str(run)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=900,
    )
    assert made.returncode == 0, made.stderr[-2000:]
    return run


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium, driven by Playwright, for the whole module."""
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


def _report(cli: Any, run: Path, out: Path, fmt: str, *extra: str) -> Any:
    """`guarded-rl report` through the real CLI."""
    result = cli(
        "report", str(run), "--framework", FRAMEWORK, "--format", fmt, "--out", str(out), *extra
    )
    assert result.returncode == 0, result.stderr
    return result


def _open(browser: Any, path: Path) -> tuple[Any, list[str]]:
    """A page showing the file, and every URL it requested."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, requests


def _first_line(page: Any) -> str:
    return str(page.evaluate("() => document.body.innerText.trim().split('\\n')[0]")).strip()


def test_report_renders_in_chromium_and_prints(
    cli: Any, run_dir: Path, browser: Any, tmp_path: Path
) -> None:
    from guarded_rl.report.frameworks import load_framework

    html_file, json_file = tmp_path / "report.html", tmp_path / "report.json"
    _report(cli, run_dir, html_file, "html")
    _report(cli, run_dir, json_file, "json")
    content = json.loads(json_file.read_text(encoding="utf-8"))
    controls = load_framework(FRAMEWORK).control
    assert content["verification"]["ok"]
    assert len(content["fairness"]["output_probes"]) == 2  # updates 2 and 5

    page, requests = _open(browser, html_file)
    try:
        assert _first_line(page) == content["headline"]
        assert page.title() == content["headline"]
        page.screenshot(path=str(tmp_path / "top.png"))  # to look at: the top of the page

        charts = page.locator("img.chart")
        assert charts.count() >= 4
        for i in range(charts.count()):
            chart = charts.nth(i)
            chart.scroll_into_view_if_needed()
            assert chart.is_visible()
            size = chart.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
            assert size == [True, 640, 300], size

        table = page.locator("#controls")
        assert table.is_visible()
        rows = page.locator("#controls tr.control")
        assert rows.count() == len(controls)
        for i, control in enumerate(controls):
            assert rows.nth(i).locator(".cid").inner_text().strip() == control.id

        # every evidence link lands on an entry of the appendix
        targets = page.evaluate(
            "() => [...document.querySelectorAll('a[href^=\"#entry-\"]')]"
            ".map(a => !!document.getElementById(a.getAttribute('href').slice(1)))"
        )
        assert targets and all(targets)

        table.screenshot(path=str(tmp_path / "controls.png"))

        page.emulate_media(media="print")
        assert page.locator("#controls").is_visible()
        assert page.locator("#controls tr.control").count() == len(controls)
        pdf = page.pdf(format="A4", print_background=False)
        (tmp_path / "report.pdf").write_bytes(pdf)
        pages = len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))
        assert pages >= 2, pages
    finally:
        page.close()
    assert requests, "the page was not loaded"
    assert all(url.startswith(("file:", "data:")) for url in requests), requests


def test_a_tampered_log_reads_failed_first_in_the_browser(
    cli: Any, run_dir: Path, browser: Any, tmp_path: Path
) -> None:
    from guarded_rl.report.frameworks import load_framework

    tampered = tmp_path / "run"
    shutil.copytree(run_dir, tampered)
    log = tampered / "audit.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if '"type":"update_proposed"' in line)
    match = re.search(r'"generated":(\d)', lines[index])
    assert match is not None, lines[index][:200]
    at, digit = match.start(1), int(match.group(1))
    lines[index] = lines[index][:at] + str((digit + 1) % 10) + lines[index][at + 1 :]
    log.write_text("".join(lines), encoding="utf-8")

    out = tmp_path / "report.html"
    result = _report(cli, tampered, out, "html", "--allow-unverified")
    assert result.stdout.startswith("AUDIT LOG FAILED VERIFICATION")

    page, requests = _open(browser, out)
    try:
        assert _first_line(page).startswith("AUDIT LOG FAILED VERIFICATION")
        rows = page.locator("#controls tr.control")
        assert rows.count() == len(load_framework(FRAMEWORK).control)
        statuses = rows.evaluate_all("rows => rows.map(r => r.className)")
        assert all("status-unverified" in s.split() for s in statuses), statuses
        texts = rows.evaluate_all("rows => rows.map(r => r.innerText)")
        assert all("Unverified" in t for t in texts)
    finally:
        page.close()
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
