"""Answer normalisation and option matching, shared by data building and the GRPO reward.

`normalize_answer` decides when two strings are "the same answer"; `match_option` decides which
option, if any, a generated answer names. Both are pure and language-agnostic (no word lists),
so they behave the same in all 22 languages.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_WHITESPACE_RUN = re.compile(r"\s+")


def _is_edge_junk(char: str) -> bool:
    """Characters stripped from both ends: whitespace, punctuation (P*), invisible formatting (Cf)."""
    if char.isspace():
        return True
    category = unicodedata.category(char)
    # P* covers ASCII and CJK/Arabic punctuation alike: . , ! ? 。 、 ？ ！ ؟ ، « » „ “ ” ( ) [ ] -
    # Cf covers zero-width spaces and byte-order marks that generations sometimes carry.
    return category.startswith("P") or category == "Cf"


def normalize_answer(text: str) -> str:
    """The canonical form of an answer string, used for every comparison of answers.

    Steps, in order:
    1. Unicode NFKC (full-width "ＰＡＲＩＳ" -> "PARIS", ligatures, the ideographic space -> " ").
    2. casefold (stronger than lower: "Straße" -> "strasse"), then NFKC again because casefolding
       can leave a string that is not NFKC-normal.
    3. strip characters from both ends while they are whitespace, Unicode punctuation (any
       category P*: "。", "、", "？", "؟", "«", "»", quotes, brackets, dashes, full stops) or
       invisible format characters (category Cf: zero-width space, BOM).
    4. collapse every internal run of whitespace to one ASCII space.
    Internal punctuation is kept ("Washington, D.C" keeps its comma), so distinct names stay
    distinct. `None` is treated as the empty string.
    """
    if text is None:
        return ""
    value = unicodedata.normalize("NFKC", str(text))
    value = unicodedata.normalize("NFKC", value.casefold())
    start, end = 0, len(value)
    while start < end and _is_edge_junk(value[start]):
        start += 1
    while end > start and _is_edge_junk(value[end - 1]):
        end -= 1
    return _WHITESPACE_RUN.sub(" ", value[start:end])


def first_line(text: str) -> str:
    """The first line of `text` that holds anything besides whitespace ("" if none)."""
    for line in str(text or "").splitlines():
        if line.strip():
            return line
    return ""


def match_option(output: str, options: Sequence[str], *, use_first_line: bool = True) -> int | None:
    """The index of the option that a generated `output` names, or None if it names none.

    Exactly:
    1. If `use_first_line`, only the first non-blank line of `output` counts: a causal LM often
       keeps generating after its answer ("Paris\\nQuestion: ..."); the paper's code does the same.
    2. The output and every option are normalised with `normalize_answer`.
    3. An empty normalised output matches nothing.
    4. The output matches option i if the two normalised strings are equal. This includes an
       output that starts with the option text followed only by whitespace and punctuation
       ("Paris ,;", "東京。", "Paris?!"): step 2 strips that tail, so no separate prefix rule
       is needed.
    5. If several options match, the first in option order wins (options that normalise to the
       same string are a data defect that the fact builder should reject).
    A longer answer ("Paris, the capital") or a fragment ("Par") matches nothing, and the reward
    then counts the output as naming no option. (The paper's released code also accepted an
    answer that contains, or is contained in, exactly one option; this rule is stricter so
    that a rambling answer cannot collect the reward.)
    """
    text = first_line(output) if use_first_line else str(output or "")
    answer = normalize_answer(text)
    if not answer:
        return None
    normalized = [normalize_answer(option) for option in options]
    for index, option in enumerate(normalized):
        if option and answer == option:
            return index
    return None
