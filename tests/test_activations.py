"""Activation statistics: accumulators, the collector and its three backends."""

from __future__ import annotations

import math
import os
import socket

import pytest
import torch

from interp.activations import (
    BatchInfo,
    FiringCounts,
    HeadNorms,
    MeanActivation,
    SequenceFiringCounts,
    as_language_data,
    collect,
    collect_statistics,
    load_accumulator,
)
from interp.errors import ConfigError, DataError
from interp.models import adapters, loading, tiny

LANGUAGES = ["en", "de", "zh", "ar"]
BACKENDS = ["torch", "transformer_lens", "nnsight"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("activation_models")
    tokenizer_dir = root / "tokenizer"
    tiny.train_tokenizer(tiny.sample_texts(), 400, tokenizer_dir)
    for family in ("qwen2", "olmo2"):
        tiny.build_tiny_model(family, tokenizer_dir, root / family, seed=3, num_layers=3)
    return root


@pytest.fixture(scope="module")
def data(model_dir):
    """Per language: the sample sentences plus random sequences; lengths vary."""
    tokenizer = loading.load_tokenizer(model_dir / "tokenizer")
    generator = torch.Generator().manual_seed(0)
    out = {}
    encoded = tiny.encode_by_language(
        tokenizer, {lang: tiny.SAMPLE_TEXTS[lang] for lang in LANGUAGES}
    )
    for i, lang in enumerate(LANGUAGES):
        seqs = encoded[lang]
        for _ in range(3 + i):
            length = int(torch.randint(1, 24, (1,), generator=generator))
            seqs.append(torch.randint(1, 400, (length,), generator=generator).tolist())
        out[lang] = seqs
    return out


def _load(model_dir, family, **kwargs):
    return loading.load_model(model_dir / family, attn_implementation="eager", **kwargs)


def _accumulators(model, data):
    s = adapters.shape(model)
    return {
        "fires": FiringCounts(LANGUAGES, s.num_layers, s.intermediate_size),
        "chunks": SequenceFiringCounts(
            LANGUAGES,
            s.num_layers,
            s.intermediate_size,
            {lang: len(as_language_data(lang, seqs)) for lang, seqs in data.items()},
            chunk_size=2,
        ),
        "post": MeanActivation(LANGUAGES, s.num_layers, s.intermediate_size, site="post"),
        "gate": MeanActivation(LANGUAGES, s.num_layers, s.intermediate_size, site="gate"),
        "heads": HeadNorms(LANGUAGES, s.num_layers, s.num_heads, s.head_dim),
    }


def _collect(model, tokenizer, data, backend="torch", batch_size=4, **kwargs):
    accs = _accumulators(model, data)
    collect(
        model,
        tokenizer,
        data,
        list(accs.values()),
        backend=backend,
        batch_size=batch_size,
        progress=False,
        **kwargs,
    )
    return accs


def _assert_same(a, b, exact_means=False):
    assert torch.equal(a["fires"].fires, b["fires"].fires)
    assert torch.equal(a["fires"].tokens, b["fires"].tokens)
    assert torch.equal(a["chunks"].fires, b["chunks"].fires)
    assert torch.equal(a["chunks"].tokens, b["chunks"].tokens)
    for name in ("post", "gate", "heads"):
        if exact_means:
            assert torch.equal(a[name].sums, b[name].sums), name
        else:
            torch.testing.assert_close(a[name].sums, b[name].sums, rtol=1e-5, atol=1e-5)


# -- an independent forward ------------------------------------------------------------------


def _rms(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _rope(x, theta):
    """Rotary embedding of x [T, heads, d] at positions 0..T-1 (rotate-half convention)."""
    t, _, d = x.shape
    inv_freq = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = torch.outer(torch.arange(t, dtype=torch.float64), inv_freq)
    cos = torch.cat([angles, angles], -1).cos()[:, None]
    sin = torch.cat([angles, angles], -1).sin()[:, None]
    rotated = torch.cat([-x[..., d // 2 :], x[..., : d // 2]], -1)
    return x * cos + rotated * sin


def manual_gate_counts(model, sequences):
    """Per layer, how often gate_proj(x) > 0 over all tokens, from a float64 forward written
    out here (embedding, attention with RoPE and GQA, norms, MLP), one sequence at a time.
    Also counts gate values within 1e-4 of zero, where float32 rounding may flip the sign."""
    cfg = model.config
    post_norm = cfg.model_type == "olmo2"
    p = {k: v.double() for k, v in model.state_dict().items()}
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    d = cfg.hidden_size // heads
    eps, theta = cfg.rms_norm_eps, cfg.rope_parameters["rope_theta"]
    counts = torch.zeros(cfg.num_hidden_layers, cfg.intermediate_size, dtype=torch.long)
    near_zero = torch.zeros_like(counts)

    def linear(x, name):
        out = x @ p[name + ".weight"].T
        return out + p[name + ".bias"] if name + ".bias" in p else out

    for seq in sequences:
        h = p["model.embed_tokens.weight"][torch.tensor(seq)]
        t = h.shape[0]
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        for i in range(cfg.num_hidden_layers):
            pre = f"model.layers.{i}."
            x = h if post_norm else _rms(h, p[pre + "input_layernorm.weight"], eps)
            q, k, v = (linear(x, pre + f"self_attn.{n}_proj") for n in "qkv")
            if post_norm:
                q = _rms(q, p[pre + "self_attn.q_norm.weight"], eps)
                k = _rms(k, p[pre + "self_attn.k_norm.weight"], eps)
            q = _rope(q.view(t, heads, d), theta)
            k = _rope(k.view(t, kv, d), theta).repeat_interleave(heads // kv, dim=1)
            v = v.view(t, kv, d).repeat_interleave(heads // kv, dim=1)
            scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(d)
            weights = scores.masked_fill(~causal, float("-inf")).softmax(-1)
            z = torch.einsum("hqk,khd->qhd", weights, v).reshape(t, heads * d)
            attn = linear(z, pre + "self_attn.o_proj")
            if post_norm:
                h = h + _rms(attn, p[pre + "post_attention_layernorm.weight"], eps)
                x = h
            else:
                h = h + attn
                x = _rms(h, p[pre + "post_attention_layernorm.weight"], eps)
            gate = linear(x, pre + "mlp.gate_proj")
            counts[i] += (gate > 0).sum(0)
            near_zero[i] += (gate.abs() < 1e-4).sum(0)
            mlp = linear(
                torch.nn.functional.silu(gate) * linear(x, pre + "mlp.up_proj"),
                pre + "mlp.down_proj",
            )
            h = h + (
                _rms(mlp, p[pre + "post_feedforward_layernorm.weight"], eps) if post_norm else mlp
            )
    return counts, near_zero


@pytest.mark.parametrize("family", ["qwen2", "olmo2"])
def test_counts_match_a_forward_written_by_hand(model_dir, data, family):
    model, tokenizer = _load(model_dir, family)
    got = _collect(model, tokenizer, data)["fires"]
    for index, lang in enumerate(LANGUAGES):
        expected, near_zero = manual_gate_counts(model, data[lang])
        assert int(got.tokens[index]) == sum(len(s) for s in data[lang])
        difference = (got.fires[index] - expected).abs()
        assert bool((difference <= near_zero).all()), lang
        # the slack is for a handful of borderline values, not a loophole
        values = int(got.tokens[index]) * expected.numel()
        assert int(near_zero.sum()) < 0.005 * values
        assert 0.2 * values < int(expected.sum()) < 0.8 * values
    # rates are counts over tokens
    torch.testing.assert_close(
        got.rates()[1], got.fires[1].double() / int(got.tokens[1]), rtol=0, atol=0
    )


# -- backends ---------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["qwen2", "olmo2"])
def test_three_backends_give_the_same_statistics(model_dir, data, family):
    model, tokenizer = _load(model_dir, family)
    modules_before = [type(m) for m in model.modules()]
    reference = _collect(model, tokenizer, data, backend="torch")
    for backend in ("transformer_lens", "nnsight"):
        got = _collect(model, tokenizer, data, backend=backend)
        _assert_same(got, reference)
        # the backend handed the model back unpatched
        assert [type(m) for m in model.modules()] == modules_before
        assert all("forward" not in m.__dict__ for m in model.modules())
        assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
        assert tokenizer.padding_side == "right"
    _assert_same(_collect(model, tokenizer, data, backend="torch"), reference, exact_means=True)


def test_transformer_lens_restores_sdpa(model_dir, data):
    model, tokenizer = loading.load_model(model_dir / "qwen2", attn_implementation="sdpa")
    _collect(model, tokenizer, {"en": data["en"]}, backend="transformer_lens")
    assert model.config._attn_implementation == "sdpa"


def test_padding_never_counts(model_dir, data):
    model, tokenizer = _load(model_dir, "qwen2")
    seqs = data["de"]
    alone = _collect(model, tokenizer, {"de": seqs}, batch_size=1)  # no padding at all
    right = _collect(model, tokenizer, {"de": seqs}, batch_size=len(seqs))  # lists: right pads
    width = max(map(len, seqs)) + 3
    ids = torch.full((len(seqs), width), tokenizer.pad_token_id)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, seq in enumerate(seqs):
        ids[i, width - len(seq) :] = torch.tensor(seq)
        mask[i, width - len(seq) :] = 1
    left = _collect(
        model, tokenizer, {"de": {"input_ids": ids, "attention_mask": mask}}, batch_size=8
    )
    assert int(alone["fires"].tokens[1]) == sum(map(len, seqs))
    _assert_same(right, alone)
    _assert_same(left, alone)


def test_bfloat16_model(model_dir, data):
    model32, tokenizer = _load(model_dir, "qwen2")
    model16, _ = _load(model_dir, "qwen2", dtype=torch.bfloat16)
    full = _collect(model32, tokenizer, data)
    half = _collect(model16, tokenizer, data)
    assert half["fires"].fires.dtype == torch.long
    assert half["post"].sums.dtype == torch.float64
    assert torch.equal(half["fires"].tokens, full["fires"].tokens)
    # bf16 moves gate values near zero across the sign: rates agree closely, not exactly
    assert (half["fires"].rates() - full["fires"].rates()).abs().mean() < 0.02
    torch.testing.assert_close(half["heads"].means(), full["heads"].means(), rtol=0.05, atol=0.01)
    nn = _collect(model16, tokenizer, data, backend="nnsight")
    _assert_same(nn, half)


# -- errors -----------------------------------------------------------------------------------


def test_nan_activations_name_layer_and_language(model_dir, data):
    model, tokenizer = _load(model_dir, "qwen2")
    token = data["zh"][0][2]
    assert all(token not in seq for lang in ("en", "de") for seq in data[lang])
    with torch.no_grad():
        model.model.embed_tokens.weight[token] = float("nan")
    subset = {lang: data[lang] for lang in ("en", "de", "zh")}
    with pytest.raises(DataError, match=r"layer 0, site 'z', language 'zh', sequences \[0"):
        _collect(model, tokenizer, subset)

    model, tokenizer = _load(model_dir, "olmo2")
    with torch.no_grad():
        model.model.layers[2].mlp.gate_proj.weight[5] = float("inf")
    with pytest.raises(DataError, match="layer 2, site 'gate', language 'en'"):
        _collect(model, tokenizer, data)


def test_input_errors(model_dir, data):
    model, tokenizer = _load(model_dir, "qwen2")
    s = adapters.shape(model)
    counts = FiringCounts(["en"], s.num_layers, s.intermediate_size)
    with pytest.raises(DataError, match="'fr'"):
        collect(model, tokenizer, {"fr": data["en"]}, counts, progress=False)
    with pytest.raises(DataError, match="beyond the model's 400 embeddings"):
        collect(model, tokenizer, {"en": [[1, 2, 400]]}, counts, progress=False)
    with pytest.raises(DataError, match="all padding"):
        padded = {
            "input_ids": torch.ones(2, 3, dtype=torch.long),
            "attention_mask": torch.tensor([[1, 1, 0], [0, 0, 0]]),
        }
        collect(model, tokenizer, {"en": padded}, counts, progress=False)
    with pytest.raises(ConfigError, match="layers"):
        collect(model, tokenizer, {"en": data["en"]}, FiringCounts(["en"], 5, s.intermediate_size))
    with pytest.raises(ConfigError, match="unknown backend"):
        collect(model, tokenizer, {"en": data["en"]}, counts, backend="jax", progress=False)


# -- accumulators alone -----------------------------------------------------------------------


def test_accumulators_on_planted_tensors():
    # Two layers, three units, a batch of 3 sequences in 2 languages with padding; every
    # expected number is written out by hand below.
    x = torch.tensor(
        [
            [[1.0, -1.0, 0.0], [2.0, 3.0, -4.0], [9.0, 9.0, 9.0]],  # en, last token padding
            [[-1.0, 5.0, 1.0], [0.5, 0.5, 0.5], [-2.0, -2.0, 2.0]],  # de, all real
            [[7.0, 7.0, 7.0], [-3.0, 4.0, 0.0], [1.0, -1.0, 1.0]],  # en, first token padding
        ]
    )
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [0, 1, 1]])
    batch = BatchInfo.build(mask, torch.tensor([0, 1, 0]), torch.tensor([0, 0, 1]))
    assert batch.single_language is None and batch.padded
    fires = FiringCounts(["en", "de"], 2, 3)
    chunks = SequenceFiringCounts(["en", "de"], 2, 3, {"en": 2, "de": 1}, chunk_size=1)
    means = MeanActivation(["en", "de"], 2, 3, site="gate")
    for acc in (fires, chunks, means):
        acc.start_batch(batch)
        acc.update("gate", 1, x, batch)
    # en: rows 0 (tokens 0,1) and 2 (tokens 1,2); de: row 1 (tokens 0,1,2)
    assert fires.fires[0, 1].tolist() == [1 + 1 + 1, 1 + 1 + 0, 0 + 0 + 1]
    assert fires.fires[1, 1].tolist() == [1, 2, 3]
    assert fires.fires[:, 0].sum() == 0
    assert fires.tokens.tolist() == [4, 3]
    assert chunks.fires[:, 1].tolist() == [[2, 1, 0], [1, 1, 1], [1, 2, 3]]  # en0, en1, de0
    assert chunks.tokens.tolist() == [2, 2, 3]
    assert means.sums[0, 1].tolist() == [1 + 2 - 3 + 1, -1 + 3 + 4 - 1, 0 - 4 + 0 + 1]
    assert means.means()[1, 1].tolist() == pytest.approx([-2.5 / 3, 3.5 / 3, 3.5 / 3])

    heads = HeadNorms(["en", "de"], 1, 2, 2)
    z = torch.tensor([[[3.0, 4.0, 0.0, 1.0], [6.0, 8.0, 1.0, 0.0]]])  # one en row, 2 tokens
    one = BatchInfo.build(torch.ones(1, 2), torch.tensor([0]))
    heads.start_batch(one)
    heads.update("z", 0, z, one)
    assert heads.means()[0, 0].tolist() == pytest.approx([(5 + 10) / 2, (1 + 1) / 2])


def test_merge_save_load_and_chunks(model_dir, data, tmp_path):
    model, tokenizer = _load(model_dir, "qwen2")
    whole = _collect(model, tokenizer, data)
    first = _collect(model, tokenizer, {lang: data[lang] for lang in ("en", "de")})
    second = _collect(model, tokenizer, {lang: data[lang] for lang in ("zh", "ar")})
    # the one-call form gives the same statistics
    stats = collect_statistics(model, tokenizer, data, batch_size=4, progress=False)
    assert [type(a).__name__ for a in stats] == ["FiringCounts", "MeanActivation", "HeadNorms"]
    assert torch.equal(stats[0].fires, whole["fires"].fires)
    assert torch.equal(stats[2].sums, whole["heads"].sums)
    for name in ("fires", "post", "heads"):
        first[name].merge(second[name])
    assert torch.equal(first["fires"].fires, whole["fires"].fires)
    torch.testing.assert_close(first["post"].sums, whole["post"].sums)
    # chunks of 2 sequences add up to the language totals
    chunks = whole["chunks"]
    by_language = torch.zeros_like(whole["fires"].fires).index_add_(
        0, chunks.chunk_language, chunks.fires.long()
    )
    assert torch.equal(by_language, whole["fires"].fires)
    assert chunks.fires.shape[0] == sum(-(-len(s) // 2) for s in data.values())
    # max_chunks keeps the first chunks only
    s = adapters.shape(model)
    few = SequenceFiringCounts(
        LANGUAGES, s.num_layers, s.intermediate_size, {"en": len(data["en"])}, 2, max_chunks=1
    )
    collect(model, tokenizer, {"en": data["en"]}, few, progress=False)
    assert torch.equal(few.fires[0], chunks.fires[0])
    # save and load
    for name in ("fires", "chunks", "heads"):
        path = whole[name].save(tmp_path / f"{name}.safetensors", metadata={"model": "tiny"})
        loaded = load_accumulator(path)
        assert type(loaded) is type(whole[name])
        assert loaded.metadata == {"model": "tiny"}
        for key, tensor in whole[name].state().items():
            assert torch.equal(loaded.state()[key], tensor)
    with pytest.raises(ConfigError, match="cannot merge"):
        whole["fires"].merge(FiringCounts(["en"], s.num_layers, s.intermediate_size))
    frame = whole["fires"].to_frame()
    assert len(frame) == len(LANGUAGES) * s.num_layers * s.intermediate_size
    row = frame[(frame.language == "zh") & (frame.layer == 2) & (frame.neuron == 7)].iloc[0]
    assert row.fires == int(whole["fires"].fires[2, 2, 7])


# -- several processes ------------------------------------------------------------------------


def _distributed_worker(rank, world, port, model_path, data, out_dir):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        model, tokenizer = loading.load_model(model_path, attn_implementation="eager")
        accs = _accumulators(model, data)
        collect(
            model, tokenizer, data, list(accs.values()), batch_size=3, shard="auto", progress=False
        )
        for acc in accs.values():
            acc.all_reduce()
        if rank == 0:
            for name, acc in accs.items():
                acc.save(os.path.join(out_dir, f"{name}.safetensors"))
    finally:
        dist.destroy_process_group()


def test_two_processes_all_reduce_to_the_single_process_result(model_dir, data, tmp_path):
    import time

    import torch.multiprocessing as mp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # fork: the workers inherit the loaded libraries instead of importing them again; they run
    # torch on one thread, which is what makes forking after torch has run safe. The deadline
    # turns a stuck worker into a failure instead of a hang.
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    context = mp.start_processes(
        _distributed_worker,
        args=(2, port, str(model_dir / "qwen2"), data, str(tmp_path)),
        nprocs=2,
        join=False,
        start_method=method,
    )
    deadline = time.monotonic() + 120
    try:
        while not context.join(timeout=1):
            assert time.monotonic() < deadline, "distributed workers did not finish in 120 s"
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    model, tokenizer = _load(model_dir, "qwen2")
    single = _collect(model, tokenizer, data, batch_size=3)
    merged = {name: load_accumulator(tmp_path / f"{name}.safetensors") for name in single}
    _assert_same(merged, single)
