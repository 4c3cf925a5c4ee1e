"""Example projects, shipped in the package so that `flywheel init --example` works from a
wheel (see `flywheel.scaffold.EXAMPLES`)."""
