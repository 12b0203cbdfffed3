"""Tables that describe a fact set: facts per relation and split, labels per language."""

from __future__ import annotations

import difflib
from collections import Counter

from interp.errors import DataError, located
from interp.facts.schema import SPLITS, Fact, FactSet


def summarize(facts: FactSet) -> dict:
    """Three tidy tables (pandas): `relations` (facts per relation x split), `languages`
    (items, distinct subject and object labels, labels equal to English per language) and
    `splits` (facts and items per split)."""
    import pandas as pd

    splits_present = [s for s in SPLITS if any(f.split == s for f in facts)] or ["all"]
    per_relation = Counter((f.relation, f.split or "all") for f in facts)
    relations = pd.DataFrame(
        [
            {"relation": rel, **{s: per_relation.get((rel, s), 0) for s in splits_present}}
            for rel in sorted({f.relation for f in facts})
        ]
    )
    if len(relations):
        relations["total"] = relations[splits_present].sum(axis=1)

    rows = []
    for code in facts.languages:
        items = [f.items[code] for f in facts]
        english = [f.items.get("en") for f in facts]
        same_as_en = sum(
            1
            for item, en in zip(items, english, strict=True)
            if en is not None and item.answer_text == en.answer_text
        )
        rows.append(
            {
                "language": code,
                "items": len(items),
                "subject_labels": len({i.subject_label for i in items if i.subject_label}),
                "object_labels": len({i.answer_text for i in items}),
                "answer_same_as_en": same_as_en,
            }
        )
    languages = pd.DataFrame(rows)

    n_lang = len(facts.languages)
    split_counts = Counter(f.split or "all" for f in facts)
    splits = pd.DataFrame(
        [
            {"split": s, "facts": split_counts[s], "items": split_counts[s] * n_lang}
            for s in splits_present
        ]
    )
    return {"relations": relations, "languages": languages, "splits": splits}


def render(facts: FactSet, *, example_fact: str | None = None) -> str:
    """The summary as text for a terminal."""
    tables = summarize(facts)
    lines = [
        f"{len(facts)} facts x {len(facts.languages)} languages = {len(facts) * len(facts.languages)} items",
        f"languages: {' '.join(facts.languages)}",
        "",
        "facts per relation and split:",
        tables["relations"].to_string(index=False),
        "",
        "items per split:",
        tables["splits"].to_string(index=False),
        "",
        "labels per language (answer_same_as_en: items whose answer is spelled as in English):",
        tables["languages"].to_string(index=False),
    ]
    report = facts.meta.get("report")
    if report and report.get("dropped"):
        lines += ["", "dropped while building (relation, reason, count, examples):"]
        for row in report["dropped"]:
            lines.append(
                f"  {row['relation']:18s} {row['reason']:45s} {row['count']:5d}  {', '.join(row['examples'][:3])}"
            )
    skipped = facts.meta.get("skipped")
    if skipped is not None and getattr(skipped, "total", 0):
        lines += ["", skipped.summary()]
    fact = _example(facts, example_fact)
    if fact is not None:
        lines += ["", f"example fact {fact.fact_id}:"]
        for code in facts.languages:
            item = fact.items[code]
            options = " | ".join(
                f"{'*' if i == item.answer_index else ' '}{o}" for i, o in enumerate(item.options)
            )
            lines.append(f"  {code}: {item.question}   [{options}]")
    return "\n".join(lines)


def _example(facts: FactSet, fact_id: str | None) -> Fact | None:
    """The fact asked for (an unknown id is an error, not silently another fact), else the
    first one."""
    if not fact_id:
        return facts.facts[0] if len(facts) else None
    for fact in facts:
        if fact.fact_id == fact_id:
            return fact
    ids = [f.fact_id for f in facts]
    close = difflib.get_close_matches(fact_id, ids, n=3)
    hint = f"close ids: {', '.join(close)}" if close else f"e.g. {', '.join(ids[:3]) or 'none'}"
    raise DataError(
        located(
            f"no fact {fact_id!r} among the {len(ids)} facts shown",
            source=str(facts.meta.get("source_path") or "facts"),
            fix=f"give a fact_id from this set ({hint}); with --split, one of that split",
        )
    )
