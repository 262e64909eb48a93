"""Times one bp query in-process, after a first evaluation has loaded every package.

    python bench/query_probe.py WORKSPACE EXPRESSION RUNS

Prints JSON: {"first": seconds of the first (loading) evaluation, "times": [seconds of
each later evaluation], "size": the result's size}. Run it with the interpreter that
has buildpy installed. Knows nothing about peers or tables.
"""

from __future__ import annotations

import json
import sys
import time


def probe(workspace: str, text: str, runs: int) -> dict:
    import gc

    gc.disable()   # as bp's command line runs (cli.py): no collector passes over the graph
    from buildpy.query.engine import evaluate
    from buildpy.query.syntax import parse_query
    from buildpy.query.uquery import TargetQueryEnvironment
    from buildpy.session import open_session

    session = open_session(workspace)
    env = TargetQueryEnvironment(session.loader, session.offset)
    expr = parse_query(text)
    start = time.perf_counter()
    result, errors = evaluate(env, expr)
    first = time.perf_counter() - start
    if errors:
        raise SystemExit(f"query_probe: {text}: {errors[0]}")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result, _ = evaluate(env, parse_query(text))
        times.append(time.perf_counter() - start)
    return {"first": first, "times": times, "size": len(result)}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    workspace, text, runs = argv
    print(json.dumps(probe(workspace, text, int(runs))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
