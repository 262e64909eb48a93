"""Loading: BUILD files to packages to the unconfigured target graph."""
