"""Model layer: family adapters, loading, and the offline tiny tokenizer and models."""

from __future__ import annotations

import json
import unicodedata

import pytest
import torch

from interp.errors import ConfigError, ModelError
from interp.models import adapters, loading, tiny

# Multilingual text with digits, CJK, Arabic, Bengali, Cyrillic, accents and a decomposed "é"
# (e + combining accent, which NFC composes).
MULTILINGUAL = [
    "Paris had 2,102,650 people in 2023; Berlin 3.878.100.",
    "日本の首都は東京です。富士山は3776メートル。",
    "中国的首都是北京，长江全长6300公里。",
    "عاصمة مصر هي القاهرة، ويبلغ عدد سكانها 22 مليون.",
    "বাংলাদেশের রাজধানী ঢাকা ১৯৭১",
    "Столица России — Москва, 1147 год.",
    "Caf\u0065\u0301 in São Paulo: 12 milhões, Köln 1.232 km!",
    "  spaces\tand\nnew lines\r\n  ",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_models")
    tokenizer_dir = root / "tokenizer"
    tiny.train_tokenizer(tiny.sample_texts() + MULTILINGUAL, 420, tokenizer_dir)
    for family in tiny.FAMILIES:
        tiny.build_tiny_model(family, tokenizer_dir, root / family, seed=0, num_layers=2)
    return root


# -- adapters ---------------------------------------------------------------------------------


@pytest.mark.parametrize("family", tiny.FAMILIES)
def test_adapter_paths_name_the_right_modules(tiny_dir, family):
    model, _ = loading.load_model(tiny_dir / family)
    config = model.config
    shape = adapters.shape(model)
    # sizes as the config states them
    assert shape.num_layers == config.num_hidden_layers == 2
    assert shape.intermediate_size == config.intermediate_size == 128
    assert shape.num_heads * shape.head_dim == config.num_attention_heads * 16
    assert len(adapters.layers(model)) == 2
    names = dict(model.named_modules())
    for i in range(shape.num_layers):
        # the adapter resolves to the very modules HF names model.layers.i.<...>
        assert adapters.gate_proj(model, i) is names[f"model.layers.{i}.mlp.gate_proj"]
        assert adapters.up_proj(model, i) is names[f"model.layers.{i}.mlp.up_proj"]
        assert adapters.down_proj(model, i) is names[f"model.layers.{i}.mlp.down_proj"]
        assert adapters.o_proj(model, i) is names[f"model.layers.{i}.self_attn.o_proj"]
        assert adapters.gate_proj(model, i).out_features == shape.intermediate_size
        assert adapters.o_proj(model, i).in_features == shape.num_heads * shape.head_dim
        assert adapters.down_proj(model, i).in_features == shape.intermediate_size
    assert adapters.decoder(model) is model.model
    assert adapters.tl_hook_names(model, "gate") == [
        "blocks.0.mlp.hook_pre",
        "blocks.1.mlp.hook_pre",
    ]
    assert adapters.tl_hook_names(config, "z")[1] == "blocks.1.attn.hook_z"
    # every LoRA target names Linear layers of the model
    for target in adapters.lora_target_modules(model):
        hits = [m for n, m in names.items() if n.endswith("." + target)]
        assert len(hits) == shape.num_layers
        assert all(isinstance(m, torch.nn.Linear) for m in hits)


@pytest.mark.parametrize(
    "config_name", ["MistralConfig", "Qwen3Config", "LlamaConfig"], ids=str.lower
)
def test_other_registered_families_resolve(config_name):
    import transformers

    config = getattr(transformers, config_name)(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
    )
    model = transformers.AutoModelForCausalLM.from_config(config)
    assert adapters.gate_proj(model, 0).out_features == 48
    assert adapters.o_proj(model, 0).in_features == 32
    assert adapters.shape(model).head_dim == 8


def test_unknown_family_lists_the_supported_ones():
    from transformers import GPT2Config

    with pytest.raises(ModelError) as error:
        adapters.adapter_for(GPT2Config())
    message = str(error.value)
    assert "'gpt2'" in message
    for family in ("qwen2", "olmo2", "llama"):
        assert family in message
    with pytest.raises(ModelError):
        adapters.adapter_for("mamba")


def test_layer_index_out_of_range(tiny_dir):
    model, _ = loading.load_model(tiny_dir / "qwen2")
    with pytest.raises(ModelError, match="out of range"):
        adapters.gate_proj(model, 2)


def test_adapter_sees_through_peft(tiny_dir):
    from peft import LoraConfig, get_peft_model

    model, _ = loading.load_model(tiny_dir / "qwen2")
    wrapped = get_peft_model(
        model, LoraConfig(r=2, target_modules=adapters.lora_target_modules(model))
    )
    assert adapters.adapter_for(wrapped).family == "qwen2"
    assert len(adapters.layers(wrapped)) == 2
    assert adapters.o_proj(wrapped, 1) is adapters.o_proj(model, 1)


# -- tokenizer --------------------------------------------------------------------------------


def test_tokenizer_ids_survive_reload_in_every_family(tiny_dir):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    # The saved tokenizer.json run by the tokenizers library alone is the reference; every
    # AutoTokenizer reload (which rebuilds Qwen2's pipeline for qwen2) must give its ids.
    raw = Tokenizer.from_file(str(tiny_dir / "tokenizer" / "tokenizer.json"))
    for place in ["tokenizer", *tiny.FAMILIES]:
        reloaded = AutoTokenizer.from_pretrained(tiny_dir / place)
        for text in MULTILINGUAL:
            ids = reloaded(text, add_special_tokens=False)["input_ids"]
            assert ids == raw.encode(text, add_special_tokens=False).ids, (place, text)
            assert reloaded.decode(ids) == unicodedata.normalize("NFC", text)


def test_tokenizer_splits_digits_and_uses_endoftext(tiny_dir):
    tokenizer = loading.load_tokenizer(tiny_dir / "tokenizer")
    pieces = tokenizer.convert_ids_to_tokens(tokenizer("in 2023")["input_ids"])
    assert pieces[-4:] == ["2", "0", "2", "3"]  # Qwen2 splits numbers digit by digit
    assert tokenizer.eos_token == tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.eos_token_id == 0
    assert len(tokenizer) == 420


def test_other_pretokenization_changes_ids_on_reload():
    # The trap the tokenizer avoids: GPT-2-style byte-level splitting keeps "2023" whole, so
    # merges learned across digits do not survive Qwen2's digit-by-digit reload.
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Tokenizer

    texts = [f"year 2023 and 2024, {n} items" for n in range(100, 160)]
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(texts, trainer=trainer)
    model = json.loads(raw.to_str())["model"]
    original = PreTrainedTokenizerFast(tokenizer_object=raw)
    rebuilt = Qwen2Tokenizer(vocab=model["vocab"], merges=[tuple(m) for m in model["merges"]])
    with pytest.raises(ModelError, match="changed on reload"):
        tiny.check_roundtrip(original, rebuilt, texts)


def test_train_tokenizer_rejects_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="vocab_size"):
        tiny.train_tokenizer(["abc"], 100, tmp_path / "t")
    with pytest.raises(ConfigError, match="no texts"):
        tiny.train_tokenizer([], 400, tmp_path / "t")


