"""Configuration shared by the training regimes (CPT, SFT, GRPO).

`RegimeConfig` holds what every regime has: learning rate, epochs or a step budget, batch size,
optional LoRA, seed, logging and checkpointing. A regime subclasses it with its own fields and
presets (`smoke`, `default`, `paper`); `config.training_arguments(out)` gives the keyword
arguments every TRL config (`SFTConfig`, `GRPOConfig`) shares, with the CPU traps handled
(`use_cpu=True`, `bf16=False`, gradient checkpointing off unless asked).

    config = SFTRegime.preset("paper", seed=1)
    trl_config = trl.SFTConfig(**config.training_arguments(partial_dir(out)), max_length=...)
    peft_config = config.lora.peft_config(model)   # None when LoRA is off
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from interp.errors import ConfigError

PAPER_MODELS = ("Qwen/Qwen2.5-7B", "allenai/OLMo-2-1124-7B")
PRESET_NAMES = ("smoke", "default", "paper")
DEVICES = ("auto", "cpu", "cuda")

Config = TypeVar("Config", bound="RegimeConfig")


@dataclass(frozen=True)
class LoraSettings:
    """LoRA on or off; targets default to the model family's adapter (`lora_target_modules`)."""

    enabled: bool = False
    r: int = 64
    alpha: int = 128
    dropout: float = 0.05
    target_modules: tuple[str, ...] | None = None  # None: read from the family adapter

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha <= 0 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(
                f"LoRA r={self.r}, alpha={self.alpha}, dropout={self.dropout}: need r >= 1, "
                "alpha > 0 and 0 <= dropout < 1"
            )

    def targets(self, model_or_config: Any) -> list[str]:
        """Module names LoRA wraps in this model (the adapter's list unless given)."""
        if self.target_modules is not None:
            return list(self.target_modules)
        from interp.models.adapters import lora_target_modules

        return lora_target_modules(model_or_config)

    def peft_config(self, model_or_config: Any):
        """A `peft.LoraConfig` for a causal LM, or None when LoRA is off."""
        if not self.enabled:
            return None
        from peft import LoraConfig

        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=self.targets(model_or_config),
            bias="none",
            task_type="CAUSAL_LM",
        )


PAPER_LORA = LoraSettings(enabled=True, r=64, alpha=128, dropout=0.05)


