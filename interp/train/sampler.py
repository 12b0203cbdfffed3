"""A sampler that keeps the language rows of a fact together, for the paper's joint GRPO rollout.

The GRPO dataset holds one row per (fact, language). TRL's `RepeatSampler` shuffles rows one
by one, so the languages of a fact would land in different generation batches and a rollout
(one answer in every language) could not be scored jointly. `FactGroupedSampler` yields the
same layout as `RepeatSampler` with facts as the unit of shuffling:

    for each chunk of `facts_per_batch` shuffled facts (one global generation batch):
        repeat `repeat_count` times:            # TRL: num_iterations * steps_per_generation
            for each fact of the chunk:
                for each language row of the fact:
                    yield the row `num_generations` times in a row

With several processes, accelerate cuts the index stream into per-process batches of
`per_rank_rows` = per_device_train_batch_size * steps_per_generation indices and deals them out
in turn (rank 0 gets the first, rank 1 the second, ...). A per-process batch holds whole facts
exactly when `per_rank_rows` is a multiple of rows_per_fact * num_generations; then a chunk of
`facts_per_batch` facts splits into `num_processes` runs of whole facts.
`check_rank_layout` tests that condition.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from interp.errors import ConfigError, DataError


def fact_row_groups(
    fact_ids: Sequence, languages: Sequence[str], expected: Sequence[str]
) -> list[list[int]]:
    """Dataset row indices of each fact, ordered as `expected` languages.

    Raises DataError naming the fact and the language when a fact lacks one of `expected`
    or holds a language twice. Facts come in order of first appearance.
    """
    if len(fact_ids) != len(languages):
        raise DataError(f"{len(fact_ids)} fact_id values for {len(languages)} language values")
    rows: dict[object, dict[str, int]] = {}
    for index, (fact_id, lang) in enumerate(zip(fact_ids, languages, strict=True)):
        by_language = rows.setdefault(fact_id, {})
        if lang in by_language:
            raise DataError(
                f"fact {fact_id!r} has two rows in language {lang!r} (rows {by_language[lang]} "
                f"and {index}). Fix: one row per (fact, language)"
            )
        by_language[lang] = index
    groups = []
    for fact_id, by_language in rows.items():
        missing = [lang for lang in expected if lang not in by_language]
        if missing:
            raise DataError(
                f"fact {fact_id!r} has no row in language(s) {', '.join(missing)}; a GRPO rollout "
                f"answers in every one of {', '.join(expected)}. Fix: drop the fact or add its "
                "question in those languages"
            )
        groups.append([by_language[lang] for lang in expected])
    return groups


def check_rank_layout(
    *,
    per_rank_rows: int,
    num_generations: int,
    rows_per_fact: int,
    num_processes: int = 1,
) -> int:
    """Facts per process per generation batch; ConfigError when batches would split a fact.

    `per_rank_rows` = per_device_train_batch_size * steps_per_generation (what one process
    generates for at once). It must hold whole facts: a multiple of rows_per_fact * G.
    """
    block = rows_per_fact * num_generations
    if num_generations < 1 or rows_per_fact < 1 or num_processes < 1:
        raise ConfigError(
            f"num_generations={num_generations}, rows_per_fact={rows_per_fact}, "
            f"num_processes={num_processes}: all must be >= 1"
        )
    if per_rank_rows < block or per_rank_rows % block:
        global_rows = per_rank_rows * num_processes
        raise ConfigError(
            f"each process generates for {per_rank_rows} rows at a time (generation_batch_size "
            f"{global_rows} over {num_processes} process(es)), so generation_batch_size / "
            f"num_generations = {global_rows // max(num_generations, 1)} prompts, which does not "
            f"hold whole facts of {rows_per_fact} languages on every process. Fix: make "
            "per_device_train_batch_size * steps_per_generation a multiple of "
            f"languages x num_generations = {block} (with GRPORegime: batch_size, the facts per "
            "step, a multiple of the number of processes)"
        )
    return per_rank_rows // block


class FactGroupedSampler(Sampler[int]):
    """TRL's RepeatSampler layout with whole facts as the unit of shuffling (see module doc).

    `fact_rows`: the dataset row indices of each fact (all of its languages, in a fixed order).
    `facts_per_batch`: facts per global generation batch (generation_batch_size / (G * rows)).
    A trailing chunk with fewer facts is dropped, as RepeatSampler drops its partial batch.
    The permutation comes from a private generator seeded with `seed`, so every process draws
    the same order, and each new pass (epoch) draws a new one.
    """

    def __init__(
        self,
        fact_rows: Sequence[Sequence[int]],
        num_generations: int,
        facts_per_batch: int = 1,
        repeat_count: int = 1,
        shuffle: bool = True,
        seed: int | None = 0,
    ):
        if not fact_rows:
            raise DataError("FactGroupedSampler got no facts. Fix: give at least one fact")
        sizes = {len(rows) for rows in fact_rows}
        if len(sizes) != 1 or 0 in sizes:
            raise DataError(
                f"facts hold different numbers of rows {sorted(sizes)}. Fix: the same languages "
                "for every fact (fact_row_groups checks this)"
            )
        if num_generations < 1 or facts_per_batch < 1 or repeat_count < 1:
            raise ConfigError(
                f"num_generations={num_generations}, facts_per_batch={facts_per_batch}, "
                f"repeat_count={repeat_count}: all must be >= 1"
            )
        if facts_per_batch > len(fact_rows):
            raise ConfigError(
                f"facts_per_batch={facts_per_batch} but only {len(fact_rows)} facts: no full "
                "generation batch. Fix: fewer facts per step, or more facts"
            )
        self.fact_rows = [list(rows) for rows in fact_rows]
        self.num_generations = num_generations
        self.facts_per_batch = facts_per_batch
        self.repeat_count = repeat_count
        self.shuffle = shuffle
        self.seed = seed
        self.rows_per_fact = sizes.pop()
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)

    def fact_order(self) -> list[int]:
        """Positions into `fact_rows` for one pass (advances the generator when shuffling)."""
        if not self.shuffle:
            return list(range(len(self.fact_rows)))
        return torch.randperm(len(self.fact_rows), generator=self.generator).tolist()

    def __iter__(self) -> Iterator[int]:
        order = self.fact_order()
        full = len(order) - len(order) % self.facts_per_batch
        for start in range(0, full, self.facts_per_batch):
            chunk = order[start : start + self.facts_per_batch]
            for _ in range(self.repeat_count):
                for fact in chunk:
                    for row in self.fact_rows[fact]:
                        for _ in range(self.num_generations):
                            yield row

    def __len__(self) -> int:
        chunks = len(self.fact_rows) // self.facts_per_batch
        return (
            chunks
            * self.facts_per_batch
            * self.rows_per_fact
            * self.num_generations
            * self.repeat_count
        )
