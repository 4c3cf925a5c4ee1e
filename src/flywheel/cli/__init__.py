"""The `flywheel` command line: one module per command group, entry point `main.run`."""
