"""The paper's GRPO on TRL: fact-grouping sampler, shared advantage, learning, two processes."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from interp.errors import ConfigError, DataError, ModelError
from interp.facts import WorldConfig, build_world
from interp.facts.schema import Fact, FactSet
from interp.train.grpo import GRPORegime, grpo_prompt, grpo_rows, train_grpo
from interp.train.sampler import FactGroupedSampler, check_rank_layout, fact_row_groups

REPO = Path(__file__).resolve().parents[1]
LANGS = ("en", "de")


def smoke(**changes) -> GRPORegime:
    """The smoke preset on CPU, over all given facts, with the paper's prompt (options shown)."""
    return GRPORegime.preset("smoke", split=None, device="cpu", prompt_format="paper", **changes)


@pytest.fixture(scope="module")
def world() -> FactSet:
    facts, _ = build_world(WorldConfig(languages=LANGS, relations=("continent",)))
    return facts


def first(world: FactSet, n: int) -> FactSet:
    return FactSet(world.facts[:n], world.languages)


@pytest.fixture(scope="module")
def warm_model(world, tmp_path_factory) -> Path:
    """A tiny Qwen2 model taught to answer every GRPO prompt with one of its options, each
    equally often: its answers parse but are right only by chance, so GRPO has signal."""
    import torch

    from interp.models.loading import load_model
    from interp.models.tiny import build_tiny_model, train_tokenizer

    root = tmp_path_factory.mktemp("grpo_models")
    rows = grpo_rows(first(world, 2), LANGS)
    train_tokenizer([r["prompt"] + " " + o for r in rows for o in r["options"]], 400, root / "tok")
    base = build_tiny_model(
        "qwen2", root / "tok", root / "base", hidden_size=64, num_layers=2, intermediate_size=128
    )
    model, tokenizer = load_model(base, device="cpu")
    pairs = []
    for row in rows:
        prompt = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        for option in row["options"]:
            answer = tokenizer(" " + option + "\n", add_special_tokens=False)["input_ids"]
            pairs.append((prompt, answer + [tokenizer.eos_token_id]))
    width = max(len(p) + len(a) for p, a in pairs)
    ids = torch.zeros(len(pairs), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, (p, a) in enumerate(pairs):
        ids[i, : len(p) + len(a)] = torch.tensor(p + a)
        mask[i, : len(p) + len(a)] = 1
        labels[i, len(p) : len(p) + len(a)] = torch.tensor(a)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(80):  # full batch; the loss nears its floor (ln 4 on the first answer token)
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    out = root / "warm"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# ------------------------------------------------------------------ the sampler


def facts_of_stream(stream, row_fact, row_lang, G, languages):
    """Parse a sampler stream into facts, checking the layout on the way: each row G times in
    a row, then the next language of the same fact, all languages in order."""
    facts = []
    block = G * len(languages)
    assert len(stream) % block == 0
    for start in range(0, len(stream), block):
        run = stream[start : start + block]
        fact = row_fact[run[0]]
        for k, lang in enumerate(languages):
            rows = run[k * G : (k + 1) * G]
            assert len(set(rows)) == 1, rows  # one prompt repeated G times
            assert row_fact[rows[0]] == fact and row_lang[rows[0]] == lang
        facts.append(fact)
    return facts


def interleaved_rows(n_facts, languages):
    """Row order language-major (all en rows, then all de rows), so grouping is not free."""
    return [(f"f{i}", lang) for lang in languages for i in range(n_facts)]


def test_sampler_matches_trl_repeat_sampler_with_one_row_per_fact():
    # Second implementation: with one language per fact the layout must be TRL's own.
    from trl.trainer.utils import RepeatSampler

    ours = FactGroupedSampler([[i] for i in range(11)], 3, facts_per_batch=2, repeat_count=2)
    theirs = RepeatSampler(list(range(11)), 3, batch_size=2, repeat_count=2, seed=0)
    assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)