@dataclass(frozen=True)
class RegimeConfig:
    """What every training regime is configured with. Subclasses add regime fields and presets.

    `max_steps > 0` overrides `epochs`. `save_steps > 0` writes a resumable trainer checkpoint
    every that many steps into the run's `.partial/` folder. `device="auto"` takes CUDA when
    present; `bf16=None` means bf16 on CUDA, and on a CPU where bf16 is native and measured
    faster (`interp.runtime`), float32 elsewhere.
    """

    learning_rate: float = 2e-5
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 256
    lr_scheduler: str = "linear"
    warmup: float = 0.0  # a share of the steps when < 1, a number of steps when >= 1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora: LoraSettings = field(default_factory=LoraSettings)
    seed: int = 0
    logging_steps: int = 10
    save_steps: int = 0
    save_total_limit: int = 2
    device: str = "auto"
    bf16: bool | None = None
    gradient_checkpointing: bool = False
    report_to: str = "none"
    threads: int | None = None  # torch CPU threads (None: the idle cores, adapted under load)
    # the learning curve's accuracy probe: a fixed sample of the regime's training facts,
    # scored at this many evenly spaced steps (0 = no probe)
    probe_points: int = 0
    probe_facts: int = 48

    # name -> field overrides; a subclass replaces this with its own table
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"max_steps": 4, "batch_size": 4, "logging_steps": 1, "learning_rate": 1e-3},
        "default": {"epochs": 1.0, "batch_size": 8, "learning_rate": 5e-4},
        "paper": {"learning_rate": 2e-5, "epochs": 1.0, "lora": PAPER_LORA},
    }

    def __post_init__(self) -> None:
        problems = []
        if self.learning_rate <= 0:
            problems.append(f"learning_rate={self.learning_rate} must be > 0")
        if self.max_steps == 0 or self.max_steps < -1:
            problems.append(f"max_steps={self.max_steps} must be -1 (train for `epochs`) or >= 1")
        elif self.max_steps < 0 and self.epochs <= 0:
            problems.append(f"epochs={self.epochs} must be > 0 when max_steps is not set")
        if self.batch_size < 1 or self.gradient_accumulation_steps < 1:
            problems.append("batch_size and gradient_accumulation_steps must be >= 1")
        if self.max_length < 2:
            problems.append(f"max_length={self.max_length} must be >= 2")
        if self.threads is not None and self.threads < 1:
            problems.append(f"threads={self.threads} must be >= 1 (or None)")
        if self.probe_points < 0 or self.probe_facts < 1:
            problems.append(
                f"probe_points={self.probe_points} must be >= 0, probe_facts={self.probe_facts} >= 1"
            )
        if self.device not in DEVICES:
            problems.append(f"device={self.device!r} must be one of {DEVICES}")
        if isinstance(self.lora, dict):  # from JSON / a CLI
            object.__setattr__(self, "lora", LoraSettings(**self.lora))
        if problems:
            raise ConfigError(
                f"{type(self).__name__}: "
                + "; ".join(problems)
                + ". Fix: change these in the regime's config section or CLI flags"
            )

    # ---- presets and copies -------------------------------------------------------------

    @classmethod
    def preset(cls: type[Config], name: str, **changes: Any) -> Config:
        """The named preset (`smoke`, `default`, `paper`) with `changes` applied on top."""
        if name not in cls.PRESETS:
            raise ConfigError(
                f"unknown preset {name!r} for {cls.__name__}. Fix: use one of {sorted(cls.PRESETS)}"
            )
        return cls(**{**cls.PRESETS[name], **changes})

    def replace(self: Config, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (for manifests and fingerprints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[Config], values: dict[str, Any]) -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"{cls.__name__} has no fields {unknown}. Fix: use some of {sorted(known)}"
            )
        return cls(**values)

    # ---- what the trainers receive ------------------------------------------------------

    def use_cuda(self) -> bool:
        if self.device == "cpu":
            return False
        import torch

        available = torch.cuda.is_available()
        if self.device == "cuda" and not available:
            raise ConfigError("device='cuda' but no CUDA device is visible. Fix: device='cpu'")
        return available

    def training_arguments(self, output_dir: str, **extra: Any) -> dict[str, Any]:
        """Keyword arguments shared by TRL's SFTConfig and GRPOConfig (TrainingArguments).

        `output_dir` is where the trainer keeps resumable checkpoints (the run's `.partial/`).
        `extra` overrides or adds fields.
        """
        cuda = self.use_cuda()
        bf16 = self.bf16
        if bf16 is None:  # bf16 on CUDA, and on a CPU only where it is native and faster
            from interp.runtime import choose_precision, idle_cores

            if cuda:
                bf16 = True
            else:
                bf16 = (
                    choose_precision("auto", "cpu", self.threads or idle_cores())[0] == "bfloat16"
                )
        args: dict[str, Any] = {
            "output_dir": str(output_dir),
            "learning_rate": self.learning_rate,
            "num_train_epochs": self.epochs,
            "max_steps": self.max_steps if self.max_steps > 0 else -1,
            "per_device_train_batch_size": self.batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "lr_scheduler_type": self.lr_scheduler,
            "warmup_steps": self.warmup,
            "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm,
            "seed": self.seed,
            "data_seed": self.seed,
            "logging_steps": self.logging_steps,
            "save_strategy": "steps" if self.save_steps > 0 else "no",
            "save_steps": self.save_steps if self.save_steps > 0 else 500,
            "save_total_limit": self.save_total_limit,
            "use_cpu": not cuda,
            "bf16": bf16,
            _checkpointing_field(): self.gradient_checkpointing,
            "report_to": self.report_to,
            "disable_tqdm": True,
            "dataloader_num_workers": 0,
        }
        args.update(extra)
        return args


