"""`guarded-rl audit schema` prints the entry schema as JSON; the stored logs written before
the schema existed verify with their public key and explain through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from guarded_rl.audit.events import EVENT_MODELS

LOGS = Path(__file__).parents[1] / "data" / "logs"


def test_schema_prints_every_entry_type_as_json(cli) -> None:
    result = cli("audit", "schema")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    named = {v["properties"]["type"]["const"] for v in document["oneOf"]}
    assert named == set(EVENT_MODELS)
    assert {"seq", "ts", "type", "payload", "prev", "hash"} == set(document["properties"])
    assert document["schema_version"] == 1


def test_schema_of_one_type_and_an_unknown_type(cli) -> None:
    one = cli("audit", "schema", "--type", "update_proposed")
    assert one.returncode == 0, one.stderr
    [variant] = json.loads(one.stdout)["oneOf"]
    assert variant["properties"]["type"] == {"const": "update_proposed"}
    unknown = cli("audit", "schema", "--type", "update_guessed")
    assert unknown.returncode == 2
    assert unknown.stdout == ""
    [line] = unknown.stderr.strip().splitlines()
    assert "--type = 'update_guessed'" in line and "update_proposed" in line
    assert "Traceback" not in unknown.stderr


@pytest.mark.parametrize("name", ["cli-run", "torch-loop"])
def test_stored_logs_verify_and_explain(cli, tmp_path: Path, name: str) -> None:
    run_dir = tmp_path / name
    shutil.copytree(LOGS / name, run_dir)
    verified = cli("audit", "verify", str(run_dir), "--public-key", str(LOGS / name / "audit.pub"))
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith(f"intact {run_dir}")
    explained = cli("audit", "explain", str(run_dir), "u1", "--json")
    assert explained.returncode == 0, explained.stderr
    x = json.loads(explained.stdout)
    assert x["decision"]["outcome"] == "approved" and x["weights"]["applied"]
