"""One run directory: its layout (`paths`), its writer lock (`lock`) and the session that opens
or creates it and records its start and finish (`session`).

`paths` and `lock` sit at the bottom of the import layers (every layer may name a run's files);
`session` sits above the guard, because it wires the stores, the signer and the review desk that
a running loop uses. This `__init__` imports nothing, so the layers stay apart.
"""