def _checkpointing_field() -> str:
    """transformers 5 renamed `gradient_checkpointing` (a deprecated alias that warns)."""
    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return (
        "activation_checkpointing"
        if "activation_checkpointing" in names
        else "gradient_checkpointing"
    )


# ---- running a TRL trainer into a checkpoint --------------------------------------------------

RUN_PLAN = "run_plan.json"  # in `.partial/`: what the interrupted run was, so a resume matches


def parent_summary(parent: str | Path) -> dict[str, Any]:
    """The parent checkpoint as a manifest records it: its path and, if any, its manifest's id."""
    import json

    from interp.train.checkpoints import MANIFEST

    summary: dict[str, Any] = {"path": str(parent)}
    manifest = Path(parent) / MANIFEST
    if manifest.is_file():
        values = json.loads(manifest.read_text(encoding="utf-8"))
        for key in ("name", "regime", "created", "data_fingerprint", "seed"):
            if key in values:
                summary[key] = values[key]
    return summary


def check_token_ids(max_id: int, model: Any, source: str) -> None:
    """ModelError when data holds a token id the model cannot embed."""
    from interp.errors import ModelError

    rows = model.get_input_embeddings().num_embeddings
    if max_id >= rows:
        raise ModelError(
            f"{source}: the tokenized data uses id {max_id} but the model embeds only ids "
            f"0..{rows - 1}. Fix: tokenize with the tokenizer saved with this model, or resize "
            "its embeddings (model.resize_token_embeddings)"
        )


def _resume_point(partial: Path, plan: dict[str, Any], resume: bool) -> str | None:
    """The trainer checkpoint to resume from, after checking the plan it was made under."""
    import json
    import shutil

    from transformers.trainer_utils import get_last_checkpoint

    plan_file = partial / RUN_PLAN
    if not partial.is_dir():
        return None
    if not resume:
        shutil.rmtree(partial, ignore_errors=True)  # every rank may try; one succeeds
        return None
    last = get_last_checkpoint(str(partial))
    if last is None:
        return None
    old = json.loads(plan_file.read_text(encoding="utf-8")) if plan_file.is_file() else None
    if old != json.loads(json.dumps(plan, default=str)):
        raise ConfigError(
            f"{partial} holds an interrupted run with another configuration, data or parent, so "
            "it cannot be resumed with this one. Fix: rerun with the same settings, pass "
            "resume=False (--no-resume) to start over, or delete that folder"
        )
    return last


def _sharded(trainer: Any) -> bool:
    """True when each process holds only a shard of the weights (ZeRO-3, FSDP)."""
    if getattr(trainer, "is_fsdp_enabled", False):
        return True
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    return plugin is not None and plugin.zero_stage == 3


def final_model(trainer: Any, parent: str | Path, config: RegimeConfig) -> Any:
    """The trained model as a plain HF model (LoRA merged) on the main process.

    Unsharded: the trainer's model itself. Sharded (ZeRO-3, FSDP): every process joins the
    gather of the full state dict; the main process loads it into a CPU copy of the parent
    (wrapped with the same LoRA config when LoRA is on) and merges. Other processes get None.
    """
    if not _sharded(trainer):
        model = trainer.accelerator.unwrap_model(trainer.model)
        if hasattr(model, "merge_and_unload"):  # peft: fold the adapters into plain weights
            model = model.merge_and_unload()
        return model
    state = trainer.accelerator.get_state_dict(trainer.model)  # collective: every rank calls
    if not trainer.accelerator.is_main_process:
        return None
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(parent), dtype="float32")
    if config.lora.enabled:
        from peft import get_peft_model

        model = get_peft_model(model, config.lora.peft_config(model))
    model.load_state_dict(state, strict=True)
    return model.merge_and_unload() if config.lora.enabled else model