# -- tiny models and loading ------------------------------------------------------------------


@pytest.mark.parametrize(
    "family, cls",
    [("qwen2", "Qwen2ForCausalLM"), ("olmo2", "Olmo2ForCausalLM"), ("llama", "LlamaForCausalLM")],
)
def test_load_model_defaults(tiny_dir, family, cls):
    model, tokenizer = loading.load_model(tiny_dir / family)
    assert type(model).__name__ == cls
    assert model.config.model_type == family
    assert model.config.architectures == [cls]
    assert next(model.parameters()).dtype == torch.float32  # CPU default
    assert next(model.parameters()).device.type == "cpu"
    assert not model.training
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)
    ids = tokenizer(MULTILINGUAL[1], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tokenizer))


def test_load_model_overrides(tiny_dir):
    model, _ = loading.load_model(
        tiny_dir / "qwen2", dtype="bf16", attn_implementation="eager", device="cpu"
    )
    assert next(model.parameters()).dtype == torch.bfloat16
    assert model.config._attn_implementation == "eager"
    model, _ = loading.load_model(tiny_dir / "qwen2", dtype=torch.float16)
    assert next(model.parameters()).dtype == torch.float16
    with pytest.raises(ModelError, match="unknown dtype"):
        loading.load_model(tiny_dir / "qwen2", dtype="int3")


def test_same_seed_same_weights_and_global_rng_untouched(tiny_dir, tmp_path):
    state = torch.random.get_rng_state()
    a = tiny.build_tiny_model("qwen2", tiny_dir / "tokenizer", tmp_path / "a", seed=0, num_layers=2)
    b = tiny.build_tiny_model("qwen2", tiny_dir / "tokenizer", tmp_path / "b", seed=1, num_layers=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    reference, _ = loading.load_model(tiny_dir / "qwen2")  # seed 0 in the fixture
    same, _ = loading.load_model(a)
    other, _ = loading.load_model(b)
    weight = "model.layers.0.mlp.gate_proj.weight"
    assert torch.equal(same.state_dict()[weight], reference.state_dict()[weight])
    assert not torch.equal(other.state_dict()[weight], reference.state_dict()[weight])


def test_tokenizer_beyond_the_embedding_is_refused(tiny_dir):
    tokenizer = loading.load_tokenizer(tiny_dir / "qwen2")
    tokenizer.add_tokens(["<extra_a>", "<extra_b>"])
    with pytest.raises(ModelError, match="embeds only 420"):
        loading.load_model(tiny_dir / "qwen2", tokenizer=tokenizer)


def test_load_model_errors(tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(ModelError, match="not supported"):
        loading.load_model(tmp_path / "gpt2")
    with pytest.raises(ModelError, match="no such checkpoint folder"):
        loading.load_model(tmp_path / "missing")


def test_tiny_config_errors():
    with pytest.raises(ConfigError, match="unknown tiny model family"):
        tiny.tiny_config("gpt2", 400)
    with pytest.raises(ConfigError, match="divide"):
        tiny.tiny_config("qwen2", 400, hidden_size=60, num_heads=8)
