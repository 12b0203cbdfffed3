"""The organism's mixture, packing, training loop, checkpoint, resume and CLI.

Training runs use the smoke preset on a small slice of the world (5 languages, 60 facts), so
the whole file takes seconds.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from interp.errors import ConfigError, DataError
from interp.facts.schema import FactSet
from interp.train.corpus import (
    QA_TEMPLATE,
    MixtureConfig,
    PackedCorpus,
    build_mixture,
    facts_fingerprint,
)
from interp.train.organism import PRESETS, OrganismConfig, preset, train_organism

LANGS = ("en", "de", "ja", "sw", "ko")  # English, trained-high x2, trained-low, unseen
ROLE = {"de": "trained", "ja": "trained", "sw": "low", "ko": "unseen"}


@pytest.fixture(scope="module")
def small_facts(world) -> FactSet:
    from conftest import pick_facts

    return pick_facts(world[0], LANGS, {"train": 44, "validation": 4, "test": 12})


def smoke_config(**changes) -> OrganismConfig:
    base = PRESETS["smoke"].with_overrides(
        vocab_size=400, steps=12, save_every=4, warmup_steps=2, n_boot=20, threads=1
    )
    return replace(base, **changes)


# ------------------------------------------------------------------------------- mixture
def test_mixture_obeys_its_rates(small_facts):
    config = MixtureConfig(seed=3)
    mixture = build_mixture(small_facts, config)
    texts = Counter(mixture.texts())
    train = [f for f in small_facts if f.split == "train"]
    held_out = [f for f in small_facts if f.split != "train"]

    # English states every fact, held-out ones included, exactly english_repeats times
    for fact in small_facts:
        assert texts[fact.items["en"].statement] == config.english_repeats

    # held-out facts: no statement in another language, no question in any language
    everything = "\n".join(texts)
    for fact in held_out:
        for code in LANGS:
            assert fact.items[code].question not in everything
            if code != "en":
                assert fact.items[code].statement not in everything

    # shares of train facts stated / asked per language: round(share * n) exactly
    for code in LANGS[1:]:
        stated = sum(texts[f.items[code].statement] > 0 for f in train)
        assert stated == round(config.statement_share.get(ROLE[code], 0) * len(train)), code
    for code in LANGS:
        role = "english" if code == "en" else ROLE[code]
        asked = sum(
            texts[
                QA_TEMPLATE.format(
                    question=f.items[code].question, answer=f.items[code].answer_text
                )
            ]
            > 0
            for f in train
        )
        assert asked == round(config.qa_share.get(role, 0) * len(train)), code

    # name lines: English first, then round(share * n) of the entities named in each language
    labels: dict[str, set[str]] = {}
    for fact in small_facts:
        for code in LANGS:
            item = fact.items[code]
            labels.setdefault(fact.subject_id, set()).add(code)
            for entity in item.option_ids:
                labels.setdefault(entity, set()).add(code)
    names = [d.text for d in mixture.documents if d.kind == "names"]
    assert names and all(t.startswith("en: ") for t in names)
    for code in LANGS[1:]:
        named = sum({"en", code} <= langs for langs in labels.values())
        with_code = sum(f" | {code}: " in t for t in names)
        assert with_code == round(config.name_share[ROLE[code]] * named), code
    # the mixture is a function of its seed
    assert build_mixture(small_facts, config).texts() == mixture.texts()
    assert build_mixture(small_facts, replace(config, seed=4)).texts() != mixture.texts()


def test_mixture_rejects_bad_input(small_facts):
    no_english = FactSet(
        [replace(f, items={c: f.items[c] for c in ("de", "ja")}) for f in small_facts],
        ("de", "ja"),
    )
    with pytest.raises(DataError, match="English"):
        build_mixture(no_english)
    first = small_facts.facts[0]
    bare = replace(first, items={**first.items, "de": replace(first.items["de"], statement=None)})
    with pytest.raises(DataError, match=f"{first.fact_id}.*'de'"):
        build_mixture(FactSet([bare, *small_facts.facts[1:]], LANGS))
    with pytest.raises(ConfigError, match="statement_share"):
        MixtureConfig(statement_share={"trained": 1.5})


def test_packing_keeps_every_token_and_reorders_per_epoch():
    docs = [[i + 1] * (1 + i % 3) for i in range(48)]  # distinct token per document
    total = sum(len(d) + 1 for d in docs)  # 144 = 18 blocks of 8, nothing dropped
    packed = PackedCorpus(docs, seq_len=8, eos_id=0, seed=1)
    assert packed.blocks_per_epoch == total // 8 == 18
    for epoch in (0, 1):
        stream = packed.epoch(epoch).reshape(-1).tolist()
        assert stream[-1] == 0
        segments, current = [], []
        for token in stream:
            if token == 0:
                segments.append(current)
                current = []
            else:
                current.append(token)
        assert sorted(segments) == sorted(docs)  # every document once, whole
    uneven = PackedCorpus(docs[:-1], seq_len=8, eos_id=0)  # 140 tokens: 4 dropped
    assert uneven.epoch(0).size == 136
    assert not np.array_equal(packed.epoch(0), packed.epoch(1))
    # batches walk the blocks in order and roll over into the next epoch
    per_epoch = packed.blocks_per_epoch
    step = per_epoch // 3  # batch of 3 blocks that straddles the boundary when per_epoch % 3
    batch = packed.batch(step, 3)
    expected = [packed.epoch(i // per_epoch)[i % per_epoch] for i in range(3 * step, 3 * step + 3)]
    assert np.array_equal(batch, np.stack(expected))


# ------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def trained(small_facts, tmp_path_factory):
    out = tmp_path_factory.mktemp("organism") / "run" / "base"
    config = smoke_config()
    result = train_organism(small_facts, out, config, progress=False)
    return result, config, out


def test_training_lowers_loss_and_starts_at_uniform(trained):
    result, _config, _out = trained
    losses = dict(result.losses)
    vocab = json.loads((result.checkpoint / "config.json").read_text())["vocab_size"]
    assert abs(losses[1] - math.log(vocab)) < 0.1 * math.log(vocab)  # random init ~ uniform
    assert losses[max(losses)] < losses[1] - 0.5


def test_manifest_is_complete_and_matches_a_reload(trained, small_facts):
    from interp.evaluate.scoring import score_options
    from interp.models.loading import load_model
    from interp.train.checkpoints import partial_dir, read_manifest

    result, config, out = trained
    manifest = read_manifest(out)
    assert manifest["parent"] is None
    assert manifest["data_fingerprint"] == facts_fingerprint(small_facts)
    assert manifest["config"] == json.loads(json.dumps(config.to_dict()))
    assert manifest["seed"] == config.seed and manifest["steps"] == config.steps
    assert manifest["tokens_seen"] == config.steps * config.batch_size * config.seq_len
    assert manifest["wall_time_s"] > 0 and "torch" in manifest["versions"]
    metrics = manifest["metrics"]
    assert set(metrics["group_accuracy"]) == {
        "trained-high",
        "trained-low",
        "unseen",
        "trained",
        "all",
    }
    assert 0 <= metrics["total_consistency"]["value"] <= 1
    assert not partial_dir(out).exists()

    # the stored English accuracy is what the saved checkpoint scores after a reload
    model, tokenizer = load_model(out)
    test = small_facts.split("test")
    scores = score_options(model, tokenizer, test.to_frame(["en"]), progress=False)
    correct = [
        int(np.argmax(s)) == a
        for s, a in zip(scores["scores"], scores["answer_index"], strict=True)
    ]
    assert metrics["accuracy"]["en"]["n"] == len(test)
    assert metrics["accuracy"]["en"]["value"] == pytest.approx(np.mean(correct), abs=1e-4)


def test_tokenizer_ids_survive_reload(trained, small_facts):
    from tokenizers import Tokenizer

    from interp.models.loading import load_tokenizer

    _result, _config, out = trained
    reloaded = load_tokenizer(out)
    raw = Tokenizer.from_file(str(out / "tokenizer.json"))
    texts = [small_facts.facts[0].items[c].statement for c in LANGS] + ["Answer: 1,234 km"]
    for text in texts:
        ids = reloaded(text, add_special_tokens=False)["input_ids"]
        assert ids == raw.encode(text, add_special_tokens=False).ids
        assert reloaded.decode(ids) == text


def test_refuses_to_overwrite(trained, small_facts):
    _result, config, out = trained
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(DataError, match="already exists"):
        train_organism(small_facts, out, config, progress=False)
    assert (out / "manifest.json").read_bytes() == before


class Interrupt(Exception):
    pass


def test_resume_continues_and_matches_an_uninterrupted_run(trained, small_facts, tmp_path):
    from safetensors.torch import load_file

    from interp.train.checkpoints import partial_dir

    _result, config, out_full = trained
    out = tmp_path / "base"

    def stop_at_6(step, loss):
        if step == 6:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_organism(small_facts, out, config, progress=False, on_step=stop_at_6)
    assert partial_dir(out).is_dir() and not out.exists()

    with pytest.raises(ConfigError, match="another config"):
        train_organism(small_facts, out, replace(config, lr=1e-3), progress=False)

    seen = []
    result = train_organism(
        small_facts, out, config, progress=False, on_step=lambda s, _l: seen.append(s)
    )
    assert seen == list(range(5, config.steps + 1))  # last saved state was step 4
    assert result.manifest["resumed_from"] == 4
    full = load_file(out_full / "model.safetensors")
    resumed = load_file(out / "model.safetensors")
    assert full.keys() == resumed.keys()
    for name in full:
        assert torch_equal(full[name], resumed[name]), name


class _Touch:
    """A pickle that creates a file when it is loaded: code run from data."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("name", ["trainer_state.pt", "trainer_state.safetensors"])
