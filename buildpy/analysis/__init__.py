"""Analysis: rule implementations run on configured targets and emit actions."""
