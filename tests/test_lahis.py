"""LAHIS head importance, checked against independent computations.

- the mask gradient against central finite differences of the loss, where the mask is applied
  through another path (scaling the o_proj weight columns of each head; o_proj is linear, so
  W (m * z) = (W diag(m)) z) and the loss is transformers' own `labels=` loss;
- two samples: the second sample's gradient is taken at the mask after one AdamW step
  computed by hand;
- masking a head with m = 0 equals zeroing its slice of the o_proj input in a hook written
  here; m = 1 leaves the logits bit-for-bit unchanged;
- a planted head: it reads only one language's embedding subspace and pushes that language's
  logits up, so it must rank first for that language and score exactly 0 for the other.
"""

from __future__ import annotations

import copy

import pytest
import torch

from interp.models import adapters
from interp.models.tiny import tiny_config
from interp.specialization.ablation import scale_heads
from interp.specialization.lahis import lahis, mask_loss
from interp.specialization.reference import load_lahis

FAMILIES = ["qwen2", "olmo2"]
VOCAB = 40


def random_model(family: str, *, dtype=torch.float32, seed: int = 0, **sizes):
    from transformers import AutoModelForCausalLM

    sizes = {"num_heads": 4, "num_kv_heads": 2, **sizes}
    config = tiny_config(family, VOCAB, **sizes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def random_ids(n: int, length: int, low: int = 1, high: int = VOCAB, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, (n, length), generator=generator)


def weight_scaled_loss(model):
    """loss(ids, mask): mean next-token cross-entropy with head h of layer l scaled by
    mask[l, h] through the o_proj weight columns of a copy of `model` (computed here, not with
    transformers' labels= loss, which casts logits to float32)."""
    size = adapters.shape(model)
    scaled = copy.deepcopy(model)
    weights = [adapters.o_proj(scaled, layer).weight for layer in range(size.num_layers)]
    originals = [w.detach().clone() for w in weights]

    def loss(ids: torch.Tensor, mask: torch.Tensor) -> float:
        with torch.no_grad():
            for layer, (weight, original) in enumerate(zip(weights, originals, strict=True)):
                columns = mask[layer].repeat_interleave(size.head_dim).to(original.dtype)
                weight.copy_(original * columns[None, :])
            logits = scaled(input_ids=ids).logits[0, :-1]
            return float(torch.nn.functional.cross_entropy(logits, ids[0, 1:]))

    return loss


def finite_difference(loss, ids: torch.Tensor, mask: torch.Tensor, eps: float = 5e-3):
    """Five-point central differences. eps is not tiny because RMSNorm runs in float32 even in
    a float64 model, so the loss carries about 1e-9 of rounding noise."""
    grad = torch.zeros_like(mask, dtype=torch.float64)
    for index in range(mask.numel()):
        step = torch.zeros(mask.numel(), dtype=mask.dtype)
        step[index] = eps
        step = step.view_as(mask)
        near = loss(ids, mask + step) - loss(ids, mask - step)
        far = loss(ids, mask + 2 * step) - loss(ids, mask - 2 * step)
        grad.view(-1)[index] = (8 * near - far) / (12 * eps)
    return grad


@pytest.mark.parametrize("family", FAMILIES)
def test_mask_gradient_matches_finite_differences(family):
    model = random_model(family, dtype=torch.float64)
    ids = random_ids(1, 10)
    generator = torch.Generator().manual_seed(1)
    mask = (0.5 + torch.rand(2, 4, generator=generator, dtype=torch.float64)).requires_grad_()
    mask_loss(model, ids, mask).backward()
    expected = finite_difference(weight_scaled_loss(model), ids, mask.detach())
    assert expected.abs().max() > 1e-4  # a gradient worth comparing
    torch.testing.assert_close(mask.grad, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_lahis_accumulates_gradients_and_takes_adamw_steps(family):
    model = random_model(family, dtype=torch.float64)
    ids = random_ids(2, 9, seed=3)
    lr, beta1, beta2, adam_eps, decay = 1e-2, 0.9, 0.999, 1e-8, 0.01
    result = lahis(model, None, {"en": ids.tolist()}, lr=lr, progress=False)

    m0 = torch.ones(2, 4, dtype=torch.float64)
    loss = weight_scaled_loss(model)
    g0 = finite_difference(loss, ids[:1], m0)
    # AdamW's first step by hand: decoupled decay, then m_hat / (sqrt(v_hat) + eps)
    m_hat, v_hat = (1 - beta1) * g0 / (1 - beta1), (1 - beta2) * g0**2 / (1 - beta2)
    m1 = m0 * (1 - lr * decay) - lr * m_hat / (v_hat.sqrt() + adam_eps)
    g1 = finite_difference(loss, ids[1:], m1)

    mean = (g0.abs() * m0 + g1.abs() * m1) * 1000 / 2
    freq = ((g0 * m0 < 0).double() + (g1 * m1 < 0).double()) / 2
    assert result.samples == {"en": 2}
    torch.testing.assert_close(result.mean_score[0].double(), mean, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(result.neg_freq[0].double(), freq)
    torch.testing.assert_close(result.importance[0].double(), mean * freq, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("family", FAMILIES)
def test_zero_mask_equals_zeroing_the_head_slice(family):
    model = random_model(family)
    ids = random_ids(2, 12)
    size = adapters.shape(model)
    layer, head = 1, 2
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        ones = torch.ones(size.num_layers, size.num_heads)
        with scale_heads(model, ones):
            unchanged = model(input_ids=ids).logits
        mask = ones.clone()
        mask[layer, head] = 0
        with scale_heads(model, mask):
            masked = model(input_ids=ids).logits

        def zero_slice(module, args):
            x = args[0].clone()
            x[..., head * size.head_dim : (head + 1) * size.head_dim] = 0
            return (x,)

        handle = adapters.o_proj(model, layer).register_forward_pre_hook(zero_slice)
        try:
            manual = model(input_ids=ids).logits
        finally:
            handle.remove()
        after = model(input_ids=ids).logits
    assert torch.equal(unchanged, plain)
    assert not torch.allclose(masked, plain)
    torch.testing.assert_close(masked, manual, rtol=0, atol=1e-6)
    assert torch.equal(after, plain)  # hooks gone


def planted_model(family: str, head: int = 2):
    """Layer 0, `head`: reads only the embedding subspace of tokens 1..19 ("en") and, through
    o_proj, writes a direction that the LM head turns into higher logits for those tokens.
    Tokens 20..39 ("de") live in the other half of the embedding, where that head reads 0."""
    model = random_model(family, num_heads=4, num_kv_heads=4, hidden_size=64)
    generator = torch.Generator().manual_seed(1)
    head_dim, half = 16, 32
    rows = slice(head * head_dim, (head + 1) * head_dim)
    with torch.no_grad():
        embed = model.get_input_embeddings().weight
        embed.zero_()
        common = torch.randn(half, generator=generator)
        embed[1:20, :half] = common + 0.3 * torch.randn(19, half, generator=generator)
        embed[20:40, half:] = torch.randn(20, half, generator=generator)
        attn = adapters.attention(model, 0)
        attn.v_proj.weight[rows, half:] = 0
        if attn.v_proj.bias is not None:
            attn.v_proj.bias[rows] = 0
        value = attn.v_proj.weight[rows, :half] @ common
        direction = torch.zeros(64)
        direction[half:] = torch.randn(half, generator=generator)
        direction /= direction.norm()
        adapters.o_proj(model, 0).weight[:, rows] = (
            torch.outer(direction, value) / value.norm() ** 2
        )
        model.get_output_embeddings().weight[1:20] += direction
    return model


def test_planted_head_ranks_first_for_its_language():
    model = planted_model("qwen2", head=2)
    data = {"en": random_ids(8, 16, 1, 20, seed=2), "de": random_ids(8, 16, 20, 40, seed=2)}
    result = lahis(model, None, data, progress=False)
    selection = result.top_heads(k=1)
    assert selection.sets()["en"] == {(0, 2)}
    en = result.importance[0].flatten().sort(descending=True).values
    assert en[0] > 10 * en[1]
    assert result.neg_freq[0, 0, 2] == 1  # raising its mask lowered the loss every time
    # the head outputs exactly 0 on "de": no gradient, no importance
    assert result.mean_score[1, 0, 2] == 0
    assert result.importance[1, 0, 2] == 0


def test_silent_head_scores_zero_on_olmo2():
    model = planted_model("olmo2", head=1)
    data = {"de": random_ids(4, 12, 20, 40, seed=5)}
    result = lahis(model, None, data, progress=False)
    assert result.mean_score[0, 0, 1] == 0
    assert result.neg_freq[0, 0, 1] == 0
    assert (result.mean_score[0].flatten() > 0).sum() >= 6  # the other heads do score


def test_model_left_as_it_was_and_results_saved_in_release_layout(tmp_path):
    model = random_model("qwen2")
    model.train()
    model.lm_head.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {k: p.requires_grad for k, p in model.named_parameters()}
    data = {"en": random_ids(3, 8).tolist(), "de": random_ids(3, 8, seed=1).tolist()}
    result = lahis(model, None, data, progress=False, samples_per_language=2, max_length=6)
    assert model.training
    assert {k: p.requires_grad for k, p in model.named_parameters()} == flags
    assert all(p.grad is None for p in model.parameters())  # no weight gradient computed
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert result.samples == {"en": 2, "de": 2}

    table = result.table()
    assert len(table) == 2 * 2 * 4
    assert list(table.columns[:4]) == ["language", "layer", "head", "importance"]
    row = table[(table["language"] == "de") & (table["layer"] == 1) & (table["head"] == 3)].iloc[0]
    assert row.importance == pytest.approx(float(result.importance[1, 1, 3]))

    result.save(tmp_path / "lahis" / "tiny")
    loaded = load_lahis("tiny", tmp_path, languages=["en", "de"])
    assert torch.equal(loaded, result.importance)


def test_text_input_needs_a_tokenizer():
    from interp.errors import ConfigError

    with pytest.raises(ConfigError, match="tokenizer"):
        lahis(random_model("qwen2"), None, {"en": ["some text"]}, progress=False)
