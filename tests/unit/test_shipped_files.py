"""The user-facing `policies/` and `audits/` of a checkout are the files the wheel ships
(`guarded_rl/policies/`, `guarded_rl/report/audits/`): same names, same bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "guarded_rl"


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.mark.parametrize(
    ("user_copy", "shipped"),
    [("policies", "policies"), ("audits", "report/audits")],
)
def test_user_facing_copies_match_what_ships(user_copy: str, shipped: str) -> None:
    mine, theirs = _files(ROOT / user_copy), _files(PACKAGE / shipped)
    assert mine, user_copy
    assert mine == theirs
