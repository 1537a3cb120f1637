"""Story grouping F1 when the dev set is served differently: how undated Atom entries are
stamped (a fixed date, the generation time, nothing) and the order the files are ingested in.

The held-out set is served by a generator we do not see; a grouping that only scores well for
one file order or one dating convention would not carry over. Run:
`python tests/eval/score_grouping.py [-v]` (prints a table; `-v` lists the wrong pairs).
"""

from __future__ import annotations

import contextlib
import io
import random
import sys
import tempfile
from itertools import combinations
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.eval.feeds import EVAL, UNDATED_ATOM, load_jsonl, write_feeds
from tests.eval.score import ingest_and_export, score_export, store_at

ORDERS = ("sorted", "reversed", "shuffled-1", "shuffled-2")


def _ordered(paths: list[Path], order: str) -> list[Path]:
    if order == "reversed":
        return paths[::-1]
    if order.startswith("shuffled"):
        paths = list(paths)
        random.Random(order).shuffle(paths)
    return paths


def grouping_table(workdir: Path) -> dict[tuple[str, str], tuple[float, list[str]]]:
    """F1 and the wrongly grouped pairs for every (undated-Atom stamp, file order)."""
    articles = load_jsonl(EVAL / "articles.jsonl")
    relevant = [a for a in articles if a["relevant"]]
    table: dict[tuple[str, str], tuple[float, list[str]]] = {}
    for undated in UNDATED_ATOM:
        for order in ORDERS:
            run_dir = workdir / f"{undated}-{order}"
            feeds = write_feeds(articles, run_dir / "feeds", undated_atom=undated)
            with store_at(run_dir / "eval.db"), contextlib.redirect_stderr(io.StringIO()):
                exported = ingest_and_export(_ordered(feeds, order))
            table[(undated, order)] = (
                score_export(articles, exported)["grouping_f1"],
                _wrong_pairs(relevant, exported),
            )
    return table


def _wrong_pairs(relevant: list[dict[str, Any]], exported: list[dict[str, Any]]) -> list[str]:
    story = {e["url"]: e["story_id"] for e in exported}
    wrong = []
    for a, b in combinations(relevant, 2):
        gold = a["story"] is not None and a["story"] == b["story"]
        got = story.get(a["url"]) is not None and story.get(a["url"]) == story.get(b["url"])
        if gold != got:
            wrong.append(f"{'missed' if gold else 'wrongly joined'}: {a['id']} + {b['id']}")
    return wrong


if __name__ == "__main__":
    if not EVAL.exists():
        print(f"skipped: {EVAL} not found")
        sys.exit(0)
    with tempfile.TemporaryDirectory() as tmp:
        results = grouping_table(Path(tmp))
    print("undated-atom  " + "  ".join(f"{o:>10}" for o in ORDERS))
    for undated in UNDATED_ATOM:
        row = "  ".join(f"{results[(undated, o)][0]:>10.3f}" for o in ORDERS)
        print(f"{undated:<12}  {row}")
    scores = [f for f, _ in results.values()]
    print(f"grouping_f1 mean {sum(scores) / len(scores):.3f} min {min(scores):.3f}")
    if "-v" in sys.argv:
        for (undated, order), (_, wrong) in results.items():
            for line in wrong:
                print(f"{undated}/{order} {line}")
