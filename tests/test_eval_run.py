"""`interp eval`: checkpoints scored on a fact set, cached, summarised side by side."""

from __future__ import annotations

import numpy as np
import pytest

from interp.cli import main
from interp.errors import DataError
from interp.facts import WorldConfig, build_world, write_polyfact


@pytest.fixture(scope="module")
def small_setup(tmp_path_factory):
    from interp.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("eval")
    facts, _ = build_world(WorldConfig(languages=("en", "de", "ja"), relations=("continent",)))
    write_polyfact(facts, root / "facts")
    texts = [i.statement for i in facts.items()] + [i.question for i in facts.items()]
    model_dir = build_tiny(root / "model", "qwen2", texts=texts, vocab_size=400)
    return facts, root / "facts", model_dir


def test_eval_scores_caches_and_matches_hand_accuracy(small_setup, tmp_path, capsys):
    from interp.evaluate.run import evaluate_checkpoint

    facts, facts_dir, model_dir = small_setup
    first = evaluate_checkpoint(model_dir, facts, split="test", n_boot=20, progress=False)
    assert not first.from_cache
    n_test = len(facts.split("test"))
    assert len(first.scores) == 3 * n_test
    # accuracy by hand from the raw scores
    for code in ("en", "de", "ja"):
        rows = first.scores[first.scores.language == code]
        hand = np.mean(
            [int(np.argmax(s)) == a for s, a in zip(rows.scores, rows.answer_index, strict=True)]
        )
        got = first.metrics.query("metric == 'accuracy' and language == @code").value.item()
        assert got == pytest.approx(hand)
    again = evaluate_checkpoint(model_dir, facts, split="test", n_boot=20, progress=False)
    assert again.from_cache
    assert again.metrics.equals(first.metrics)

    out = tmp_path / "results"
    code = main(
        ["eval", str(model_dir), "--facts", str(facts_dir), "--n-boot", "20", "--out", str(out)]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "total_consistency" in text and "(cached)" in text
    assert (out / "metrics.parquet").is_file() and (out / "metrics.csv").is_file()


def test_eval_bad_inputs(small_setup, capsys):
    from interp.evaluate.run import evaluate_checkpoint

    facts, facts_dir, model_dir = small_setup
    with pytest.raises(DataError, match="no items in sw"):
        evaluate_checkpoint(model_dir, facts, languages=["en", "sw"], n_boot=0, progress=False)
    assert main(["eval", str(model_dir), "--facts", str(facts_dir), "--languages", "xx"]) == 1
    assert "unknown language code" in capsys.readouterr().err
