"""Three ways to read a model's activations; each only delivers tensors.

A backend runs the decoder layers of an HF model on one padded batch and calls
`deliver(site, layer, tensor)` for every requested canonical site at every layer, in forward
order, with tensors shaped [batch, seq, units] ("gate" and "post": intermediate units, "z":
heads * head_dim). It always delivers ("resid_post", last layer) last, the residual stream after
the last decoder layer, then stops: no backend computes the LM head.

- "torch": plain forward hooks on the HF modules named by the family adapter (the default, and
  the cheapest).
- "transformer_lens": TransformerLens 4.x `TransformerBridge` hooks (`blocks.L.mlp.hook_pre`,
  `mlp.hook_post`, `attn.hook_z`).
- "nnsight": nnsight 0.8 `TransformersModel.trace`, reading module inputs and outputs in forward
  order.

TransformerLens and nnsight patch the model they wrap (TransformerLens swaps submodules for its
bridge components and switches attention to eager; nnsight installs a forward controller on
every module and sets the tokenizer to left padding). Their backends undo all of that in
`close()`, so the model and tokenizer come back as they were.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from interp.errors import ConfigError, ModelError
from interp.models import adapters

if TYPE_CHECKING:
    import torch

Deliver = Callable[[str, int, "torch.Tensor"], None]

# Order of the sites inside one decoder layer's forward: attention, then the MLP's gate,
# then the down_proj input, then the layer's output.
SITE_ORDER = ("z", "gate", "post", "resid_post")
_SITE_PARTS = {
    "z": ("o_proj", "input"),
    "gate": ("gate_proj", "output"),
    "post": ("down_proj", "input"),
}


def ordered_sites(sites: Sequence[str]) -> tuple[str, ...]:
    """`sites` in forward order; ConfigError on unknown names."""
    unknown = set(sites) - set(_SITE_PARTS)
    if unknown:
        raise ConfigError(
            f"unknown activation sites {sorted(unknown)}; known: {sorted(_SITE_PARTS)}"
        )
    return tuple(s for s in SITE_ORDER if s in set(sites))


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens, so left padding does not shift them (pads get 0)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class _StopForward(Exception):
    """Raised after the last decoder layer to skip the final norm and the LM head."""


class _ModelSnapshot:
    """Records what TransformerLens and nnsight change on a model and a tokenizer, to undo it."""

    _INSTANCE_KEYS = ("forward", "__nnsight__", "__nnsight_body_forward__")

    def __init__(self, model: Any, tokenizer: Any = None) -> None:
        self.model = model
        self.modules = list(model.modules())
        self.children = [(m, dict(m._modules)) for m in self.modules]
        self.instance = [
            (m, {k: m.__dict__[k] for k in self._INSTANCE_KEYS if k in m.__dict__})
            for m in self.modules
        ]
        config = model.config
        self.attn_implementation = getattr(config, "_attn_implementation", None)
        self.architectures = getattr(config, "architectures", None)
        self.training = model.training
        self.tokenizer = tokenizer
        if tokenizer is not None:
            self.padding_side = tokenizer.padding_side
            self.pad_token = tokenizer.pad_token

    def restore(self) -> None:
        for module, children in self.children:
            module._modules.clear()
            module._modules.update(children)
        for module, saved in self.instance:
            for key in self._INSTANCE_KEYS:
                if key in saved:
                    module.__dict__[key] = saved[key]
                else:
                    module.__dict__.pop(key, None)
        config = self.model.config
        if self.attn_implementation is not None and (
            config._attn_implementation != self.attn_implementation
        ):
            try:
                self.model.set_attn_implementation(self.attn_implementation)
            except Exception:  # noqa: BLE001 - an exotic model; the config write is enough
                config._attn_implementation = self.attn_implementation
        config.architectures = self.architectures
        self.model.train(self.training)
        if self.tokenizer is not None:
            self.tokenizer.padding_side = self.padding_side
            if self.tokenizer.pad_token != self.pad_token:
                self.tokenizer.pad_token = self.pad_token


class Backend:
    """Base class. Use as a context manager, or call `close()` when done."""

    name: ClassVar[str] = ""

    def __init__(self, model: Any, tokenizer: Any, sites: Sequence[str]) -> None:
        self.model = adapters.unwrap(model)
        self.tokenizer = tokenizer
        self.adapter = adapters.adapter_for(self.model)
        self.shape = self.adapter.shape(self.model.config)
        self.sites = ordered_sites(sites)
        self.num_layers = self.shape.num_layers

    def run(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        deliver: Deliver,
    ) -> None:
        """Run one batch, delivering each site's activations."""
        raise NotImplementedError

    def close(self) -> None:
        """Remove hooks and undo changes to the model."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TorchHooksBackend(Backend):
    """Forward hooks on gate_proj (output), down_proj and o_proj (inputs) and the last layer."""

    name = "torch"

    def __init__(self, model: Any, tokenizer: Any, sites: Sequence[str]) -> None:
        super().__init__(model, tokenizer, sites)
        self._deliver: Deliver | None = None
        self._handles = []
        for layer in range(self.num_layers):
            for site in self.sites:
                part, kind = _SITE_PARTS[site]
                module = adapters.get_module(
                    self.model, self.adapter.layer_module_path(layer, part)
                )
                if kind == "output":
                    hook = module.register_forward_hook(self._output_hook(site, layer))
                else:
                    hook = module.register_forward_pre_hook(self._input_hook(site, layer))
                self._handles.append(hook)
        last = adapters.layers(self.model)[self.num_layers - 1]
        self._handles.append(last.register_forward_hook(self._last_layer_hook))

    def _output_hook(self, site: str, layer: int) -> Callable:
        def hook(module: Any, args: Any, output: torch.Tensor) -> None:
            if self._deliver is not None:
                self._deliver(site, layer, output)

        return hook

    def _input_hook(self, site: str, layer: int) -> Callable:
        def hook(module: Any, args: tuple) -> None:
            if self._deliver is not None:
                self._deliver(site, layer, args[0])

        return hook

    def _last_layer_hook(self, module: Any, args: Any, output: Any) -> None:
        if self._deliver is not None:
            hidden = output[0] if isinstance(output, tuple) else output
            self._deliver("resid_post", self.num_layers - 1, hidden)
            raise _StopForward

    def run(self, input_ids, attention_mask, position_ids, deliver) -> None:
        import torch

        self._deliver = deliver
        try:
            with torch.inference_mode():
                adapters.decoder(self.model)(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    position_ids=position_ids,
                    use_cache=False,
                )
        except _StopForward:
            pass
        finally:
            self._deliver = None

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


class TransformerLensBackend(Backend):
    """TransformerLens 4.x bridge over the same HF model (switched to eager attention)."""

    name = "transformer_lens"

    def __init__(self, model: Any, tokenizer: Any, sites: Sequence[str]) -> None:
        super().__init__(model, tokenizer, sites)
        if tokenizer is None or not getattr(tokenizer, "name_or_path", ""):
            raise ModelError(
                "the transformer_lens backend needs a tokenizer loaded from disk (TransformerLens "
                "reads its name_or_path). Fix: pass the tokenizer from load_model / "
                "AutoTokenizer.from_pretrained(<dir>)."
            )
        from transformer_lens.model_bridge import TransformerBridge

        self._snapshot = _ModelSnapshot(self.model, tokenizer)
        self._hooks = contextlib.ExitStack()
        self._deliver: Deliver | None = None
        param = next(self.model.parameters())
        if not self.model.config.architectures:
            # TransformerLens picks its adapter from config.architectures, which a model
            # built in memory lacks.
            self.model.config.architectures = [self.adapter.architecture]
        try:
            self.bridge = TransformerBridge.boot_transformers(
                self.model.config.name_or_path or tokenizer.name_or_path,
                hf_model=self.model,
                tokenizer=tokenizer,
                device=param.device,
                dtype=param.dtype,
            )
            fwd_hooks = [
                (self.adapter.tl_hook(site, layer), self._hook(site, layer))
                for layer in range(self.num_layers)
                for site in self.sites
            ]
            last = self.adapter.tl_hook("resid_post", self.num_layers - 1)
            fwd_hooks.append((last, self._last_hook))
            self._hooks.enter_context(self.bridge.hooks(fwd_hooks=fwd_hooks))
        except Exception:
            self.close()
            raise

    def _hook(self, site: str, layer: int) -> Callable:
        def hook(x: torch.Tensor, hook: Any) -> torch.Tensor:
            if self._deliver is not None:
                self._deliver(site, layer, x.flatten(-2) if site == "z" else x)
            return x

        return hook

    def _last_hook(self, x: torch.Tensor, hook: Any) -> torch.Tensor:
        if self._deliver is not None:
            self._deliver("resid_post", self.num_layers - 1, x)
            raise _StopForward
        return x

    def run(self, input_ids, attention_mask, position_ids, deliver) -> None:
        import torch

        self._deliver = deliver
        try:
            with torch.inference_mode():
                self.bridge(input_ids, attention_mask=attention_mask, position_ids=position_ids)
        except _StopForward:
            pass
        finally:
            self._deliver = None

    def close(self) -> None:
        self._hooks.close()
        if hasattr(self, "_snapshot"):
            self._snapshot.restore()


class NNsightBackend(Backend):
    """nnsight 0.8 `TransformersModel` traces, reading sites in forward order."""

    name = "nnsight"

    def __init__(self, model: Any, tokenizer: Any, sites: Sequence[str]) -> None:
        super().__init__(model, tokenizer, sites)
        import nnsight

        self._snapshot = _ModelSnapshot(self.model, tokenizer)
        try:
            self.envoy = nnsight.TransformersModel(self.model, tokenizer=tokenizer)
            # Envoys of every site, looked up once: [(site, layer, envoy, "input"|"output")].
            self._reads = []
            for layer in range(self.num_layers):
                for site in self.sites:
                    part, kind = _SITE_PARTS[site]
                    path = self.adapter.layer_module_path(layer, part)
                    self._reads.append((site, layer, adapters.get_module(self.envoy, path), kind))
            self._last = adapters.get_module(
                self.envoy, f"{self.adapter.layers}.{self.num_layers - 1}"
            )
        except Exception:
            self.close()
            raise

    def run(self, input_ids, attention_mask, position_ids, deliver) -> None:
        import torch

        reads, last, num_layers = self._reads, self._last, self.num_layers
        inputs = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            "use_cache": False,
        }
        with torch.inference_mode(), self.envoy.trace(inputs) as tracer:
            for site, layer, envoy, kind in reads:
                deliver(site, layer, envoy.input if kind == "input" else envoy.output)
            hidden = last.output
            deliver(
                "resid_post", num_layers - 1, hidden[0] if isinstance(hidden, tuple) else hidden
            )
            tracer.stop()

    def close(self) -> None:
        if hasattr(self, "_snapshot"):
            self._snapshot.restore()


BACKENDS: dict[str, type[Backend]] = {
    "torch": TorchHooksBackend,
    "transformer_lens": TransformerLensBackend,
    "nnsight": NNsightBackend,
}
BACKEND_ALIASES = {"tl": "transformer_lens", "lens": "transformer_lens"}


def backend_name(name: str) -> str:
    """The registered name of a backend or of one of its aliases."""
    name = BACKEND_ALIASES.get(name, name)
    if name not in BACKENDS:
        known = sorted({*BACKENDS, *BACKEND_ALIASES})
        raise ConfigError(f"unknown backend {name!r}. Fix: one of {', '.join(known)}")
    return name


def make_backend(name: str, model: Any, tokenizer: Any, sites: Sequence[str]) -> Backend:
    """A backend by name: "torch", "transformer_lens" (or "tl", "lens"), "nnsight"."""
    return BACKENDS[backend_name(name)](model, tokenizer, sites)