def run_trainer(
    *,
    regime: str,
    parent: str | Path,
    out_dir: str | Path,
    config: RegimeConfig,
    build_trainer: Any,
    data_fingerprint: str,
    data_summary: dict[str, Any] | None = None,
    tokenizer: Any = None,
    overwrite: bool = False,
    resume: bool = True,
    extra_manifest: dict[str, Any] | None = None,
    probe: tuple[Any, Sequence[str]] | None = None,
) -> Path:
    """Load `parent`, train with the trainer `build_trainer(model, tokenizer, partial_dir)`
    returns, merge LoRA, and save `out_dir` (HF model + manifest) in one rename.

    `probe` = (facts, languages) the regime trains on: with `config.probe_points`, a sample of
    them is scored during training, and the manifest's learning curve holds that accuracy
    beside the logged loss (and reward); see `interp.train.curves`.

    Refuses an existing `out_dir` unless `overwrite`; a missing parent, an unsupported model or
    a tokenizer that does not fit fail before anything is written. Trainer checkpoints land in
    `<out_dir>.partial/` every `config.save_steps`; a rerun with the same plan resumes from the
    last of them (`resume=False` starts over).
    """
    import json
    import time

    import torch

    from interp.io import atomic_write_json
    from interp.models.loading import load_model
    from interp.train.checkpoints import check_output, partial_dir, require_checkpoint
    from interp.train.checkpoints import save_checkpoint as save

    out = check_output(out_dir, overwrite=overwrite)
    parent = require_checkpoint(parent)
    cuda = config.use_cuda()
    dtype = "bfloat16" if cuda and config.lora.enabled else "float32"
    model, tok = load_model(
        parent, device="cuda" if cuda else "cpu", dtype=dtype, tokenizer=tokenizer
    )
    model.train()
    partial = partial_dir(out)
    plan = {
        "regime": regime,
        "parent": str(Path(parent).resolve()),
        "config": config.to_dict(),
        "data_fingerprint": data_fingerprint,
    }
    last = _resume_point(partial, plan, resume)
    trainer = build_trainer(model, tok, partial)
    if trainer.accelerator.is_main_process:
        partial.mkdir(parents=True, exist_ok=True)
        atomic_write_json(partial / RUN_PLAN, json.loads(json.dumps(plan, default=str)))

    from interp.runtime import ThreadGovernor, compute_plan
    from interp.train.curves import accuracy_probe, curve_rows, governor_callback, probe_items

    compute = compute_plan(
        "bfloat16" if trainer.args.bf16 else "float32", config.threads, "cuda" if cuda else "cpu"
    )
    governor = ThreadGovernor(compute.threads, enabled=not cuda and config.threads is None)
    trainer.add_callback(governor_callback(governor))
    accuracy = None
    if probe is not None and config.probe_points:
        facts, languages = probe
        items = probe_items(facts, languages, config.probe_facts, config.seed)
        accuracy = accuracy_probe(items, tok, config.probe_points)
        trainer.add_callback(accuracy)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(compute.threads)
    start = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=last)
    finally:
        torch.set_num_threads(threads_before)
    wall = time.perf_counter() - start

    trained = final_model(trainer, parent, config)
    history = [h for h in trainer.state.log_history if "loss" in h]
    final_loss = float(history[-1]["loss"]) if history else None
    manifest: dict[str, Any] = {
        "kind": regime,
        "regime": regime,
        "parent": parent_summary(parent),
        "data_fingerprint": data_fingerprint,
        "data": data_summary or {},
        "config": config.to_dict(),
        "seed": config.seed,
        "steps": int(trainer.state.global_step),
        "resumed_from": None if last is None else Path(last).name,
        "resumed_from_step": None if last is None else int(Path(last).name.split("-")[-1]),
        "wall_time_s": round(wall, 3),
        "train_loss": float(result.training_loss),
        "final_loss": final_loss,
        "final_train_loss": final_loss,
        "loss_history": [(int(h["step"]), float(h["loss"])) for h in history],
        "learning_curve": curve_rows(
            trainer.state.log_history, accuracy.records if accuracy is not None else ()
        ),
        "compute": {**compute.to_dict(), "thread_changes": governor.history},
        "lora_merged": bool(config.lora.enabled),
        **(extra_manifest or {}),
    }
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        trained.config.use_cache = True
        save(trained, tok, out, manifest, overwrite=overwrite)
    trainer.accelerator.wait_for_everyone()
    return out


