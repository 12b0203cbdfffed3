"""Facts: the schema, the offline world builder, the PolyFact reader/writer and splits.

from interp.facts import build_world, read_polyfact, write_polyfact
facts, report = build_world()                 # ~1,000+ real facts in 22 languages
write_polyfact(facts, "data/world")
facts = read_polyfact("data/world")           # or the released PolyFact files
facts.split("test").to_frame()                # a tidy pandas table
"""

from interp.facts.loading import load_facts
from interp.facts.polyfact import SkipReport, read_polyfact, write_polyfact, write_polyfact_json
from interp.facts.schema import OPTION_LETTERS, SPLITS, Fact, FactSet, QuestionItem
from interp.facts.summary import summarize
from interp.facts.world import BuildReport, WorldConfig, build_world

__all__ = [
    "OPTION_LETTERS",
    "SPLITS",
    "BuildReport",
    "Fact",
    "FactSet",
    "QuestionItem",
    "SkipReport",
    "WorldConfig",
    "build_world",
    "load_facts",
    "read_polyfact",
    "summarize",
    "write_polyfact",
    "write_polyfact_json",
]
