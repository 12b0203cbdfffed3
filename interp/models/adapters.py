"""Where each model family keeps its layers, MLP projections and attention heads.

A family is data: one frozen `FamilyAdapter` instance naming HF module paths, registered under
its `config.model_type`. Backends, ablations, head masks and LoRA targets all read it, so adding
a family is one `register(FamilyAdapter(...))`.

Canonical sites (the tensors the suite reads):
- "gate": output of `mlp.gate_proj`, [..., intermediate]; a neuron fires when act(gate) > 0,
  which for SiLU, GELU and ReLU is gate > 0.
- "post": input of `mlp.down_proj` = act(gate) * up, [..., intermediate].
- "z": input of `self_attn.o_proj`, the concatenated per-head outputs, [..., heads * head_dim].
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interp.errors import ModelError

if TYPE_CHECKING:
    import torch

SITES = ("gate", "post", "z", "resid_post")

# Activations with act(x) > 0 exactly when x > 0, so "fires" can be read off the gate's sign.
SIGN_PRESERVING_ACTIVATIONS = frozenset(
    {"silu", "swish", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu"}
)


@dataclass(frozen=True)
class ModelShape:
    """Sizes read from a model config."""

    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    activation: str


@dataclass(frozen=True)
class FamilyAdapter:
    """HF module paths of one gated-MLP decoder family (paths relative to the CausalLM model)."""

    family: str  # config.model_type
    architecture: str  # the *ForCausalLM class name, for config.architectures
    decoder: str = "model"  # the base model without the LM head
    embed: str = "model.embed_tokens"
    layers: str = "model.layers"
    final_norm: str = "model.norm"
    lm_head: str = "lm_head"
    # relative to one decoder layer
    attn: str = "self_attn"
    q_proj: str = "self_attn.q_proj"
    k_proj: str = "self_attn.k_proj"
    v_proj: str = "self_attn.v_proj"
    o_proj: str = "self_attn.o_proj"
    mlp: str = "mlp"
    gate_proj: str = "mlp.gate_proj"
    up_proj: str = "mlp.up_proj"
    down_proj: str = "mlp.down_proj"
    act_fn: str = "mlp.act_fn"
    norm: str = "pre"  # "pre": norm before attn/MLP (Llama, Qwen2); "post": after (OLMo2)
    lora_targets: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )
    # TransformerLens 4.x hook names of the canonical sites; {layer} is filled in
    tl_gate: str = "blocks.{layer}.mlp.hook_pre"
    tl_post: str = "blocks.{layer}.mlp.hook_post"
    tl_z: str = "blocks.{layer}.attn.hook_z"
    tl_resid_post: str = "blocks.{layer}.hook_resid_post"

    def shape(self, config: Any) -> ModelShape:
        """Sizes of a model of this family, read from its config."""
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return ModelShape(
            num_layers=config.num_hidden_layers,
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_heads=heads,
            num_kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            head_dim=head_dim,
            vocab_size=config.vocab_size,
            activation=getattr(config, "hidden_act", "silu"),
        )

    def tl_hook(self, site: str, layer: int) -> str:
        """TransformerLens hook name of a canonical site ("gate", "post", "z") at `layer`."""
        template = getattr(self, f"tl_{site}", None)
        if template is None:
            raise ModelError(f"unknown site {site!r}; known: {list(SITES)}")
        return template.format(layer=layer)

    def layer_module_path(self, layer: int, part: str) -> str:
        """Full module path of `part` (an attribute name such as "gate_proj") in `layer`."""
        return f"{self.layers}.{layer}.{getattr(self, part)}"


ADAPTERS: dict[str, FamilyAdapter] = {}


def register(adapter: FamilyAdapter) -> FamilyAdapter:
    """Add a family to the registry (replacing one of the same model_type)."""
    ADAPTERS[adapter.family] = adapter
    return adapter


# The defaults above are the Llama layout, which these families share (OLMo2 differs only in
# where its norms sit, which no path depends on). A family with other paths overrides fields.
QWEN2 = register(FamilyAdapter(family="qwen2", architecture="Qwen2ForCausalLM"))
OLMO2 = register(FamilyAdapter(family="olmo2", architecture="Olmo2ForCausalLM", norm="post"))
LLAMA = register(FamilyAdapter(family="llama", architecture="LlamaForCausalLM"))
MISTRAL = register(FamilyAdapter(family="mistral", architecture="MistralForCausalLM"))
QWEN3 = register(FamilyAdapter(family="qwen3", architecture="Qwen3ForCausalLM"))


def unwrap(model: Any) -> Any:
    """The HF CausalLM inside DDP, PEFT or similar wrappers (the model itself otherwise)."""
    for _ in range(8):  # wrappers nest at most a few levels
        if callable(getattr(model, "get_base_model", None)):
            model = model.get_base_model()  # peft.PeftModel
        elif hasattr(model, "module") and not hasattr(model, "config"):
            model = model.module  # DistributedDataParallel, FSDP
        else:
            break
    return model


def _model_type(model_or_config: Any) -> str:
    if isinstance(model_or_config, str):
        return model_or_config
    config = getattr(unwrap(model_or_config), "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    if model_type is None:
        raise ModelError(
            f"{type(model_or_config).__name__} has no config.model_type. Fix: pass an HF "
            "PreTrainedModel, its config, or a model_type string."
        )
    return model_type


def adapter_for(model_or_config: Any) -> FamilyAdapter:
    """The adapter of a model, a config, or a model_type string."""
    model_type = _model_type(model_or_config)
    if model_type not in ADAPTERS:
        raise ModelError(
            f"model family {model_type!r} is not supported; supported: {sorted(ADAPTERS)}. "
            "Fix: use a model of a supported family, or register a FamilyAdapter for "
            f"{model_type!r} in interp.models.adapters."
        )
    return ADAPTERS[model_type]


def shape(model_or_config: Any) -> ModelShape:
    """Sizes of a model (or config)."""
    config = getattr(unwrap(model_or_config), "config", model_or_config)
    return adapter_for(config).shape(config)


def check_gated_activation(model_or_config: Any) -> str:
    """The MLP activation name; ModelError when act(x) > 0 is not the same as x > 0."""
    activation = shape(model_or_config).activation
    if activation not in SIGN_PRESERVING_ACTIVATIONS:
        raise ModelError(
            f"MLP activation {activation!r}: firing is counted as gate_proj(x) > 0, which "
            f"equals act(gate) > 0 only for {sorted(SIGN_PRESERVING_ACTIVATIONS)}. Fix: use a "
            "model with one of these, or add the activation here if it keeps the sign."
        )
    return activation


def get_module(root: Any, path: str) -> torch.nn.Module:
    """`root.<path>` for a dotted path whose numeric parts index module lists."""
    module = root
    for part in path.split("."):
        try:
            module = module[int(part)] if part.isdigit() else getattr(module, part)
        except (AttributeError, IndexError) as error:
            raise ModelError(
                f"{type(unwrap(root)).__name__} has no module {path!r} (failed at {part!r}). "
                "Fix: check the family adapter's module paths against print(model)."
            ) from error
    return module


def layers(model: Any) -> torch.nn.ModuleList:
    """The list of decoder layers."""
    model = unwrap(model)
    return get_module(model, adapter_for(model).layers)


def num_layers(model: Any) -> int:
    """Number of decoder layers."""
    return len(layers(model))


def _layer_part(model: Any, index: int, part: str) -> torch.nn.Module:
    model = unwrap(model)
    stack = layers(model)
    if not -len(stack) <= index < len(stack):
        raise ModelError(f"layer {index} out of range: the model has {len(stack)} layers")
    return get_module(stack[index], getattr(adapter_for(model), part))


def gate_proj(model: Any, layer: int) -> torch.nn.Module:
    """The MLP gate projection of `layer`."""
    return _layer_part(model, layer, "gate_proj")


def up_proj(model: Any, layer: int) -> torch.nn.Module:
    """The MLP up projection of `layer`."""
    return _layer_part(model, layer, "up_proj")


def down_proj(model: Any, layer: int) -> torch.nn.Module:
    """The MLP down projection of `layer`; its input is act(gate) * up."""
    return _layer_part(model, layer, "down_proj")


def mlp(model: Any, layer: int) -> torch.nn.Module:
    """The MLP block of `layer`."""
    return _layer_part(model, layer, "mlp")


def act_fn(model: Any, layer: int) -> torch.nn.Module:
    """The MLP activation module of `layer`."""
    return _layer_part(model, layer, "act_fn")


def attention(model: Any, layer: int) -> torch.nn.Module:
    """The attention block of `layer`."""
    return _layer_part(model, layer, "attn")


def o_proj(model: Any, layer: int) -> torch.nn.Module:
    """The attention output projection of `layer`; its input is [..., heads * head_dim]."""
    return _layer_part(model, layer, "o_proj")


def decoder(model: Any) -> torch.nn.Module:
    """The base decoder (embeddings, layers, final norm) without the LM head."""
    model = unwrap(model)
    return get_module(model, adapter_for(model).decoder)


def iter_layers(model: Any) -> Iterator[tuple[int, torch.nn.Module]]:
    """(index, decoder layer) pairs."""
    yield from enumerate(layers(model))


def lora_target_modules(model_or_config: Any) -> list[str]:
    """Module names for `peft.LoraConfig(target_modules=...)`."""
    return list(adapter_for(model_or_config).lora_targets)


def tl_hook_names(model_or_config: Any, site: str) -> list[str]:
    """TransformerLens hook names of `site` for every layer."""
    adapter = adapter_for(model_or_config)
    config = getattr(unwrap(model_or_config), "config", model_or_config)
    return [adapter.tl_hook(site, i) for i in range(adapter.shape(config).num_layers)]
