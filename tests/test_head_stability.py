"""Bootstrap stability of LAHIS top heads, checked against independent expectations.

- exact resampling probabilities: with two samples a resample is {1, 1}, {2, 2} or {1, 2}
  with probabilities 1/4, 1/4, 1/2, and the samples are built so that each outcome has its
  own top head;
- a planted head (a huge score and g m < 0 in every sample) is selected in every replicate;
  heads with i.i.d. equal distributions are selected k / heads of the time on average over
  independent data sets (within one data set the bootstrap is centred on that data set);
- identical samples: every replicate equals the data, so every interval has zero width;
- the observed sets and overlaps are `top_heads` of mean(score) * frequency(negative)
  computed here; a plain loop over replicates with `top_heads` agrees in distribution;
- the real `lahis` on a tiny model keeps per-sample values whose mean times frequency is its
  importance, and its importance is bit-for-bit that of the accumulation as it was written
  before the per-sample values were kept (re-implemented here).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.errors import ConfigError, DataError
from interp.models import adapters
from interp.models.tiny import tiny_config
from interp.specialization.head_stability import from_lahis, head_stability
from interp.specialization.heads import top_head_count, top_heads
from interp.specialization.lahis import frozen, lahis, mask_loss

LANGS = ("en", "de", "fr")
VOCAB = 40


def tiny_model():
    """A random 2-layer, 4-head qwen2 model (as tests/test_lahis.py builds them)."""
    from transformers import AutoModelForCausalLM

    config = tiny_config("qwen2", VOCAB, num_heads=4, num_kv_heads=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model.eval()


def random_ids(n: int, length: int, seed: int = 0) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (n, length), generator=generator).tolist()


def noise(rng, n=30, layers=2, heads=8, p=0.6):
    """i.i.d. exponential scores and Bernoulli(p) negatives, [n, layers, heads]."""
    return rng.exponential(1.0, size=(n, layers, heads)), rng.random((n, layers, heads)) < p


def full_importance(scores, negative, languages):
    return np.stack(
        [
            np.asarray(scores[lang], dtype=float).mean(0)
            * np.asarray(negative[lang], dtype=float).mean(0)
            for lang in languages
        ]
    )


def test_frequencies_follow_the_exact_resampling_probabilities():
    # one layer, four heads, k = 1: the top head is 0 for {1, 1}, 1 for {2, 2}, 2 for {1, 2}
    scores = {"en": np.array([[[10.0, 0, 6, 0]], [[0, 10, 6, 0]]]), "de": np.ones((1, 1, 4))}
    scores["de"][0, 0, 2] = 5
    negative = {lang: np.ones_like(value, dtype=bool) for lang, value in scores.items()}
    stab = head_stability(scores, negative, k=1, n_boot=4000, seed=3)  # several chunks
    assert stab.languages == ("en", "de") and stab.k == 1 and stab.samples == {"en": 2, "de": 1}
    np.testing.assert_allclose(stab.frequency[0, 0], [0.25, 0.25, 0.5, 0], atol=0.03)
    np.testing.assert_array_equal(stab.frequency[1, 0], [0, 0, 1, 0])  # one sample: fixed
    # overlap(en, de) = 1 exactly when en's top head is head 2 (probability 1/2)
    assert stab.overlap_matrix().loc["en", "de"] == 1  # the full sample: mean [5, 5, 6, 0]
    assert stab.overlap_samples[:, 0, 1].mean() == pytest.approx(0.5, abs=0.03)
    assert set(np.unique(stab.overlap_samples[:, 0, 1])) == {0.0, 1.0}
    assert stab.overlap_matrix("lo").loc["en", "de"] == 0
    assert stab.overlap_matrix("hi").loc["en", "de"] == 1
    assert stab.mean_overlap == 1 and (stab.mean_overlap_lo, stab.mean_overlap_hi) == (0, 1)
    # reproducible for a seed, and a language's replicates do not depend on the others
    again = head_stability(scores, negative, k=1, n_boot=4000, seed=3)
    np.testing.assert_array_equal(again.overlap_samples, stab.overlap_samples)
    alone = head_stability({"en": scores["en"]}, {"en": negative["en"]}, k=1, n_boot=4000, seed=3)
    np.testing.assert_array_equal(alone.frequency[0], stab.frequency[0])


def test_planted_head_always_selected_iid_heads_at_chance():
    n_sets, layers, heads, k = 100, 2, 8, 4
    freq = {"en": np.zeros((layers, heads)), "de": np.zeros((layers, heads))}
    for index in range(n_sets):
        rng = np.random.default_rng(index)
        scores, negative = {}, {}
        for lang in freq:
            scores[lang], negative[lang] = noise(rng, layers=layers, heads=heads)
        scores["en"][:, 1, 3] = 1e6  # planted: huge and negative in every sample
        negative["en"][:, 1, 3] = True
        stab = head_stability(scores, negative, k=k, n_boot=100, seed=index)
        assert stab.frequency[0, 1, 3] == 1
        np.testing.assert_allclose(stab.frequency.sum(axis=(1, 2)), k)  # k heads a replicate
        for i, lang in enumerate(stab.languages):
            freq[lang] += stab.frequency[i] / n_sets
    others = np.delete(freq["en"].ravel(), 1 * heads + 3)
    np.testing.assert_allclose(others, (k - 1) / (layers * heads - 1), atol=0.08)
    np.testing.assert_allclose(freq["de"], k / (layers * heads), atol=0.08)


def test_identical_samples_give_zero_width_intervals():
    rng = np.random.default_rng(0)
    scores, negative = {}, {}
    for lang in LANGS:
        one_score, one_negative = noise(rng, n=1, layers=4, heads=8, p=0.7)
        scores[lang] = np.repeat(one_score, 25, axis=0)
        negative[lang] = np.repeat(one_negative, 25, axis=0)
    # share some heads so that the overlaps are not all 0
    scores["de"][:, :2] = scores["en"][:, :2]
    negative["de"][:, :2] = negative["en"][:, :2]
    stab = head_stability(scores, negative, frac=0.2, n_boot=300, seed=1)
    selection = top_heads(full_importance(scores, negative, LANGS), LANGS, frac=0.2, min_heads=4)
    assert stab.k == selection.k == 6
    np.testing.assert_array_equal(stab.frequency, selection.mask().astype(float))
    table = stab.overlap
    np.testing.assert_array_equal(table["lo"], table["hi"])
    np.testing.assert_array_equal(table["lo"], table["overlap"])
    np.testing.assert_allclose(table["mean"], table["overlap"], rtol=1e-12)
    np.testing.assert_allclose(stab.overlap_matrix(), selection.overlap())
    assert stab.overlap_matrix().loc["en", "de"] > 0
    assert stab.mean_overlap_lo == stab.mean_overlap_hi == stab.mean_overlap
    assert stab.mean_overlap == pytest.approx(selection.mean_overlap())


def test_observed_sets_and_overlaps_are_top_heads_of_the_full_samples():
    rng = np.random.default_rng(7)
    scores, negative = {}, {}
    for lang in LANGS:
        scores[lang], negative[lang] = noise(rng, n=40, layers=4, heads=8)
        scores[lang][:, 0, :3] *= 3  # a shared core, so the overlaps are not at chance
    as_lists = ([scores[lang] for lang in LANGS], [negative[lang] for lang in LANGS])
    stab = head_stability(*as_lists, LANGS, frac=0.1, n_boot=200, seed=0)
    importance = full_importance(scores, negative, LANGS)
    selection = top_heads(importance, LANGS, frac=0.1, min_heads=4)
    assert stab.k == selection.k == top_head_count(4, 8, 0.1, 4) == 4
    np.testing.assert_allclose(stab.overlap_matrix(), selection.overlap())
    assert stab.mean_overlap == pytest.approx(selection.mean_overlap())
    heads = stab.heads
    assert len(heads) == 3 * 32
    np.testing.assert_array_equal(heads["selected"], selection.mask().ravel())
    np.testing.assert_allclose(heads["importance"], importance.ravel(), rtol=1e-6)
    np.testing.assert_allclose(heads["frequency"], stab.frequency.ravel())
    en = heads[heads["language"] == "en"].sort_values("rank")
    assert list(en["flat"][:4]) == list(selection.table["flat"][selection.table.language == "en"])

    # the interval covers the observed value (the replicates' mean need not: a skewed
    # distribution of a few overlap values can put it below the 2.5% point)
    table = stab.overlap
    assert (table["lo"] <= table["overlap"]).all() and (table["overlap"] <= table["hi"]).all()
    assert stab.mean_overlap_lo <= stab.mean_overlap <= stab.mean_overlap_hi
    assert stab.mean_overlap_lo < stab.mean_overlap_hi  # resampling does move the sets
    narrow = head_stability(*as_lists, LANGS, frac=0.1, n_boot=200, seed=0, ci=0.5)
    assert stab.mean_overlap_lo <= narrow.mean_overlap_lo <= narrow.mean_overlap_hi
    assert narrow.mean_overlap_hi <= stab.mean_overlap_hi

    # a plain loop over replicates: resample indices, then top_heads (another random stream)
    loop_rng = np.random.default_rng(123)
    n_boot, members, mean_overlaps = 400, np.zeros((3, 4, 8)), []
    for _ in range(n_boot):
        picks = {lang: loop_rng.integers(0, 40, 40) for lang in LANGS}
        replicate = top_heads(
            full_importance(
                {lang: scores[lang][picks[lang]] for lang in LANGS},
                {lang: negative[lang][picks[lang]] for lang in LANGS},
                LANGS,
            ),
            LANGS,
            k=4,
        )
        members += replicate.mask() / n_boot
        mean_overlaps.append(replicate.mean_overlap())
    np.testing.assert_allclose(stab.frequency, members, atol=0.12)
    assert stab.mean_overlap_samples.mean() == pytest.approx(np.mean(mean_overlaps), abs=0.03)


def test_bad_input_is_refused():
    rng = np.random.default_rng(0)
    score, neg = noise(rng, n=5)
    with pytest.raises(ConfigError, match="languages"):
        head_stability([score], [neg])
    with pytest.raises(DataError, match="no sample negative"):
        head_stability({"en": score}, {"de": neg})
    with pytest.raises(DataError, match="shape"):
        head_stability({"en": score}, {"en": neg[:, :1]})
    with pytest.raises(DataError, match="booleans"):
        head_stability({"en": score}, {"en": neg * 2})
    with pytest.raises(DataError, match="layers, heads"):
        head_stability({"en": score, "de": score[:, :1]}, {"en": neg, "de": neg[:, :1]})
    bad = score.copy()
    bad[2, 1, 4] = np.nan
    with pytest.raises(DataError, match="sample 2, layer 1, head 4"):
        head_stability({"en": bad}, {"en": neg})
    with pytest.raises(DataError, match="not mean"):
        head_stability({"en": score}, {"en": neg}, importance=np.ones((1, 2, 8)))
    with pytest.raises(ConfigError, match="n_boot"):
        head_stability({"en": score}, {"en": neg}, n_boot=0)
    with pytest.raises(ConfigError, match="k must be"):
        head_stability({"en": score}, {"en": neg}, k=17)
    one = head_stability({"en": score}, {"en": neg}, n_boot=5)
    assert np.isnan(one.mean_overlap) and np.isnan(one.mean_overlap_lo)


def reference_importance(model, sequences):
    """The LAHIS accumulation as written before per-sample values were kept (defaults)."""
    size = adapters.shape(model)
    mask = torch.nn.Parameter(torch.ones(size.num_layers, size.num_heads))
    optimizer = torch.optim.AdamW([mask], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    score_sum = torch.zeros_like(mask, dtype=torch.float64)
    negative = torch.zeros_like(mask, dtype=torch.int64)
    used = 0
    with frozen(model), torch.enable_grad():
        for seq in sequences:
            if len(seq) < 2:
                continue
            loss = mask_loss(model, torch.as_tensor(seq)[None], mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                score_sum += (mask.grad.abs() * mask * 1000.0).double()
                negative += (mask.grad * mask < 0).long()
            optimizer.step()
            used += 1
    return ((score_sum / used) * (negative.double() / used)).float()


def test_real_lahis_keeps_per_sample_values():
    model = tiny_model()
    data = {
        "en": random_ids(6, 10, seed=1) + [[3]],  # the 1-token sample is skipped
        "de": random_ids(5, 9, seed=2),
    }
    result = lahis(model, None, data, progress=False)
    assert result.samples == {"en": 6, "de": 5}
    for i, lang in enumerate(result.languages):
        scores, negative = result.sample_scores[lang], result.sample_negative[lang]
        assert scores.shape == (result.samples[lang], 2, 4) and scores.dtype == torch.float32
        assert negative.shape == scores.shape and negative.dtype == torch.bool
        mean, freq = scores.double().mean(0), negative.double().mean(0)
        torch.testing.assert_close(result.mean_score[i].double(), mean)
        torch.testing.assert_close(result.neg_freq[i].double(), freq)
        torch.testing.assert_close(result.importance[i].double(), mean * freq)
        # unchanged: bit for bit the accumulation as it was
        assert torch.equal(result.importance[i], reference_importance(model, data[lang]))

    stab = from_lahis(result, k=3, n_boot=50)
    assert stab.observed.sets() == result.top_heads(k=3).sets()
    assert stab.k == 3 and ((stab.frequency >= 0) & (stab.frequency <= 1)).all()
    np.testing.assert_allclose(stab.frequency.sum(axis=(1, 2)), 3)
    assert stab.overlap_matrix().loc["en", "de"] == pytest.approx(
        result.top_heads(k=3).overlap().loc["en", "de"]
    )
    result.sample_scores.clear()
    with pytest.raises(DataError, match="rerun `lahis`"):
        from_lahis(result)
