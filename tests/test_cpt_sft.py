"""CPT and SFT on a tiny random Qwen2 model: data format, loss masks, learning, checkpoints,
resume, LoRA merging, bad input and the dry run of the paper's plan."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")

from transformers import TrainerCallback  # noqa: E402

from interp.errors import ConfigError, DataError, ModelError  # noqa: E402
from interp.facts import FactSet, WorldConfig, build_world  # noqa: E402
from interp.models.loading import load_model, load_tokenizer  # noqa: E402
from interp.models.tiny import build_tiny  # noqa: E402
from interp.train.checkpoints import MANIFEST, partial_dir  # noqa: E402
from interp.train.cpt import CPTRegime, build_cpt_trainer, cpt_documents, train_cpt  # noqa: E402
from interp.train.regimes import LoraSettings, dry_run, read_accelerate_config  # noqa: E402
from interp.train.sft import (  # noqa: E402
    SFTRegime,
    build_sft_trainer,
    format_prompt,
    sft_rows,
    train_sft,
)

LANGS = ("en", "de", "ja")
REPO = Path(__file__).resolve().parents[1]
ACCELERATE = REPO / "configs" / "accelerate"


@pytest.fixture(scope="module")
def facts():
    facts, _ = build_world(WorldConfig(languages=LANGS, relations=("currency",)))
    return facts


@pytest.fixture(scope="module")
def parent(facts, tmp_path_factory) -> Path:
    """A random tiny qwen2 whose tokenizer saw the statements and the prompts."""
    items = [item for fact in facts for item in fact.items.values()]
    texts = [i.statement for i in items] + [format_prompt(i) + " A B C D" for i in items]
    return build_tiny(tmp_path_factory.mktemp("tiny"), texts=texts, vocab_size=500)


def _move_answer(item, index: int):
    """The same question with its correct option moved to `index`."""
    options, ids, a = list(item.options), list(item.option_ids), item.answer_index
    options[a], options[index] = options[index], options[a]
    ids[a], ids[index] = ids[index], ids[a]
    return dataclasses.replace(
        item, options=tuple(options), option_ids=tuple(ids), answer_index=index
    )


@pytest.fixture(scope="module")
def letter_task(facts) -> FactSet:
    """Four facts whose answer letter depends on the language (en A, de B, ja C): learnable."""
    letter = {"en": 0, "de": 1, "ja": 2}
    chosen = facts.split("train").facts[:4]
    moved = [
        dataclasses.replace(f, items={c: _move_answer(i, letter[c]) for c, i in f.items.items()})
        for f in chosen
    ]
    return FactSet(moved, facts.languages)


def _cpt_config(**changes) -> CPTRegime:
    base = dict(
        max_steps=4,
        save_steps=2,
        batch_size=2,
        max_length=32,
        learning_rate=1e-3,
        fact_share=0.25,
        logging_steps=1,
        languages=LANGS,
        device="cpu",
    )
    return CPTRegime(**{**base, **changes})


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


# ---- CPT data ---------------------------------------------------------------------------


def test_cpt_documents_hold_each_fact_in_every_language_in_random_order(facts):
    config = CPTRegime(languages=LANGS, repeats=2, seed=3)
    train = facts.split("train").facts
    docs = cpt_documents(facts, config)
    assert len(docs) == 2 * len(train)
    orders = set()
    for fact, doc in zip(train + train, docs, strict=True):
        lines = doc.split("\n")
        assert len(lines) == len(LANGS)
        codes = [line.split(": ", 1)[0] for line in lines]
        assert sorted(codes) == sorted(LANGS)
        for line in lines:
            code, sentence = line.split(": ", 1)
            assert sentence == fact.items[code].statement
        orders.add(tuple(codes))
    assert len(orders) > 3  # 6 possible orders over ~380 documents: shuffled, not fixed

    half = cpt_documents(facts, CPTRegime(languages=LANGS, fact_share=0.5))
    assert len(half) == round(0.5 * len(train))
    parallel = cpt_documents(
        facts,
        CPTRegime(languages=("en", "de"), fact_share=0.1),
        parallel_texts=[{"en": "Hello.", "de": "Hallo.", "ja": "unused"}],
    )
    assert sorted(parallel[-1].split("\n")) == ["de: Hallo.", "en: Hello."]


def test_cpt_packs_every_token_into_fixed_length_blocks(facts, parent, tmp_path):
    model, tokenizer = load_model(parent)
    config = _cpt_config(fact_share=0.1)
    docs = cpt_documents(facts, config)
    trainer = build_cpt_trainer(model, tokenizer, tmp_path / "p", docs, config)
    rows = trainer.train_dataset
    lengths = [len(ids) for ids in rows["input_ids"]]
    assert sum(n != config.max_length for n in lengths) <= 1  # only the tail block is shorter
    expected = Counter()
    for doc in docs:  # each document followed by eos, as TRL's language-modelling format
        expected.update(tokenizer(doc)["input_ids"] + [tokenizer.eos_token_id])
    assert Counter(i for ids in rows["input_ids"] for i in ids) == expected
    assert rows["labels"] == rows["input_ids"]  # causal LM loss on every token


# ---- SFT data ---------------------------------------------------------------------------


def test_sft_prompt_format_and_targets(facts):
    item = facts.split("train").facts[0].items["de"]
    letters = "ABCD"
    expected = "\n".join(
        [f"Question: {item.question}"]
        + [f"{letters[i]}. {item.options[i]}" for i in range(4)]
        + ["Answer:"]
    )
    assert format_prompt(item) == expected
    rows = sft_rows(facts, SFTRegime(languages=LANGS))
    assert len(rows) == len(facts.split("train")) * len(LANGS)
    by_key = {(r["fact_id"], r["language"]): r for r in rows}
    row = by_key[(item.fact_id, "de")]
    assert row["completion"] == " " + letters[item.answer_index]
    answers = {
        (r["fact_id"], r["language"]): r for r in sft_rows(facts, SFTRegime(target="answer"))
    }
    assert answers[(item.fact_id, "de")]["completion"] == " " + item.answer_text


@pytest.mark.parametrize("target", ["letter", "answer"])
def test_sft_labels_cover_only_the_target_and_eos(letter_task, parent, tmp_path, target):
    model, tokenizer = load_model(parent)
    config = SFTRegime(target=target, max_steps=1, device="cpu")
    rows = sft_rows(letter_task, config)
    trainer = build_sft_trainer(model, tokenizer, tmp_path / "p", rows, config)
    eos = tokenizer.eos_token_id
    expected = {}  # full ids -> number of prompt tokens, tokenized by hand
    for row in rows:
        prompt = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        target_ids = tokenizer(row["completion"], add_special_tokens=False)["input_ids"]
        expected[tuple(prompt + target_ids + [eos])] = (len(prompt), target_ids)
    assert len(trainer.train_dataset) == len(rows)
    for example in trainer.train_dataset:
        n_prompt, target_ids = expected[tuple(example["input_ids"])]
        labels = example["labels"]
        assert labels[:n_prompt] == [-100] * n_prompt
        assert labels[n_prompt:] == target_ids + [eos]
    if target == "letter":
        assert all(len(t) == 1 for _, t in expected.values())  # " A".." D" are single tokens
    # the collator pads labels with -100, never with the pad (= eos) id
    examples = [trainer.train_dataset[i] for i in range(4)]
    batch = trainer.data_collator(examples)
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
    carried = (batch["labels"] != -100).sum(dim=1).tolist()
    assert carried == [sum(x != -100 for x in e["labels"]) for e in examples]


def _letter_probability(model_dir: Path, facts: FactSet) -> tuple[float, float]:
    """Mean probability of the correct letter among A-D after the prompt, and accuracy."""
    model, tokenizer = load_model(model_dir)
    letters = [tokenizer(" " + x, add_special_tokens=False)["input_ids"][0] for x in "ABCD"]
    probs, hits = [], []
    for item in facts.items():
        ids = tokenizer(format_prompt(item), return_tensors="pt")["input_ids"]
        with torch.no_grad():
            p = model(ids).logits[0, -1, letters].softmax(-1)
        probs.append(float(p[item.answer_index]))
        hits.append(int(p.argmax()) == item.answer_index)
    return sum(probs) / len(probs), sum(hits) / len(hits)


def test_sft_steps_raise_the_correct_letter_probability(letter_task, parent, tmp_path):
    before, _ = _letter_probability(parent, letter_task)
    config = SFTRegime(
        max_steps=24,
        batch_size=6,
        learning_rate=3e-3,
        lr_scheduler="constant",
        logging_steps=8,
        device="cpu",
    )
    out = train_sft(parent, letter_task, tmp_path / "sft", config)
    after, accuracy = _letter_probability(out, letter_task)
    assert 0.15 < before < 0.35  # a random model: about 1/4
    assert after > before + 0.2
    assert accuracy >= 11 / 12


# ---- checkpoints, overwrite, resume -----------------------------------------------------


@pytest.fixture(scope="module")
def reference_run(facts, parent, tmp_path_factory) -> Path:
    """An uninterrupted CPT run of 4 steps (trainer checkpoints every 2)."""
    return train_cpt(parent, facts, tmp_path_factory.mktemp("runs") / "cpt", _cpt_config())


def test_checkpoint_and_manifest_are_complete(reference_run, facts, parent):
    import trl

    out = reference_run
    for name in ("config.json", "model.safetensors", "tokenizer.json", MANIFEST):
        assert (out / name).is_file(), name
    assert not partial_dir(out).exists()
    manifest = json.loads((out / MANIFEST).read_text())
    config = _cpt_config()
    assert manifest["regime"] == "cpt"
    assert manifest["parent"]["path"] == str(parent)
    assert manifest["config"] == json.loads(json.dumps(config.to_dict()))
    assert manifest["seed"] == config.seed and manifest["steps"] == 4
    assert manifest["data"]["documents"] == round(0.25 * len(facts.split("train")))
    assert manifest["data"]["languages"] == list(LANGS)
    assert len(manifest["data_fingerprint"]) == 16
    assert manifest["versions"]["trl"] == trl.__version__
    assert manifest["wall_time_s"] > 0
    assert [s for s, _ in manifest["loss_history"]] == [1, 2, 3, 4]
    assert manifest["final_train_loss"] == manifest["loss_history"][-1][1]
    assert manifest["resumed_from"] is None
    trained, before = _weights(out), _weights(parent)
    assert trained.keys() == before.keys()
    assert any(not torch.equal(trained[k], before[k]) for k in before)
    model, _ = load_model(out)  # a plain HF folder that loads


def test_existing_output_is_refused_unless_overwrite(reference_run, facts, parent):
    manifest_before = (reference_run / MANIFEST).read_bytes()
    with pytest.raises(DataError, match="already exists.*overwrite"):
        train_cpt(parent, facts, reference_run, _cpt_config())
    assert (reference_run / MANIFEST).read_bytes() == manifest_before


def test_overwrite_replaces_the_checkpoint(facts, parent, tmp_path):
    out = train_cpt(parent, facts, tmp_path / "cpt", _cpt_config(max_steps=1, save_steps=0))
    train_cpt(parent, facts, out, _cpt_config(max_steps=2, save_steps=0), overwrite=True)
    assert json.loads((out / MANIFEST).read_text())["steps"] == 2


class _Interrupt(Exception):
    pass


class _StopAfterSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 2:
            raise _Interrupt


class _CountSteps(TrainerCallback):
    def __init__(self):
        self.steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1


def test_resume_continues_from_the_saved_step(reference_run, facts, parent, tmp_path):
    out = tmp_path / "cpt"
    with pytest.raises(_Interrupt):
        train_cpt(parent, facts, out, _cpt_config(), callbacks=[_StopAfterSave()])
    assert not out.exists()  # nothing half-written under the final name
    assert (partial_dir(out) / "checkpoint-2").is_dir()

    with pytest.raises(ConfigError, match="another configuration"):
        train_cpt(parent, facts, out, _cpt_config(learning_rate=5e-4))
    assert (partial_dir(out) / "checkpoint-2").is_dir()

    counter = _CountSteps()
    train_cpt(parent, facts, out, _cpt_config(), callbacks=[counter])
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["resumed_from_step"] == 2 and manifest["steps"] == 4
    assert counter.steps == 2  # only steps 3 and 4 ran in the second call
    assert not partial_dir(out).exists()
    resumed, reference = _weights(out), _weights(reference_run)
    for key in reference:  # same data order, optimizer and scheduler state as uninterrupted
        torch.testing.assert_close(resumed[key], reference[key], rtol=1e-4, atol=1e-5)


# ---- LoRA --------------------------------------------------------------------------------


def test_lora_run_merges_into_a_plain_model(letter_task, parent, tmp_path):
    lora = LoraSettings(enabled=True, r=4, alpha=8, dropout=0.0)
    config = SFTRegime(max_steps=2, batch_size=4, learning_rate=1e-2, lora=lora, device="cpu")
    out = train_sft(parent, letter_task, tmp_path / "lora", config)
    assert not (out / "adapter_config.json").exists()
    trained, before = _weights(out), _weights(parent)
    assert trained.keys() == before.keys()  # no lora_A / lora_B / base_layer names
    # only LoRA targets (the projections) change; embeddings, norms and the head do not
    changed = {k for k in before if not torch.equal(trained[k], before[k])}
    assert changed and all(
        k.rsplit(".", 2)[-2] in lora.targets(load_model(out)[0]) for k in changed
    )
    assert not any("embed" in k or "norm" in k or "lm_head" in k for k in changed)
    assert json.loads((out / MANIFEST).read_text())["lora_merged"] is True


# ---- bad input ---------------------------------------------------------------------------


def test_missing_parent_is_named(facts, tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelError, match="no-such-model.*Fix"):
        train_sft(missing, facts, tmp_path / "out", SFTRegime(max_steps=1, languages=LANGS))
    assert not (tmp_path / "out").exists() and not partial_dir(tmp_path / "out").exists()


def test_tokenizer_larger_than_the_embedding_is_refused(facts, parent, tmp_path):
    tokenizer = load_tokenizer(parent)
    tokenizer.add_tokens([f"<extra_{i}>" for i in range(50)])
    tokenizer.save_pretrained(tmp_path / "big-tokenizer")
    rows = _weights(parent)["model.embed_tokens.weight"].shape[0]
    assert len(tokenizer) > rows
    with pytest.raises(ModelError, match="embeds only"):
        train_sft(
            parent,
            facts,
            tmp_path / "out",
            SFTRegime(max_steps=1, languages=LANGS),
            tokenizer=tmp_path / "big-tokenizer",
        )
    assert not (tmp_path / "out").exists() and not partial_dir(tmp_path / "out").exists()


def test_fact_missing_a_language_is_named(facts, parent, tmp_path):
    for train in (train_cpt, train_sft):
        config_class = CPTRegime if train is train_cpt else SFTRegime
        with pytest.raises(DataError, match="no item in language 'fr'.*Fix"):
            train(parent, facts, tmp_path / "out", config_class(languages=("en", "fr")))
    assert not (tmp_path / "out").exists()


def test_config_errors():
    with pytest.raises(ConfigError, match="unknown preset"):
        SFTRegime.preset("huge")
    with pytest.raises(ConfigError, match="target"):
        SFTRegime(target="both")
    with pytest.raises(ConfigError, match="learning_rate"):
        CPTRegime(learning_rate=0)
    paper = SFTRegime.preset("paper")
    assert (paper.learning_rate, paper.epochs, paper.lora.r, paper.lora.alpha) == (2e-5, 1, 64, 128)
    assert SFTRegime.from_dict(json.loads(json.dumps(paper.to_dict()))) == paper
    args = CPTRegime.preset("smoke", device="cpu").training_arguments("/tmp/x")
    assert args["use_cpu"] is True and args["bf16"] is False  # the CPU traps


# ---- dry run ------------------------------------------------------------------------------


def test_accelerate_configs_parse():
    kinds = {p.stem: read_accelerate_config(p) for p in ACCELERATE.glob("*.yaml")}
    types = {v["distributed_type"] for v in kinds.values()}
    assert {"DEEPSPEED", "FSDP", "MULTI_GPU", "NO"} <= types
    assert kinds["deepspeed_zero3"]["deepspeed_zero_stage"] == 3
    assert kinds["single"]["num_processes"] == 1


def test_dry_run_of_the_paper_plan(facts, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    report = dry_run(
        "sft",
        "Qwen/Qwen2.5-7B",
        facts,
        SFTRegime.preset("paper", languages=LANGS),
        accelerate_config=ACCELERATE / "deepspeed_zero3.yaml",
    )
    # LoRA r=64 on q,k,v,o,gate,up,down of Qwen2.5-7B by hand: r * (in + out) per module
    hidden, kv, inter, r = 3584, 4 * 128, 18944, 64
    per_layer = r * (
        2 * (hidden + hidden) + 2 * (hidden + kv) + 2 * (hidden + inter) + (inter + hidden)
    )
    assert report["lora"]["trainable_params"] == 28 * per_layer == 161_480_704
    assert report["lora"]["modules"] == 7 * 28
    rows = len(facts.split("train")) * len(LANGS)
    assert report["data"]["rows"] == rows
    assert report["steps"] == -(-rows // (8 * 2 * 8))  # batch 8 x accumulation 2 x 8 GPUs

    olmo = dry_run("cpt", "allenai/OLMo-2-1124-7B", facts, CPTRegime.preset("paper"))
    assert olmo["model_shape"]["num_layers"] == 32 and olmo["lora"]["modules"] == 7 * 32

    with pytest.raises(ConfigError, match="does not exist"):
        dry_run("sft", "Qwen/Qwen2.5-7B", facts, accelerate_config=tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("distributed_type: MULTI_GPU\nnum_processes: 2\nnot_a_key: 1\n")
    with pytest.raises(ConfigError, match="does not parse"):
        dry_run("sft", "Qwen/Qwen2.5-7B", facts, accelerate_config=bad)
    wrong = SFTRegime.preset("paper", lora=LoraSettings(enabled=True, target_modules=("qkv",)))
    with pytest.raises(ConfigError, match="qkv"):
        dry_run("sft", "Qwen/Qwen2.5-7B", facts, wrong)
    with pytest.raises(ConfigError, match="known models"):
        dry_run("sft", "nobody/unknown-model", facts)


def test_dry_run_on_a_local_model(facts, parent, reference_run):
    report = dry_run("cpt", parent, facts, CPTRegime.preset("smoke", languages=LANGS))
    assert report["model_config"] == "local folder" and "lora" not in report
    with pytest.raises(DataError, match="already exists"):
        dry_run("cpt", parent, facts, CPTRegime.preset("smoke"), out_dir=reference_run)
