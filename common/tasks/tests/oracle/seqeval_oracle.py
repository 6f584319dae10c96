"""Reads {"y_true": [[tags]], "y_pred": [[tags]]} cases (a JSON list) on stdin and prints
seqeval 1.2.2's default-mode precision/recall/f1 for each case as a JSON list."""
import json
import sys
import warnings

from importlib.metadata import version

from seqeval.metrics import f1_score, precision_score, recall_score

if version("seqeval") != "1.2.2":
    sys.exit(f"seqeval {version('seqeval')} installed; the oracle needs 1.2.2")
warnings.simplefilter("ignore")
out = []
for case in json.load(sys.stdin):
    t, p = case["y_true"], case["y_pred"]
    out.append({"precision": precision_score(t, p), "recall": recall_score(t, p), "f1": f1_score(t, p)})
print(json.dumps(out))