def test_sampler_keeps_facts_whole_one_rank():
    G, per_batch, repeat = 3, 2, 2
    rows = interleaved_rows(5, ("en", "de", "sw"))
    groups = fact_row_groups([f for f, _ in rows], [lang for _, lang in rows], ("en", "de", "sw"))
    sampler = FactGroupedSampler(groups, G, facts_per_batch=per_batch, repeat_count=repeat, seed=3)
    row_fact = [f for f, _ in rows]
    row_lang = [lang for _, lang in rows]
    for _ in range(2):  # two passes (epochs): both complete, in different orders
        stream = list(sampler)
        assert len(stream) == len(sampler) == (5 // per_batch) * per_batch * 3 * G * repeat
        facts = facts_of_stream(stream, row_fact, row_lang, G, ("en", "de", "sw"))
        chunks = [facts[i : i + per_batch] for i in range(0, len(facts), per_batch)]
        # each generation chunk of `per_batch` facts is repeated `repeat` times, then the next
        for i in range(0, len(chunks), repeat):
            assert chunks[i] == chunks[i + 1]
        distinct = [c for c in chunks[::repeat]]
        seen = [f for c in distinct for f in c]
        assert len(seen) == len(set(seen)) == 4  # 5 facts, the partial last chunk dropped
    orders = [[row_fact[i] for i in list(sampler)[:: 3 * G * repeat]] for _ in range(3)]
    assert len({tuple(o) for o in orders}) > 1  # shuffled anew each pass


@pytest.mark.parametrize(("per_device", "steps_per_generation"), [(8, 1), (4, 2)])
def test_sampler_gives_each_rank_whole_facts(per_device, steps_per_generation):
    # Deal the stream out the way Trainer + accelerate do (prepare_data_loader, 2 processes).
    from accelerate.data_loader import prepare_data_loader
    from torch.utils.data import DataLoader

    G, languages, processes = 2, ("en", "de"), 2
    rows = interleaved_rows(7, languages)
    row_fact = [f for f, _ in rows]
    row_lang = [lang for _, lang in rows]
    per_rank_rows = per_device * steps_per_generation
    facts_per_rank = check_rank_layout(
        per_rank_rows=per_rank_rows,
        num_generations=G,
        rows_per_fact=len(languages),
        num_processes=processes,
    )
    assert facts_per_rank == per_rank_rows // (G * len(languages)) == 2

    def deal(make_sampler):
        batches = {}
        for rank in range(processes):
            loader = DataLoader(
                list(range(len(rows))),
                batch_size=per_rank_rows,
                sampler=make_sampler(),
                collate_fn=list,
            )
            shard = prepare_data_loader(
                loader, num_processes=processes, process_index=rank, put_on_device=False
            )
            batches[rank] = list(shard)
        return batches

    # control: TRL's own row sampler splits facts across batches, and the check sees it
    from trl.trainer.utils import RepeatSampler

    trl_batches = deal(
        lambda: RepeatSampler(rows, G, per_rank_rows * processes // G, steps_per_generation, seed=0)
    )
    with pytest.raises(AssertionError):
        for batch in trl_batches[0] + trl_batches[1]:
            facts_of_stream(batch, row_fact, row_lang, G, languages)

    batches = deal(
        lambda: FactGroupedSampler(
            fact_row_groups(row_fact, row_lang, languages),
            G,
            facts_per_batch=facts_per_rank * processes,
            repeat_count=steps_per_generation,
            seed=0,
        )
    )
    assert len(batches[0]) == len(batches[1]) > 0
    for step, (mine, theirs) in enumerate(zip(batches[0], batches[1], strict=True)):
        facts0 = facts_of_stream(mine, row_fact, row_lang, G, languages)
        facts1 = facts_of_stream(theirs, row_fact, row_lang, G, languages)
        assert len(facts0) == len(facts1) == facts_per_rank, step
        assert not set(facts0) & set(facts1)  # no fact split across processes


def test_rank_layout_refuses_split_facts():
    with pytest.raises(ConfigError, match="whole facts"):
        check_rank_layout(per_rank_rows=6, num_generations=2, rows_per_fact=2)
    with pytest.raises(ConfigError, match="multiple of languages x num_generations = 24"):
        check_rank_layout(per_rank_rows=8, num_generations=8, rows_per_fact=3)


def test_missing_language_names_fact_and_language(world):
    facts = first(world, 3)
    broken = facts.facts[1]
    facts.facts[1] = Fact(broken.fact_id, broken.relation, {"en": broken.items["en"]})
    with pytest.raises(DataError, match=rf"{broken.fact_id}.*'de'"):
        grpo_rows(facts, LANGS)
    with pytest.raises(DataError, match="fact 'b' has no row in language.*de"):
        fact_row_groups(["a", "a", "b"], ["en", "de", "en"], LANGS)
    with pytest.raises(DataError, match="two rows in language 'en'"):
        fact_row_groups(["a", "a"], ["en", "en"], ("en",))


def test_prompt_is_the_papers(world):
    item = world.facts[0].items["de"]
    prompt = grpo_prompt(item)
    assert prompt.startswith(f"Question: {item.question}\nA. {item.options[0]}\nB. ")
    assert "Return only the full answer text in German. Do not return the letter." in prompt
    assert grpo_prompt(item, "question") == f"Question: {item.question}\nAnswer:"
    with pytest.raises(ConfigError, match="prompt_format"):
        grpo_prompt(item, "chat")


def test_plan_counts_steps_and_completions(world):
    from interp.train.grpo import grpo_plan

    train_facts = sum(fact.split == "train" for fact in world)
    plan = grpo_plan(world, GRPORegime.preset("paper", batch_size=2, epochs=1.0))
    assert plan["facts"] == train_facts and plan["steps"] == train_facts // 2
    assert plan["completions_per_step"] == 2 * len(LANGS) * 8 == plan["per_device_train_batch_size"]
    two = grpo_plan(world, GRPORegime.preset("paper", batch_size=2), num_processes=2)
    assert two["per_device_train_batch_size"] == len(LANGS) * 8  # one whole fact per process


def test_bad_configs():
    with pytest.raises(ConfigError, match="num_generations"):
        GRPORegime(num_generations=1)
    with pytest.raises(ConfigError, match="reward"):
        GRPORegime(reward="majority")
    with pytest.raises(ConfigError, match="multiple of 2"):
        GRPORegime(batch_size=3).grpo_arguments("unused", num_languages=2, num_processes=2)
    with pytest.raises(ConfigError, match="unknown preset"):
        GRPORegime.preset("huge")
    paper = GRPORegime.preset("paper")
    assert (paper.learning_rate, paper.num_generations, paper.lora.r, paper.lora.alpha) == (
        1e-5,
        8,
        64,
        128,
    )
    assert GRPORegime.from_dict(json.loads(json.dumps(paper.to_dict()))) == paper


# ------------------------------------------------------------------ the trainer


# rollout j of each fact: (en answer, de answer); "right"/"wrong" name options, the rest is text
PLANTED = (("right", "right"), ("right", "wrong"), ("zzz", "right"), ("", "wrong"))
# by hand, per rollout: joint = per-language (+1 / 0 / -0.5 / 0) + bonus 1 when all correct;
# agreement = +1 for each language naming the rollout's majority entity (needs 2 of 2 here)
JOINT = (3.0, 1.0, 0.5, 0.0)
AGREEMENT = {"en": (1.0, 0.0, -0.5, 0.0), "de": (1.0, 0.0, 0.0, 0.0)}


def standardised(values):
    mean, std = statistics.mean(values), statistics.stdev(values)  # TRL: sample std + 1e-4
    return [(v - mean) / (std + 1e-4) for v in values]


@pytest.mark.parametrize("kind", ["joint", "agreement"])
def test_advantages_through_the_trainer(world, warm_model, tmp_path, kind):
    """Planted completions through TRL's own reward + advantage path. Joint: every language of
    a rollout gets the advantage of the rollout's reward, standardised over the G rollouts.
    Agreement: TRL's per-prompt GRPO, each language standardised on its own."""
    from interp.models.loading import load_model
    from interp.train.grpo import grpo_dataset, make_grpo_trainer

    facts = first(world, 2)
    G = len(PLANTED)
    config = smoke(batch_size=2, num_generations=G, reward=kind)
    model, tokenizer = load_model(warm_model, device="cpu")
    trainer = make_grpo_trainer(model, tokenizer, facts, config, tmp_path / "run")
    dataset = grpo_dataset(facts, LANGS, config)
    stream = list(trainer._get_train_sampler())[: len(facts) * len(LANGS) * G]
    inputs = [dict(dataset[i]) for i in stream]

    def rollout_index(rows):
        count: dict[tuple, int] = {}
        for row in rows:
            key = (row["fact_id"], row["language"])
            count[key] = count.get(key, -1) + 1
            yield count[key]

    texts = []
    for row, j in zip(inputs, rollout_index(inputs), strict=True):
        planted = PLANTED[j][LANGS.index(row["language"])]
        right = row["answer_index"]
        named = {"right": right, "wrong": (right + 1) % 4}.get(planted)
        texts.append(planted if named is None else row["options"][named])
    eos = [tokenizer.eos_token_id]
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] + eos for t in texts]
    trainer._generate_single_turn = lambda *args, **kwargs: (ids, None)  # the planted rollouts
    trainer.model.train()
    advantages = trainer._generate_and_score_completions(inputs)["advantages"].tolist()

    for row, j, advantage in zip(inputs, rollout_index(inputs), advantages, strict=True):
        rewards = JOINT if kind == "joint" else AGREEMENT[row["language"]]
        assert advantage == pytest.approx(standardised(rewards)[j], abs=1e-5), (row, j)


