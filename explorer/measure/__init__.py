"""How a model is timed and on what: the harness, statistics, host facts, the CPU gate, per-op profiles."""
