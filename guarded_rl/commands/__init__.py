"""Command services: what one CLI command does to a run directory, as a library call.

Each is a short client of `guarded_rl.rundir.session` (which owns the run's lock, key, log and
stores) and of the layers below; the CLI in `guarded_rl.cli` only parses arguments and prints.
"""
