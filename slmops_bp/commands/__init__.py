"""One module per sub-command; each exposes ``run(...) -> int`` (the exit status)."""