# ---- dry run: validate a whole plan without loading weights --------------------------------

# The paper's models, from their published config.json, for planning without the hub.
KNOWN_MODEL_CONFIGS: dict[str, dict[str, Any]] = {
    "Qwen/Qwen2.5-7B": {
        "model_type": "qwen2",
        "architectures": ["Qwen2ForCausalLM"],
        "vocab_size": 152064,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "max_position_embeddings": 131072,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False,
        "hidden_act": "silu",
    },
    "allenai/OLMo-2-1124-7B": {
        "model_type": "olmo2",
        "architectures": ["Olmo2ForCausalLM"],
        "vocab_size": 100352,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "max_position_embeddings": 4096,
        "rope_theta": 500000,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False,
        "hidden_act": "silu",
    },
}


def model_config(model: str | Path) -> tuple[Any, str]:
    """(config, where it came from) for a local dir, a cached hub id, or a known paper model."""
    from transformers import AutoConfig

    path = Path(model)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"{path} holds no config.json. Fix: point at an HF model folder")
        return AutoConfig.from_pretrained(str(path)), "local folder"
    try:
        return AutoConfig.from_pretrained(str(model), local_files_only=True), "hub cache"
    except (OSError, ValueError):
        pass
    known = KNOWN_MODEL_CONFIGS.get(str(model))
    if known is None:
        raise ConfigError(
            f"model {model!r}: no local folder, not in the hub cache, and not one of the known "
            f"models {sorted(KNOWN_MODEL_CONFIGS)}. Fix: download it (or its config.json) first, "
            "or give a local folder"
        )
    values = dict(known)
    config = AutoConfig.for_model(values.pop("model_type"), **values)
    return config, "known shapes (offline)"


def lora_plan(config: Any, lora: LoraSettings) -> dict[str, Any]:
    """Resolve LoRA targets against a weightless (meta) copy of the model; count LoRA params.

    Two layers are built (every decoder layer has the same modules), then scaled to all layers.
    """
    import copy

    import torch
    from transformers import AutoModelForCausalLM

    from interp.models.adapters import adapter_for

    adapter = adapter_for(config)
    targets = lora.targets(config)
    small = copy.deepcopy(config)
    layers_total = config.num_hidden_layers
    small.num_hidden_layers = min(2, layers_total)
    if hasattr(small, "layer_types") and small.layer_types is not None:
        small.layer_types = small.layer_types[: small.num_hidden_layers]
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(small)
    prefix = f"{adapter.layers}.0."
    found: dict[str, int] = {}
    per_layer = 0
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if name.startswith(prefix) and leaf in targets and isinstance(module, torch.nn.Linear):
            found[leaf] = found.get(leaf, 0) + 1
            per_layer += lora.r * (module.in_features + module.out_features)
    missing = [t for t in targets if t not in found]
    if missing:
        raise ConfigError(
            f"LoRA targets {missing} match no linear layer of a {config.model_type} model (its "
            f"layer 0 has {sorted({n.rsplit('.', 1)[-1] for n, _ in model.named_modules()})}). "
            "Fix: leave target_modules unset to use the family's, or name existing modules"
        )
    return {
        "targets": targets,
        "modules": sum(found.values()) * layers_total,
        "trainable_params": per_layer * layers_total,
    }


