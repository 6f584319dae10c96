#!/usr/bin/env python3
"""Generates the SYNTHETIC stilts demo corpus (see README.md) from templates and word lists.

Deterministic: `python3 generate.py` rewrites the same files. Output is XTREME tsv layout
(`text_a<TAB>text_b<TAB>label` or `text<TAB>label`, no header).
"""
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ["Anna", "Tom", "Maria", "Peter", "Lukas", "Sofia", "David", "Laura", "Omar", "Elena",
         "Jonas", "Clara", "Marco", "Nina", "Paul", "Sara", "Ivan", "Mia", "Leo", "Hana"]
CITIES = ["Berlin", "Paris", "Madrid", "Boston", "Chicago", "Oslo", "Dublin", "Toronto",
          "Denver", "Sydney"]

# demo-nli-x: purchases, in four languages. Names, cities and digits are shared by all
# languages, so a model trained on English can transfer by comparing them.
ITEMS = {
    "en": ["apples", "books", "chairs", "tickets", "shirts", "lamps", "bottles", "cups"],
    "de": ["Äpfel", "Bücher", "Stühle", "Tickets", "Hemden", "Lampen", "Flaschen", "Tassen"],
    "fr": ["pommes", "livres", "chaises", "billets", "chemises", "lampes", "bouteilles", "tasses"],
    "es": ["manzanas", "libros", "sillas", "billetes", "camisas", "lámparas", "botellas", "tazas"],
}
PREMISE = {
    "en": "{name} bought {n} {item} in {city}.",
    "de": "{name} kaufte {n} {item} in {city}.",
    "fr": "{name} a acheté {n} {item} à {city}.",
    "es": "{name} compró {n} {item} en {city}.",
}
HYPOTHESES = {
    "en": ["{name} bought {n} {item}.", "In {city}, {name} bought {n} {item}.",
           "{name} got {n} {item} in {city}."],
    "de": ["{name} kaufte {n} {item}.", "In {city} kaufte {name} {n} {item}.",
           "{name} hat {n} {item} in {city} gekauft."],
    "fr": ["{name} a acheté {n} {item}.", "À {city}, {name} a acheté {n} {item}.",
           "{name} a pris {n} {item} à {city}."],
    "es": ["{name} compró {n} {item}.", "En {city}, {name} compró {n} {item}.",
           "{name} consiguió {n} {item} en {city}."],
}


def nli_x_example(rng, lang):
    name, other = rng.sample(NAMES, 2)
    city, city2 = rng.sample(CITIES, 2)
    n, m = rng.sample(range(2, 20), 2)
    item = rng.choice(ITEMS[lang])
    premise = PREMISE[lang].format(name=name, n=n, item=item, city=city)
    label = rng.choice(["entailment", "contradiction", "neutral"])
    template = rng.choice(HYPOTHESES[lang])
    if label == "entailment":
        hyp = template.format(name=name, n=n, item=item, city=city)
    elif label == "contradiction":
        if "{city}" in template and rng.random() < 0.5:
            hyp = template.format(name=name, n=n, item=item, city=city2)
        else:
            hyp = template.format(name=name, n=m, item=item, city=city)
    else:
        hyp = template.format(name=other, n=n, item=item, city=city)
    return premise, hyp, label


# demo-nli: English only, people's ages and jobs (same reasoning, other content).
JOBS = ["teacher", "doctor", "baker", "pilot", "nurse", "farmer", "lawyer", "painter"]


def nli_example(rng):
    name, other = rng.sample(NAMES, 2)
    city = rng.choice(CITIES)
    n, m = rng.sample(range(20, 70), 2)
    job, job2 = rng.sample(JOBS, 2)
    premise = f"{name} is {n} years old and works as a {job} in {city}."
    label = rng.choice(["entailment", "contradiction", "neutral"])
    kind = rng.choice(["age", "job"])
    if label == "entailment":
        hyp = f"{name} is {n} years old." if kind == "age" else f"{name} works as a {job}."
    elif label == "contradiction":
        hyp = f"{name} is {m} years old." if kind == "age" else f"{name} works as a {job2}."
    else:
        hyp = (f"{other} is {n} years old." if kind == "age"
               else f"{name} has {rng.randint(2, 5)} children.")
    return premise, hyp, label


# demo-sentiment: English only.
THINGS = ["movie", "meal", "hotel", "concert", "book", "service", "trip", "game", "show", "room"]
POSITIVE = ["great", "wonderful", "excellent", "lovely", "fantastic", "delightful", "superb",
            "pleasant", "amazing", "charming"]
NEGATIVE = ["terrible", "awful", "boring", "horrible", "dreadful", "poor", "disappointing",
            "bad", "dull", "annoying"]
SENTIMENT_TEMPLATES = ["The {thing} was {adj}.", "I found the {thing} {adj}.",
                       "What a {adj} {thing}!", "Honestly, the {thing} felt {adj}.",
                       "My friends said the {thing} was {adj}."]


def sentiment_example(rng):
    label = rng.choice(["positive", "negative"])
    adj = rng.choice(POSITIVE if label == "positive" else NEGATIVE)
    text = rng.choice(SENTIMENT_TEMPLATES).format(thing=rng.choice(THINGS), adj=adj)
    return (text[0].upper() + text[1:],), label


def unique(rng, make, count, seen):
    out = []
    while len(out) < count:
        ex = make(rng)
        key = ex[:-1] if len(ex) == 3 else ex[0]
        if key in seen:
            continue
        seen.add(key)
        out.append(ex)
    return out


def write(task, name, rows):
    os.makedirs(os.path.join(HERE, task), exist_ok=True)
    with open(os.path.join(HERE, task, name), "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write("\t".join(row) + "\n")


def main():
    rng = random.Random(20240601)
    seen = set()
    for split, count in [("train-en.tsv", 450), ("dev-en.tsv", 100), ("test-en.tsv", 100)]:
        write("demo-nli", split, unique(rng, nli_example, count, seen))
    seen = set()
    for split, count in [("train-en.tsv", 450), ("dev-en.tsv", 100), ("test-en.tsv", 100)]:
        rows = unique(rng, sentiment_example, count, seen)
        write("demo-sentiment", split, [(r[0][0], r[1]) for r in rows])
    for lang in ["en", "de", "fr", "es"]:
        seen = set()
        splits = [("dev", 60), ("test", 60)] + ([("train", 450)] if lang == "en" else [])
        for split, count in splits:
            rows = unique(rng, lambda r: nli_x_example(r, lang), count, seen)
            write("demo-nli-x", f"{split}-{lang}.tsv", rows)


if __name__ == "__main__":
    main()
