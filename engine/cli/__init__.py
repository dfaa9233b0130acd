"""The command line, one module per tool; `python -m engine` assembles them."""
