"""examples/generative_art.py runs guarded: the screen blocks, the gallery holds valid PNGs,
the run verifies, and a short run learns the viewers' taste."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "generative_art.py"
NUMBER = r"(\d+\.\d+)"
STYLE = r"\[([\d., ]+)\]"


def run_example(cwd: Path, *args: str) -> dict[str, Any]:
    """Run the example; return what its output lines promise, parsed."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    like = re.search(rf"^like-rate before {NUMBER} after {NUMBER}$", out, re.M)
    style = re.search(rf"^mean style before {STYLE} after {STYLE}$", out, re.M)
    blocked = re.search(r"^blocked (\d+) of (\d+) images \(photosensitivity\)$", out, re.M)
    steps = re.search(r"^steps approved (\d+) pending (\d+) rejected (\d+)$", out, re.M)
    gallery = re.search(r"^gallery: (.+)$", out, re.M)
    assert like and style and blocked and steps and gallery, out
    assert out.rstrip().splitlines()[-1].startswith("run directory: "), out
    return {
        "like": [float(x) for x in like.groups()],
        "style_before": [float(x) for x in style.group(1).split(",")],
        "style_after": [float(x) for x in style.group(2).split(",")],
        "blocked": [float(x) for x in blocked.groups()],
        "steps": [float(x) for x in steps.groups()],
        "gallery": gallery.group(1),
        "run_dir": out.rstrip().splitlines()[-1].removeprefix("run directory: "),
    }


def png_size(path: Path) -> tuple[int, int]:
    """Check a PNG file the way a decoder would (signature, chunk CRCs, IHDR first, IEND
    last, 8-bit RGB, IDAT inflating to one filter byte + RGB row per line); its size."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    chunks, pos = [], 8
    while pos < len(data):
        length, tag = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(tag + body) & 0xFFFFFFFF == crc, (path, tag)
        chunks.append((tag, body))
        pos += 12 + length
    assert pos == len(data) and chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 2, 0)
    raw = zlib.decompress(b"".join(body for tag, body in chunks if tag == b"IDAT"))
    assert len(raw) == height * (1 + width * 3)
    assert all(raw[row * (1 + width * 3)] <= 4 for row in range(height))  # filter types
    return width, height


def test_generative_art_screens_saves_pngs_and_verifies(cli, tmp_path: Path) -> None:
    """Smoke budget: the initial policy trips the photosensitivity screen, every step is
    gated, the gallery's PNGs are valid, and the signed log (with the gallery inside the run
    directory) verifies and holds the screen's counts."""
    out = run_example(tmp_path, "--steps", "6")
    blocked, images = out["blocked"]
    assert 0 < blocked < images == 6 * 32
    assert sum(out["steps"]) == 6
    assert all(0.0 <= x <= 1.0 for x in out["like"])
    assert len(out["style_before"]) == len(out["style_after"]) == 6

    run_dir = tmp_path / out["run_dir"]
    gallery = tmp_path / out["gallery"]
    pngs = sorted(gallery.glob("*.png"))
    assert gallery.parent == run_dir and len(pngs) >= 8, pngs
    assert {p.name for p in pngs} >= {"step0000-0.png", "step0005-0.png", "mean-style-after.png"}
    for png in pngs:
        assert png_size(png) == (64, 64)

    verified = cli("audit", "verify", str(run_dir))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    logged = 0
    for line in (run_dir / "audit.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry["type"] == "update_proposed":
            logged += entry["payload"]["screened"].get("photosensitive_blocked", 0)
    assert logged == blocked


def test_generative_art_learns_a_warm_style(tmp_path: Path) -> None:
    """40 steps (about 15 s): the like-rate rises well beyond noise and the hue turns warm
    (seed 0 gives 0.09 -> 0.65 and hue 0.50 -> 0.18)."""
    out = run_example(tmp_path, "--steps", "40", "--seed", "0", "--run-dir", "art")
    before, after = out["like"]
    assert after > before + 0.3, out
    assert out["style_after"][0] < out["style_before"][0] - 0.15, out  # hue towards orange
    assert out["steps"][0] >= 36  # normal steps are approved
    assert Path(out["run_dir"]) == Path("art")
    assert (tmp_path / "art" / "gallery" / "step0039-0.png").is_file()