def test_grpo_raises_reward_and_writes_a_checkpoint(world, warm_model, tmp_path):
    from interp.io import checkpoint_fingerprint
    from interp.models.loading import load_model
    from interp.train.checkpoints import read_manifest

    facts = first(world, 2)
    config = smoke(
        max_steps=10,
        batch_size=2,
        num_generations=8,
        max_new_tokens=6,
        learning_rate=1e-3,
        repetition_penalty=1.0,  # the options are in the prompt: no penalty for copying them
        seed=0,
    )
    out = tmp_path / "grpo"
    parent_key = checkpoint_fingerprint(warm_model)
    assert train_grpo(warm_model, facts, out, config) == out
    manifest = read_manifest(out)
    rewards = [entry["reward"] for entry in manifest["reward_history"]]
    assert len(rewards) == 10
    # a rollout earns at most 3 (2 languages + bonus); chance answers earn far less
    assert statistics.mean(rewards[-3:]) > statistics.mean(rewards[:3]) + 0.5, rewards
    assert manifest["final_mean_reward"] == rewards[-1]
    assert manifest["steps"] == 10 and manifest["seed"] == 0
    assert manifest["parent"]["path"] == str(warm_model)
    assert manifest["parent_fingerprint"] == parent_key
    assert manifest["data"]["languages"] == list(LANGS) and manifest["data"]["facts"] == 2
    assert len(manifest["data_fingerprint"]) == 16 and manifest["wall_time_s"] > 0
    assert {"torch", "transformers", "trl"} <= set(manifest["versions"])
    assert GRPORegime.from_dict(manifest["config"]) == config
    assert not (tmp_path / "grpo.partial").exists()
    load_model(out, device="cpu")  # a plain HF folder

    before = (out / "manifest.json").read_text()
    with pytest.raises(DataError, match="already exists"):
        train_grpo(warm_model, facts, out, config)
    assert (out / "manifest.json").read_text() == before
    with pytest.raises(ModelError, match="does not exist"):
        train_grpo(tmp_path / "no-parent", facts, tmp_path / "other", config)


