"""Fail before writing when a policy names a probe suite that cannot be read."""

from __future__ import annotations

from pathlib import Path

from guarded_rl.errors import InputError
from guarded_rl.policy import GuardPolicy


def check_probe_suite(policy: GuardPolicy, *, source: str | None = None) -> None:
    """Read the policy's probe suite now, so a missing one fails before anything is written
    (the probes themselves run only on every Nth update). A suite that is not there is the
    policy's error (`source`, field `fairness.probe_suite`); one that is malformed, the suite's."""
    fairness = policy.fairness
    if fairness.probe_every > 0 and fairness.probe_suite:
        from guarded_rl.fairness.probes import load_suite

        if not Path(fairness.probe_suite).is_file():
            raise InputError(
                "no such probe suite file",
                file=source,
                field="fairness.probe_suite",
                got=fairness.probe_suite,
                expected="a probe suite TOML file (unset: the shipped suite)",
            )
        load_suite(fairness.probe_suite)
