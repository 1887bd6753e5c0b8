"""Coverage-guided fuzzing (atheris, libFuzzer) of the validator and the relay message handling.

`python -m tests.fuzz [event|frames|all] --seconds N` (see `__main__`); `tests.fuzz.targets` holds
what one input is checked for.
"""