def read_accelerate_config(path: str | Path) -> dict[str, Any]:
    """Parse an accelerate YAML config with accelerate's own loader; errors name the file."""
    from accelerate.commands.config.config_args import load_config_from_file

    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"accelerate config {path} does not exist. Fix: use one of configs/accelerate/*.yaml "
            "or write one with `accelerate config`"
        )
    try:
        config = load_config_from_file(str(path))
    except Exception as error:  # yaml.YAMLError, ValueError for unknown keys, ...
        raise ConfigError(f"accelerate config {path} does not parse: {error}") from error
    values = config.to_dict()
    kind = values.get("distributed_type")
    return {
        "path": str(path),
        "distributed_type": str(getattr(kind, "value", kind)),
        "num_processes": int(values.get("num_processes") or 1),
        "mixed_precision": str(values.get("mixed_precision")),
        "deepspeed_zero_stage": (values.get("deepspeed_config") or {}).get("zero_stage"),
        "fsdp_version": (values.get("fsdp_config") or {}).get("fsdp_version"),
    }


def dry_run(
    regime: str,
    model: str | Path,
    facts: Any,
    config: RegimeConfig | None = None,
    *,
    accelerate_config: str | Path | None = None,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Validate a training plan without loading weights; return what it would do.

    Checks the regime config, the accelerate config (exists, parses), the data (builds, every
    fact has every language), the model's family and LoRA targets (on a weightless copy) and
    that `out_dir` is free. Raises ConfigError / DataError / ModelError naming the problem.
    """
    from interp.models.adapters import adapter_for, shape
    from interp.train.checkpoints import check_output
    from interp.train.registry import get_regime

    entry = get_regime(regime)
    config_class = entry.config_class()
    if entry.method().data_plan is None:
        raise ConfigError(
            f"regime {regime!r} has no trainer dry run (no data_plan in its registry entry)"
        )
    config = config or config_class.preset("paper")
    if not isinstance(config, config_class):
        raise ConfigError(
            f"a {regime} plan needs a {config_class.__name__}, got {type(config).__name__}"
        )
    report: dict[str, Any] = {"regime": regime, "model": str(model), "config": config.to_dict()}
    processes = 1
    if accelerate_config is not None:
        accel = read_accelerate_config(accelerate_config)
        processes = accel["num_processes"]
        report["accelerate"] = accel
    report["data"], sequences = entry.data_plan_function()(facts, config)
    per_step = config.batch_size * config.gradient_accumulation_steps * processes
    steps_per_epoch = -(-sequences // per_step)
    report["steps"] = (
        config.max_steps if config.max_steps > 0 else int(steps_per_epoch * config.epochs + 0.999)
    )
    report["sequences_per_step"] = per_step
    model_cfg, origin = model_config(model)
    adapter_for(model_cfg)  # an unsupported family fails here
    report["model_config"] = origin
    report["model_shape"] = dataclasses.asdict(shape(model_cfg))
    if config.lora.enabled:
        report["lora"] = lora_plan(model_cfg, config.lora)
    if out_dir is not None:
        check_output(out_dir, overwrite=False)
        report["out_dir"] = str(out_dir)
    return report


def sft_trainer(
    model: Any, tokenizer: Any, args: Any, dataset: Any, config: RegimeConfig, callbacks, label: str
):
    """TRL's SFTTrainer with the regime's LoRA, after checking every token id fits the model
    (CPT and SFT both train through it)."""
    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=config.lora.peft_config(model),
        callbacks=list(callbacks),
    )
    max_id = max(max(ids) for ids in trainer.train_dataset["input_ids"])
    check_token_ids(max_id, model, label)
    return trainer
