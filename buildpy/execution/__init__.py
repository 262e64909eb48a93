"""Execution: running the action graph locally, with a content-addressed cache."""
