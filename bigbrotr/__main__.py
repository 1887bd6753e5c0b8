"""`python -m bigbrotr`: the `bigbrotr` command, as the supervisor starts its children."""

from bigbrotr.cli import main

main()