def test_trainer_refuses_batches_that_split_facts(world, warm_model, tmp_path):
    from trl import GRPOConfig

    from interp.models.loading import load_model
    from interp.train.grpo import grpo_dataset, polyfact_trainer_class

    model, tokenizer = load_model(warm_model, device="cpu")
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,  # 4 / G = 1 prompt per generation batch, 2 languages
        num_generations=4,
        use_cpu=True,
        bf16=False,
        report_to="none",
    )
    with pytest.raises(ConfigError, match="whole facts"):
        polyfact_trainer_class()(
            model=model,
            reward_funcs=[lambda completions, **_: [0.0] * len(completions)],
            args=args,
            train_dataset=grpo_dataset(first(world, 2), LANGS, smoke()),
            processing_class=tokenizer,
            languages=LANGS,
        )


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_get_whole_facts(warm_model, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        str(REPO / "tests" / "grpo_ddp_check.py"),
        str(warm_model),
        str(tmp_path / "ddp"),
        str(tmp_path / "log"),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    logs = [json.loads((tmp_path / "log" / f"rank{r}.json").read_text()) for r in (0, 1)]
    steps = [log["batches"] for log in logs]
    assert len(steps[0]) == len(steps[1]) == 2  # max_steps=2, one generation per step
    G = 4
    assert any(a != 0 for batches in steps for b in batches for a in b["advantages"])
    for batch0, batch1 in zip(*steps, strict=True):
        per_rank = []
        for batch in (batch0, batch1):
            rows = [tuple(r) for r in batch["rows"]]
            facts = {f for f, _ in rows}
            # whole facts: every language of each fact, each G times, nothing else
            assert sorted(rows) == sorted(
                (f, lang) for f in facts for lang in LANGS for _ in range(G)
            )
            # after TRL's cross-process gather and slice, rollout j (the j-th completion of
            # each language) still has one advantage in every language
            by_prompt: dict[tuple, list[float]] = {}
            for row, advantage in zip(rows, batch["advantages"], strict=True):
                by_prompt.setdefault(row, []).append(advantage)
            for fact in facts:
                assert by_prompt[(fact, "en")] == pytest.approx(by_prompt[(fact, "de")])
            per_rank.append(facts)
        assert len(per_rank[0]) == len(per_rank[1]) == 1
        assert not per_rank[0] & per_rank[1]
    manifest = json.loads((tmp_path / "ddp" / "manifest.json").read_text())
    assert manifest["num_processes"] == 2 and manifest["steps"] == 2


def test_lora_is_merged_before_saving(world, warm_model, tmp_path):
    import torch

    from interp.models.loading import load_model
    from interp.train.regimes import LoraSettings

    config = smoke(
        max_steps=2,
        batch_size=2,
        num_generations=4,
        max_new_tokens=4,
        learning_rate=1e-2,
        lora=LoraSettings(enabled=True, r=4, alpha=8, dropout=0.0),
    )
    out = train_grpo(warm_model, first(world, 2), tmp_path / "lora", config)
    assert not (out / "adapter_config.json").exists()
    parent, _ = load_model(warm_model, device="cpu")
    merged, _ = load_model(out, device="cpu")
    before, after = parent.state_dict(), merged.state_dict()
    assert set(before) == set(after)  # the plain architecture, no lora_A / lora_B left
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    # LoRA moves only the projections it wraps; embeddings and norms stay as they were
    assert changed and all(name.endswith("proj.weight") for name in changed), changed


def test_interrupted_run_resumes_from_its_partial_checkpoint(world, warm_model, tmp_path):
    from interp.train.grpo import polyfact_trainer_class

    class Interrupted(RuntimeError):
        pass

    class StopsAfterThreeSteps(polyfact_trainer_class()):
        def training_step(self, *args, **kwargs):
            if self.state.global_step == 3:
                raise Interrupted
            return super().training_step(*args, **kwargs)

    config = smoke(
        batch_size=2,
        num_generations=2,
        max_new_tokens=3,
        max_steps=4,
        save_steps=2,
    )
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        train_grpo(warm_model, first(world, 2), out, config, trainer_class=StopsAfterThreeSteps)
    assert not out.exists()
    assert (tmp_path / "run.partial" / "checkpoint-2").is_dir()
    with pytest.raises(ConfigError, match="another configuration"):
        train_grpo(warm_model, first(world, 2), out, config.replace(seed=1))
    train_grpo(warm_model, first(world, 2), out, config)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["resumed_from"] == "checkpoint-2" and manifest["steps"] == 4
    assert [h["step"] for h in manifest["reward_history"]] == [1, 2, 3, 4]
    assert not (tmp_path / "run.partial").exists()
