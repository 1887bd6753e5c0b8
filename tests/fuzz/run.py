"""One target under atheris: `python -m tests.fuzz.run TARGET [libFuzzer arguments]`.

Only BigBrotr's own packages are instrumented for coverage; atheris runs until a libFuzzer limit
(`-max_total_time`, `-runs`) or a crash, and exits with libFuzzer's status.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["bigbrotr", "connectors", "streams"]):
    from tests.fuzz.targets import TARGETS


def main() -> None:
    target = TARGETS[sys.argv[1]]()
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
