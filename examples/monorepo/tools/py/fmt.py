"""fmt: wraps text from files (or stdin) and prints it in a box.

Usage: fmt [--width N] [--title] [FILE...]
"""

import argparse
import sys

from tools.py import textfmt


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fmt", description=__doc__)
    parser.add_argument("--width", type=int, default=40,
                        help="maximum line width (default: 40)")
    parser.add_argument("--title", action="store_true",
                        help="title-case the text first")
    parser.add_argument("files", nargs="*", help="input files (default: stdin)")
    args = parser.parse_args(argv)
    if args.width < 1:
        parser.error("--width must be positive")

    if args.files:
        chunks = []
        for path in args.files:
            with open(path, encoding="utf-8") as f:
                chunks.append(f.read())
        text = "\n".join(chunks)
    else:
        text = sys.stdin.read()

    if args.title:
        text = textfmt.title_case(text)
    for line in textfmt.boxed(textfmt.wrap(text, args.width)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
