"""The query language: one parser and one evaluator for query, cquery and aquery."""
