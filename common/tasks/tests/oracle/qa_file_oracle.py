"""File-level QA scoring as the official SQuAD v1.1 / MLQA evaluation scripts do it (XTREME-R.md
§4.1-4.2), written for stilts on top of qa_oracle.score_case (not a copy of those scripts):
every question of the gold file counts; an unanswered one scores 0 (counted on stderr);
prediction ids that are no question are ignored; any answer string is scored.

argv: MODE (squad|mlqa) LANG GOLD.json PREDICTIONS.json
stdout: {"exact_match": float, "f1": float, "unanswered": int} (×100)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qa_oracle import score_case  # noqa: E402

mode, lang, gold_path, pred_path = sys.argv[1:5]
with open(gold_path, encoding="utf-8") as f:
    dataset = json.load(f)["data"]
with open(pred_path, encoding="utf-8") as f:
    predictions = json.load(f)
em_sum = f1_sum = 0.0
total = unanswered = 0
for article in dataset:
    for paragraph in article["paragraphs"]:
        for qa in paragraph["qas"]:
            total += 1
            if qa["id"] not in predictions:
                unanswered += 1
                continue
            answers = [a["text"] for a in qa["answers"]]
            em, f = score_case(mode, lang, predictions[qa["id"]], answers)
            em_sum += em
            f1_sum += f
if unanswered:
    print("%d unanswered questions receive score 0." % unanswered, file=sys.stderr)
print(json.dumps({"exact_match": 100.0 * em_sum / total, "f1": 100.0 * f1_sum / total,
                  "unanswered": unanswered}))
