"""Independent oracle for SQuAD v1.1 and MLQA answer scoring, written for stilts from the
algorithm in XTREME-R.md §4.1-4.2 (not a copy of the official scripts).

stdin: JSON list of {"mode": "squad"|"mlqa", "lang": str, "prediction": str, "answers": [str]};
stdout: JSON list of {"em": 0|1, "f1": float} (max over answers)."""
import collections
import json
import re
import string
import sys
import unicodedata

ASCII = set(string.punctuation)
UNICODE_PUNCT = {chr(i) for i in range(sys.maxunicode + 1)
                 if unicodedata.category(chr(i)).startswith("P")} | ASCII
ARTICLES = {
    "en": ["a", "an", "the"],
    "es": ["un", "una", "unos", "unas", "el", "la", "los", "las"],
    "vi": ["của", "là", "cái", "chiếc", "những"],
    "de": ["ein", "eine", "einen", "einem", "eines", "einer", "der", "die", "das", "den", "dem", "des"],
}


def drop_words(text, words):
    pattern = r"\b(" + "|".join(words) + r")\b"
    return re.sub(pattern, " ", text)


def squad_norm(s):
    s = s.lower()
    s = "".join(c for c in s if c not in ASCII)
    s = drop_words(s, ARTICLES["en"])
    return " ".join(s.split())


def mlqa_tokens(s, lang):
    s = s.lower()
    s = "".join(c for c in s if c not in UNICODE_PUNCT)
    if lang in ARTICLES:
        s = drop_words(s, ARTICLES[lang])
    elif lang == "ar":
        s = s.replace("ال", " ")
    elif lang not in ("hi", "zh"):
        raise ValueError(lang)
    if lang != "zh":
        return s.split()
    tokens, run = [], ""
    for c in s:
        if "\u4e00" <= c <= "\u9fa5" or c in UNICODE_PUNCT:
            tokens.extend(run.split())
            run = ""
            tokens.append(c)
        else:
            run += c
    tokens.extend(run.split())
    return [t for t in tokens if t.strip()]


def f1(p, g):
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def score_case(mode, lang, prediction, answers):
    """(EM, F1) of one prediction: the max over the gold answers."""
    em_best, f1_best = 0, 0.0
    for gold in answers:
        if mode == "squad":
            p, g = squad_norm(prediction), squad_norm(gold)
            em, f = int(p == g), f1(p.split(), g.split())
        else:
            pt, gt = mlqa_tokens(prediction, lang), mlqa_tokens(gold, lang)
            em, f = int(" ".join(pt) == " ".join(gt)), f1(" ".join(pt).split(), " ".join(gt).split())
        em_best, f1_best = max(em_best, em), max(f1_best, f)
    return em_best, f1_best


if __name__ == "__main__":
    out = []
    for case in json.load(sys.stdin):
        em, f = score_case(case["mode"], case["lang"], case["prediction"], case["answers"])
        out.append({"em": em, "f1": f})
    print(json.dumps(out))
