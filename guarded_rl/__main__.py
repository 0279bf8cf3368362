"""`python -m guarded_rl` is the `guarded-rl` command."""

from guarded_rl.cli.app import main

main()
