"""Score ingestion (`export`) and answers (`ask --json`) on the dev set, as the README says.

Run: `python tests/eval/score.py` (prints the figures). The regression test imports it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.cli.main import main as cli_main
from tests.eval.feeds import EVAL, load_jsonl, write_feeds


def _cli(args: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(args)
    if code != 0:
        raise RuntimeError(f"sovereign-watch {' '.join(args)} exited {code}")
    return out.getvalue()


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def score_export(labels: list[dict[str, Any]], exported: list[dict[str, Any]]) -> dict[str, float]:
    by_url = {e["url"]: e for e in exported}
    tp = fp = fn = tn = 0
    c_tp = c_fp = c_fn = t_tp = t_fp = t_fn = 0
    for item in labels:
        got = by_url.get(item["url"])
        pred = bool(got and got["relevant"])
        if item["relevant"] and pred:
            tp += 1
        elif item["relevant"]:
            fn += 1
        elif pred:
            fp += 1
        else:
            tn += 1
        if item["relevant"]:
            gc = set(got["countries"]) if got else set()
            gt = set(got["topics"]) if got else set()
            c_tp += len(gc & set(item["countries"]))
            c_fp += len(gc - set(item["countries"]))
            c_fn += len(set(item["countries"]) - gc)
            t_tp += len(gt & set(item["topics"]))
            t_fp += len(gt - set(item["topics"]))
            t_fn += len(set(item["topics"]) - gt)
    rel = [i for i in labels if i["relevant"]]
    p_tp = p_fp = p_fn = 0
    for a, b in combinations(rel, 2):
        same_gold = a["story"] is not None and a["story"] == b["story"]
        ga, gb = by_url.get(a["url"]), by_url.get(b["url"])
        same_pred = bool(ga and gb and ga["story_id"] == gb["story_id"])
        p_tp += same_gold and same_pred
        p_fp += same_pred and not same_gold
        p_fn += same_gold and not same_pred
    return {
        "relevance_f1": f1(tp, fp, fn),
        "specificity": tn / (tn + fp) if tn + fp else 1.0,
        "country_f1": f1(c_tp, c_fp, c_fn),
        "topic_f1": f1(t_tp, t_fp, t_fn),
        "grouping_f1": f1(p_tp, p_fp, p_fn),
    }


def score_answers(
    questions: list[dict[str, Any]], answers: list[dict[str, Any]]
) -> dict[str, float]:
    ok_en = ok_ko = n_en = n_ko = declined = n_unans = with_sources = n_ans = 0
    for q, a in zip(questions, answers, strict=True):
        korean = any("\uac00" <= ch <= "\ud7a3" for ch in q["question"])
        if q["answerable"]:
            n_ans += 1
            text = a["answer"].lower()
            correct = (
                a["grounded"]
                and len(a["answer"]) <= 600
                and all(any(alt.lower() in text for alt in group) for group in q["must_mention"])
            )
            with_sources += bool(a["sources"])
            if korean:
                n_ko += 1
                ok_ko += correct
            else:
                n_en += 1
                ok_en += correct
        else:
            n_unans += 1
            declined += not a["grounded"]
    return {
        "answer_accuracy": (ok_en + ok_ko) / max(n_en + n_ko, 1),
        "english_accuracy": ok_en / max(n_en, 1),
        "korean_accuracy": ok_ko / max(n_ko, 1),
        "decline_rate": declined / max(n_unans, 1),
        "with_sources": with_sources / max(n_ans, 1),
    }


@contextlib.contextmanager
def store_at(db: Path) -> Iterator[None]:
    """Point the in-process CLI at `db` (SW_DB_PATH), restoring what was there after."""
    old = os.environ.get("SW_DB_PATH")
    os.environ["SW_DB_PATH"] = str(db)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SW_DB_PATH", None)
        else:
            os.environ["SW_DB_PATH"] = old


def ingest_and_export(paths: list[Path]) -> list[dict[str, Any]]:
    """`sovereign-watch ingest` the feed files, then what `export` prints, one dict a line."""
    _cli(["ingest", "--json", *map(str, paths)])
    return [json.loads(line) for line in _cli(["export"]).splitlines() if line.strip()]


def run(workdir: Path, *, verbose: bool = False) -> dict[str, float]:
    """Ingest the dev articles from feed files into a fresh store, then score both halves."""
    articles = load_jsonl(EVAL / "articles.jsonl")
    questions = load_jsonl(EVAL / "questions.jsonl")
    paths = write_feeds(articles, workdir / "feeds")
    with store_at(workdir / "eval.db"):
        figures = score_export(articles, ingest_and_export(paths))
        answers = [json.loads(_cli(["ask", "--json", q["question"]])) for q in questions]
    figures.update(score_answers(questions, answers))
    if verbose:
        for q, a in zip(questions, answers, strict=True):
            print(f"--- {q['id']} answerable={q['answerable']} grounded={a['grounded']}")
            print(f"Q: {q['question']}\nA: {a['answer']}\nmust: {q['must_mention']}")
    return figures


if __name__ == "__main__":
    if not EVAL.exists():
        print(f"skipped: {EVAL} not found")
        sys.exit(0)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(Path(tmp), verbose="-v" in sys.argv)
    for key, value in result.items():
        print(f"{key} {value:.3f}")
