"""Core nouns shared by every phase: errors, labels, patterns, the workspace, rc files."""
