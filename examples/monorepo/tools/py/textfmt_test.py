"""Unit tests for //tools/py:textfmt (unittest exits non-zero on failure)."""

import os
import unittest

from tools.py import textfmt


def runfile(path):
    """Finds a data dependency, given its workspace-relative path."""
    srcdir = os.environ.get("TEST_SRCDIR")
    if srcdir and not os.path.exists(path):
        return os.path.join(srcdir, "monorepo", path)
    return path


class TextFmtTest(unittest.TestCase):

    def test_title_case(self):
        self.assertEqual(textfmt.title_case("hELLO   big world"),
                         "Hello Big World")

    def test_wrap(self):
        self.assertEqual(textfmt.wrap("a bb ccc dddd", 6),
                         ["a bb", "ccc", "dddd"])
        self.assertEqual(textfmt.wrap("", 10), [])
        self.assertEqual(textfmt.wrap("supercalifragilistic", 5),
                         ["supercalifragilistic"])
        with self.assertRaises(ValueError):
            textfmt.wrap("x", 0)

    def test_boxed(self):
        self.assertEqual(textfmt.boxed(["hi", "you"]),
                         ["+-----+", "| hi  |", "| you |", "+-----+"])

    def test_word_counts_on_data_file(self):
        with open(runfile("gen/data/fruits.txt"), encoding="utf-8") as f:
            counts = textfmt.word_counts(f.read())
        self.assertEqual(counts["apple"], 1)
        self.assertIn("banana", counts)


if __name__ == "__main__":
    unittest.main()
