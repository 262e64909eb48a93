"""Actions: the commands a build runs, their files, and their cache keys."""
