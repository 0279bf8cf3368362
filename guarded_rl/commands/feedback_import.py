"""`feedback import` on a run: people's ratings into its store, and one signed entry saying so.

The import must be logged, so a forged log or a missing or wrong key fails before any row is
stored; the rows and their entry are one session on the run.
"""

from __future__ import annotations

from pathlib import Path

from guarded_rl.commands.consent import open_run_store
from guarded_rl.consent.importer import ImportReport, import_feedback


def import_into_run(
    run_dir: str | Path,
    path: str | Path,
    *,
    skip_invalid: bool,
    key_file: Path | None = None,
) -> ImportReport:
    """Import into a run's store (its log must verify) and log what was imported."""
    with open_run_store(run_dir, key_file=key_file, writing=True) as session:
        report = import_feedback(session.feedback_store(), Path(path), skip_invalid=skip_invalid)
        if report.stored or report.refused:
            payload = {
                "file_sha256": report.file_sha256,
                "stored": report.stored,
                "refused": len(report.refused),
                "refused_lines": [n for n, _ in report.refused],
                "groups_dropped": report.groups_dropped,
                "subjects": report.subjects,
            }
            session.record([("feedback_imported", payload)])
        return report