def test_a_crafted_pickle_in_the_resume_state_is_refused(small_facts, tmp_path, capsys, name):
    import pickle

    from interp.cli import main
    from interp.facts import write_polyfact
    from interp.train.checkpoints import partial_dir

    write_polyfact(small_facts, tmp_path / "facts")
    root = tmp_path / "ckpt"
    work = partial_dir(root / "cli" / "base")
    work.mkdir(parents=True)
    touched = tmp_path / "touched"
    (work / name).write_bytes(pickle.dumps({"run_key": _Touch(touched)}))
    argv = ["train", "organism", "--preset", "smoke", "--steps", "2", "--run", "cli", "--threads"]
    argv += ["1", "--out", str(root), "--facts", str(tmp_path / "facts")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("interp: error:") and "Traceback" not in err
    assert name in err and "--no-resume" in err
    assert not touched.exists()  # nothing from the file ran
    assert not (root / "cli" / "base").exists()
    # the fix it names works
    assert main([*argv, "--no-resume"]) == 0
    assert not touched.exists() and (root / "cli" / "base" / "manifest.json").is_file()


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_config_and_preset_errors():
    with pytest.raises(ConfigError, match="family"):
        OrganismConfig(family="gpt2")
    with pytest.raises(ConfigError, match="steps=0"):
        OrganismConfig(steps=0)
    with pytest.raises(ConfigError, match="smoke"):
        preset("huge")


# ------------------------------------------------------------------------------- CLI
def test_cli_trains_from_a_polyfact_folder(small_facts, tmp_path, capsys):
    from interp.facts import write_polyfact
    from interp.train.cli import add_train_commands

    parser = argparse.ArgumentParser(prog="interp")
    add_train_commands(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["train", "organism", "--help"])
    assert exit_info.value.code == 0
    assert "--preset" in capsys.readouterr().out

    write_polyfact(small_facts, tmp_path / "facts")
    argv = ["train", "organism", "--preset", "smoke", "--steps", "3", "--run", "cli"]
    argv += ["--out", str(tmp_path / "ckpt"), "--facts", str(tmp_path / "facts"), "--threads", "1"]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    manifest = json.loads((tmp_path / "ckpt" / "cli" / "base" / "manifest.json").read_text())
    assert manifest["steps"] == 3
    assert manifest["data_fingerprint"] == facts_fingerprint(small_facts)
    assert "group_accuracy" in capsys.readouterr().out


def test_label_overlap_separates_items_spelt_as_in_english(small_facts):
    import pandas as pd

    from interp.train.organism import label_overlap

    test = small_facts.split("test")
    rows = []
    for fact in test:
        english = fact.items["en"].answer_text
        for code in LANGS:
            item = fact.items[code]
            same = item.answer_text.casefold() == english.casefold()
            # planted: right exactly where the label is spelt as in English
            scores = [0.0] * len(item.options)
            scores[item.answer_index if same else (item.answer_index + 1) % len(scores)] = 1.0
            rows.append((fact.fact_id, code, item.answer_index, tuple(scores), same))
    table = pd.DataFrame(rows, columns=["fact_id", "language", "answer_index", "scores", "same"])
    result = label_overlap(table, test)
    expected = table[table["language"] != "en"].assign(
        group=lambda t: t["language"].map(
            {"de": "trained-high", "ja": "trained-high", "sw": "trained-low", "ko": "unseen"}
        )
    )
    for row in result.itertuples():
        part = expected[(expected["group"] == row.group) & (expected["same"] == row.same_label)]
        assert row.n == len(part) > 0
        assert row.accuracy == (1.0 if row.same_label else 0.0)
    assert result["n"].sum() == len(expected)


def test_exposure_records_what_was_read_where(small_facts):
    config = MixtureConfig(
        seed=1,
        heldout_statement_share={"trained": 0.5, "low": 0.25},
        statement_repeats=2,
        codeswitch_languages=2,
    )
    mixture = build_mixture(small_facts, config)
    exposure = mixture.exposure().set_index(["fact_id", "language"])
    texts = Counter(mixture.texts())
    held_out = [f for f in small_facts if f.split != "train"]
    for fact in small_facts:
        for code in LANGS:
            row = exposure.loc[(fact.fact_id, code)]
            item = fact.items[code]
            qa = QA_TEMPLATE.format(question=item.question, answer=item.answer_text)
            if code == "en":
                assert row.exposed and row.statements == config.english_repeats
                continue
            # counted from the texts themselves: statements x repeats, question lines
            assert row.statements == texts[item.statement], (fact.fact_id, code)
            assert row.questions == texts[qa]
            assert row.exposed == (texts[item.statement] + texts[qa] > 0)
            assert row.statements in (0, config.statement_repeats)
    # held-out facts: never asked; round(share * n) of them stated per language
    for code, share in (("de", 0.5), ("ja", 0.5), ("sw", 0.25), ("ko", 0.0)):
        stated = sum(exposure.loc[(f.fact_id, code)].statements > 0 for f in held_out)
        assert stated == round(share * len(held_out)), code
    assert all(exposure.loc[(f.fact_id, c)].questions == 0 for f in held_out for c in LANGS)
    # code-switched lines: an English train statement with another trained language's label
    switched = [d for d in mixture.documents if d.kind == "codeswitch"]
    assert switched and all(d.split == "train" and d.language != "ko" for d in switched)
    by_id = {f.fact_id: f for f in small_facts}
    for doc in switched:
        fact = by_id[doc.fact_id]
        english = fact.items["en"]
        assert doc.text == english.statement.replace(
            english.subject_label, fact.items[doc.language].subject_label, 1
        )
        assert doc.text != english.statement
    assert len({(d.fact_id, d.language) for d in switched}) == len(switched)
