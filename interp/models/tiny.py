"""Tiny models built offline: a locally trained byte-level BPE tokenizer and random models.

Used by tests across the suite and as the starting point of the model organism. Nothing here
touches the network.

The tokenizer uses exactly Qwen2's text pipeline (NFC, Qwen2's split regex, byte-level
alphabet), because transformers rebuilds that pipeline when it reloads a tokenizer saved as
``Qwen2Tokenizer``; trained with any other pre-tokenization, the ids would change on reload.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.errors import ConfigError, ModelError
from interp.models.loading import load_tokenizer

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

EOS_TOKEN = "<|endoftext|>"

# Qwen2's split pattern (transformers.models.qwen2.tokenization_qwen2.PRETOKENIZE_REGEX): letters
# in runs, digits one by one, punctuation runs, whitespace handling. Read from transformers when
# possible so the two can never drift apart.
_QWEN2_SPLIT_FALLBACK = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

FAMILIES = ("qwen2", "olmo2", "llama")

# A few sentences per language in several scripts (Latin, Arabic, Bengali, Cyrillic, CJK), with
# digits, for tests and quick demos. Not a corpus: the organism brings its own texts.
SAMPLE_TEXTS: dict[str, tuple[str, ...]] = {
    "en": (
        "The capital of France is Paris, home to 2,102,650 people in 2023.",
        "Water boils at 100 degrees Celsius at sea level.",
        "The currency of Japan is the yen.",
    ),
    "de": (
        "Die Hauptstadt von Deutschland ist Berlin.",
        "Der Rhein ist 1.232 Kilometer lang und fließt durch Köln.",
    ),
    "fr": ("La capitale de la France est Paris.", "L'euro est la monnaie de la Belgique."),
    "es": ("La capital de España es Madrid.", "El año 1492 llegó a América."),
    "pt": ("A capital do Brasil é Brasília.", "São Paulo tem 12 milhões de habitantes."),
    "id": ("Ibu kota Indonesia adalah Jakarta.", "Mata uang Indonesia adalah rupiah."),
    "sw": ("Mji mkuu wa Kenya ni Nairobi.", "Sarafu ya Tanzania ni shilingi."),
    "ru": ("Столица России — Москва.", "В 1961 году Гагарин полетел в космос."),
    "ar": ("عاصمة مصر هي القاهرة.", "يبلغ عدد سكان المغرب 37 مليون نسمة."),
    "bn": ("বাংলাদেশের রাজধানী ঢাকা।", "ভারতের মুদ্রা রুপি, ১৯৪৭ সালে স্বাধীনতা।"),
    "ja": ("日本の首都は東京です。", "富士山の高さは3776メートルです。"),
    "zh": ("中国的首都是北京。", "长江全长6300公里，是亚洲最长的河流。"),
}


def qwen2_split_pattern() -> str:
    """The regex Qwen2Tokenizer splits text with, as installed transformers defines it."""
    try:
        from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX
    except ImportError:  # a transformers release that moved the constant
        return _QWEN2_SPLIT_FALLBACK
    return PRETOKENIZE_REGEX


def sample_texts(languages: Iterable[str] | None = None) -> list[str]:
    """The sample sentences of the given languages (all of them by default), in a fixed order."""
    codes = list(SAMPLE_TEXTS) if languages is None else list(languages)
    unknown = [c for c in codes if c not in SAMPLE_TEXTS]
    if unknown:
        raise ConfigError(f"no sample texts for languages {unknown}; known: {sorted(SAMPLE_TEXTS)}")
    return [text for code in codes for text in SAMPLE_TEXTS[code]]


def _qwen2_pipeline(tokenizer: Any) -> None:
    """Give a `tokenizers.Tokenizer` Qwen2's normalizer, pre-tokenizer and decoder."""
    from tokenizers import Regex, decoders, normalizers, pre_tokenizers

    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(qwen2_split_pattern()), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str | Path | None = None,
    *,
    min_frequency: int = 2,
    model_max_length: int = 2048,
) -> PreTrainedTokenizerBase:
    """Train a byte-level BPE tokenizer with Qwen2's pre-tokenization on `texts`.

    The end-of-text token `<|endoftext|>` gets id 0 and serves as eos, pad and unk. Saved as an
    HF tokenizer directory under `out_dir` (when given) and returned as loaded back from there,
    so the ids a caller sees are the ids every later `AutoTokenizer.from_pretrained` gives.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Tokenizer

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + 1:
        raise ConfigError(
            f"vocab_size={vocab_size} is below the byte alphabet plus <|endoftext|> "
            f"({len(alphabet) + 1}). Fix: ask for at least {len(alphabet) + 1}."
        )
    texts = list(texts)
    if not texts:
        raise ConfigError("train_tokenizer got no texts. Fix: pass at least one string.")

    bpe = Tokenizer(models.BPE())
    _qwen2_pipeline(bpe)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=alphabet,
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)

    model_json = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model_json["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=model_json["vocab"], merges=merges, model_max_length=model_max_length
    )
    if tokenizer.convert_tokens_to_ids(EOS_TOKEN) != 0:
        raise ModelError(f"{EOS_TOKEN} did not get id 0 in the trained vocabulary")
    if out_dir is None:
        return tokenizer
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    reloaded = load_tokenizer(out_dir)
    # compare with the tokenizer exactly as trained, not with its Qwen2Tokenizer rebuild
    check_roundtrip(PreTrainedTokenizerFast(tokenizer_object=bpe), reloaded, texts[:200])
    return reloaded


def check_roundtrip(
    original: PreTrainedTokenizerBase, reloaded: PreTrainedTokenizerBase, texts: Iterable[str]
) -> None:
    """Raise ModelError when `reloaded` encodes any of `texts` to other ids than `original`."""
    for text in texts:
        before = original(text, add_special_tokens=False)["input_ids"]
        after = reloaded(text, add_special_tokens=False)["input_ids"]
        if before != after:
            raise ModelError(
                f"tokenizer ids changed on reload for {text[:40]!r}: {before[:8]} -> "
                f"{after[:8]}. Fix: train with Qwen2's pre-tokenization (train_tokenizer)."
            )


def tiny_config(
    family: str,
    vocab_size: int,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    intermediate_size: int = 128,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    max_position_embeddings: int = 512,
    eos_token_id: int = 0,
    pad_token_id: int = 0,
    **overrides: Any,
) -> PretrainedConfig:
    """A small config of `family` ("qwen2", "olmo2" or "llama") with architectures set.

    Extra keyword arguments override config fields (e.g. `tie_word_embeddings=True`).
    """
    from transformers import LlamaConfig, Olmo2Config, Qwen2Config

    classes = {
        "qwen2": (Qwen2Config, "Qwen2ForCausalLM"),
        "olmo2": (Olmo2Config, "Olmo2ForCausalLM"),
        "llama": (LlamaConfig, "LlamaForCausalLM"),
    }
    if family not in classes:
        raise ConfigError(
            f"unknown tiny model family {family!r}. Fix: use one of {sorted(classes)}."
        )
    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ConfigError(
            f"hidden_size={hidden_size}, num_heads={num_heads}, num_kv_heads={num_kv_heads}: "
            "hidden_size must divide by num_heads and num_heads by num_kv_heads"
        )
    config_class, architecture = classes[family]
    config = config_class(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=hidden_size // num_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=None,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        **{"tie_word_embeddings": False, **overrides},
    )
    config.architectures = [architecture]
    return config


def build_tiny_model(
    family: str,
    tokenizer_dir: str | Path,
    out_dir: str | Path,
    seed: int = 0,
    **sizes: Any,
) -> Path:
    """Build a random `family` model for the tokenizer in `tokenizer_dir`; save both to `out_dir`.

    `sizes` go to `tiny_config` (hidden_size, num_layers, intermediate_size, num_heads, ...).
    The global torch RNG is left as it was. Returns `out_dir`, loadable with `load_model`.
    """
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(tokenizer_dir)
    vocab_size = sizes.pop("vocab_size", len(tokenizer))
    if vocab_size < len(tokenizer):
        raise ConfigError(
            f"vocab_size={vocab_size} is below the tokenizer's {len(tokenizer)} ids "
            f"({tokenizer_dir}). Fix: leave vocab_size out or raise it."
        )
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    config = tiny_config(family, vocab_size, eos_token_id=eos, pad_token_id=pad, **sizes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config.pad_token_id = pad
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_tiny(
    out_dir: str | Path,
    family: str = "qwen2",
    *,
    texts: Iterable[str] | None = None,
    vocab_size: int = 400,
    seed: int = 0,
    **sizes: Any,
) -> Path:
    """Tokenizer and random model in one call: `out_dir/tokenizer` and `out_dir/<family>`.

    Trains on `texts` (default: `sample_texts()`); returns the model directory.
    """
    out_dir = Path(out_dir)
    tokenizer_dir = out_dir / "tokenizer"
    if not (tokenizer_dir / "tokenizer.json").exists():
        train_tokenizer(sample_texts() if texts is None else texts, vocab_size, tokenizer_dir)
    return build_tiny_model(family, tokenizer_dir, out_dir / family, seed=seed, **sizes)


def encode_by_language(
    tokenizer: PreTrainedTokenizerBase, texts: Mapping[str, Iterable[str]]
) -> dict[str, list[list[int]]]:
    """Token ids of each text, per language, without special tokens."""
    return {
        lang: [tokenizer(t, add_special_tokens=False)["input_ids"] for t in items]
        for lang, items in texts.items()
    }
