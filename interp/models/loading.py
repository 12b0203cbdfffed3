"""Load any supported HF causal LM and its tokenizer, from a local directory or a hub id.

Defaults: CPU in float32, CUDA in bfloat16; both overridable. The model comes back in eval
mode. A tokenizer that can produce ids the model has no embedding for is refused.

Every bad input ends in a `ModelError` that names it, says what is wrong and how to fix it,
before any weights are read where it can be told earlier:

- `check_device` / `resolve_device`: an unknown device string ("gpu", "cuda:x", "tpu"), or one
  this machine does not have ("cuda" without a GPU, "cuda:7" with one GPU, "mps" off Apple);
- `check_checkpoint`: a folder that is not there (a local-looking path never goes to the hub:
  only an `owner/name` id whose owner is not a folder here may be a hub model), a file instead
  of a folder, no or unreadable config.json, a missing or unsupported model_type, no weights, a
  safetensors file that is empty, truncated or has a corrupt header;
- `load_tokenizer`: no tokenizer files, or corrupt ones;
- `load_model`: all of the above, then weights whose shapes do not match config.json or that
  lack tensors the model needs, and a tokenizer larger than the embedding.
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.errors import InterpError, ModelError, located
from interp.models.adapters import ADAPTERS, adapter_for

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}

DEVICE_FIX = (
    "pass --device cpu, cuda or cuda:N (N below the number of visible GPUs), or leave it out "
    "(CUDA when available, else CPU)"
)
# device types a model can be loaded on here (torch parses more: xla, hpu, meta, ...)
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")

CONFIG = "config.json"
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PYTORCH_BIN = "pytorch_model.bin"
PYTORCH_BIN_INDEX = "pytorch_model.bin.index.json"
WEIGHT_FILES = (SAFETENSORS, SAFETENSORS_INDEX, PYTORCH_BIN, PYTORCH_BIN_INDEX)
# any one of these makes a folder a tokenizer folder (vocab.json goes with merges.txt)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)
# JSON files AutoTokenizer reads (config.json too, for the tokenizer class)
TOKENIZER_JSON_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
)
_SAFETENSORS_MAX_HEADER = 100_000_000  # the safetensors format's own limit

# A hub model id is exactly `owner/name`: nothing that starts with . / ~, no second
# separator, no backslash, no file suffix, and `owner` not a folder here. Whatever else does
# not exist here is a missing local folder, never sent to the hub.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".pt", ".pth", ".gguf", ".txt", ".model")


# --------------------------------------------------------------------------------- devices
def check_device(
    device: str | int | torch.device | None = None, *, allow_auto: bool = False
) -> torch.device | str:
    """The torch device `device` names, checked against this machine; "auto" kept as is when
    `allow_auto` (accelerate's device_map="auto"). None: CUDA when available, else CPU.

    ModelError, naming the device string, for a string torch cannot parse ("gpu", "cuda:x",
    "tpu"), a device type models are not loaded on here ("meta", "xla"), and a device this
    machine does not have ("cuda" without a GPU, "cuda:7" with fewer GPUs, "mps" off Apple).
    Cheap: call it before reading anything, and before a cache lookup.
    """
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    text = str(device)
    if allow_auto and text == "auto":
        return "auto"
    source = f"device {text!r}"
    try:
        parsed = device if isinstance(device, torch.device) else torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ModelError(
            located(
                f"unknown device{_device_hint(text)}; a device is cpu, cuda, cuda:N (N = 0, 1, "
                "...), mps or xpu",
                source=source,
                fix=DEVICE_FIX,
            )
        ) from None
    if parsed.type == "cpu":
        return parsed
    if parsed.type not in DEVICE_TYPES:
        raise ModelError(
            located(
                f"models are not loaded on {parsed.type!r} devices here; supported device types: "
                f"{', '.join(DEVICE_TYPES)}",
                source=source,
                fix=DEVICE_FIX,
            )
        )
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            why = (
                "no CUDA GPU is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
                if torch.backends.cuda.is_built()
                else f"this torch ({torch.__version__}) is a CPU-only build"
            )
            raise ModelError(
                located(
                    f"not available on this machine: {why}",
                    source=source,
                    fix="pass --device cpu (or leave --device out), or run on a machine with a "
                    "CUDA GPU and a CUDA build of torch",
                )
            )
        if parsed.index is not None and parsed.index >= count:
            visible = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
            raise ModelError(
                located(
                    f"not available on this machine: it has {count} visible CUDA "
                    f"GPU{'s' if count > 1 else ''} ({visible})",
                    source=source,
                    fix=f"pass --device {visible.split(' ')[0]} or another visible GPU, or cpu",
                )
            )
        return parsed
    backend = getattr(torch, parsed.type, None) if parsed.type == "xpu" else torch.backends.mps
    available = bool(backend is not None and backend.is_available())
    if not available:
        what = (
            "MPS needs a Mac with Apple silicon and macOS 12.3+"
            if parsed.type == "mps"
            else "no Intel GPU (XPU) is visible to this torch"
        )
        raise ModelError(
            located(
                f"not available on this machine: {what}",
                source=source,
                fix="pass --device cpu (or leave --device out), or cuda where a GPU is visible",
            )
        )
    return parsed


_DEVICE_GUESSES = {"gpu": "cuda", "nvidia": "cuda", "cuda0": "cuda:0", "metal": "mps"}


def _device_hint(text: str) -> str:
    lower = text.strip().lower()
    if text == "auto":
        return " ('auto' is only for spreading a model over GPUs when loading it)"
    if lower in _DEVICE_GUESSES or (lower in DEVICE_TYPES and lower != text):
        return f" (did you mean {_DEVICE_GUESSES.get(lower, lower)!r}?)"
    kind, _, index = lower.partition(":")
    if kind in DEVICE_TYPES and index and not index.isdigit():
        return f" (after '{kind}:' comes a device number: {kind}:0, {kind}:1, ...)"
    return ""


def resolve_device(device: str | int | torch.device | None = None) -> torch.device:
    """`device`, checked against this machine (`check_device`), or CUDA when available, else
    CPU."""
    return check_device(device)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """`dtype` (a torch dtype or a name such as "bf16"), or the default for `device`."""
    import torch

    if dtype is None:
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = _DTYPES.get(str(dtype).lower().removeprefix("torch."))
    if name is None:
        raise ModelError(
            located(
                "unknown dtype",
                source=f"dtype {dtype!r}",
                fix=f"use one of {sorted(set(_DTYPES.values()))} (or bf16, fp16, fp32)",
            )
        )
    return getattr(torch, name)


# --------------------------------------------------------------------------------- checkpoints
@dataclass
class CheckpointInfo:
    """What `check_checkpoint` learnt without loading anything."""

    source: str  # what to hand to from_pretrained: the folder (~ expanded) or the hub id
    name: str  # the input as given, for messages
    local: bool
    config: dict[str, Any] = field(default_factory=dict)  # config.json as read (local only)
    # tensor name -> (shape, file) from safetensors headers; None when not known (.bin, hub)
    shapes: dict[str, tuple[tuple[int, ...], str]] | None = None


def may_be_hub_id(source: str | os.PathLike) -> bool:
    """Whether `source`, which does not exist here, may name a hub model: `owner/name`, not a
    local-looking path (./x, ../x, /x, ~/x, a\\b, a/b/c, x, x.safetensors) and `owner` not a
    folder here."""
    text = str(source)
    if not _HUB_ID.fullmatch(text) or text.lower().endswith(_FILE_SUFFIXES):
        return False
    return not Path(text.split("/")[0]).exists()


def _offline() -> bool:
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    if any(os.environ.get(n, "").strip().lower() in ("1", "true", "yes", "on") for n in names):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - transformers depends on it
        return False
    return bool(constants.HF_HUB_OFFLINE)


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, CONFIG), str)
    except Exception:  # noqa: BLE001 - an unusable cache is the same as no cache
        return False


def _missing_folder(name: str, path: Path, *, what: str, extra: str = "") -> ModelError:
    from interp.io import describe_missing

    message = describe_missing(path, what=what)
    return ModelError(
        located(
            message + extra,
            source=name,
            fix="check the path (a typo, or a checkpoint not trained yet: `interp train ...` "
            "and `interp pipeline` write checkpoints/<run>/<name>); a relative path is read "
            f"from the current folder {Path.cwd()}",
        )
    )


def _locate(path_or_id: str | os.PathLike, *, what: str = "checkpoint folder") -> CheckpointInfo:
    """A local folder (~ expanded) or a hub id; ModelError for anything else."""
    name = str(path_or_id)
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        return CheckpointInfo(source=str(path), name=name, local=True)
    if path.exists():
        parent = path.parent if str(path.parent) else Path(".")
        hint = f" ({parent} holds a {CONFIG})" if (parent / CONFIG).is_file() else ""
        raise ModelError(
            located(
                f"this is a file, not a {what}",
                source=name,
                fix=f"pass the folder that holds {CONFIG}, the weights and the tokenizer files"
                f"{hint}",
            )
        )
    if not may_be_hub_id(name):
        raise _missing_folder(name, path, what=what)
    if _offline() and not _in_hub_cache(name):
        raise _missing_folder(
            name,
            path,
            what=what,
            extra=", and no hub model of that name is in the local hub cache (offline: "
            "HF_HUB_OFFLINE is set)",
        )
    return CheckpointInfo(source=name, name=name, local=False)


def _read_json(file: Path, name: str, *, fix: str) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ModelError(
            located(f"not UTF-8 text ({error.reason})", source=name, where=file.name, fix=fix)
        ) from None
    except json.JSONDecodeError as error:
        raise ModelError(
            located(
                f"not valid JSON ({error.msg} at line {error.lineno} column {error.colno})",
                source=name,
                where=file.name,
                fix=fix,
            )
        ) from None


def _no_config_error(folder: Path, name: str) -> ModelError:
    try:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError:
        entries = []
    subfolders = [p.name for p in entries if p.is_dir() and (p / CONFIG).is_file()]
    if not entries:
        detail = "the folder is empty"
    elif (folder / "adapter_config.json").is_file():
        detail = "it holds a LoRA adapter (adapter_config.json), not a whole model"
    elif subfolders:
        detail = (
            f"its subfolders {', '.join(subfolders)} hold one"
            if len(subfolders) > 1
            else f"its subfolder {subfolders[0]} holds one"
        )
    else:
        detail = f"it holds {', '.join(p.name for p in entries[:6])}"
    fix = (
        f"pass {folder / subfolders[0]}"
        if subfolders
        else "merge the adapter into its base model (peft's merge_and_unload) and save that"
        if (folder / "adapter_config.json").is_file()
        else "point at a Hugging Face model folder (config.json, model.safetensors, tokenizer "
        "files), e.g. one written by `interp train` or model.save_pretrained"
    )
    return ModelError(
        located(f"no {CONFIG} here, so this is not a model folder ({detail})", source=name, fix=fix)
    )


_CONFIG_FIX = (
    f"restore {CONFIG} from the model these weights came from (or save the model again with "
    "save_pretrained)"
)


def _check_config(folder: Path, name: str) -> dict[str, Any]:
    file = folder / CONFIG
    if not file.is_file():
        raise _no_config_error(folder, name)
    fix_file = _CONFIG_FIX
    config = _read_json(file, name, fix=fix_file)
    if not isinstance(config, dict):
        raise ModelError(
            located(
                f"holds a JSON {type(config).__name__}, not an object of model settings",
                source=name,
                where=CONFIG,
                fix=fix_file,
            )
        )
    supported = ", ".join(sorted(ADAPTERS))
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise ModelError(
            located(
                "no model_type" if model_type is None else f"model_type {model_type!r} is no name",
                source=name,
                where=CONFIG,
                fix=f'add "model_type": the family the weights were saved as (supported: '
                f"{supported}), or {fix_file}",
            )
        )
    if model_type not in ADAPTERS:
        raise ModelError(
            located(
                f"model family {model_type!r} is not supported; supported: {supported}",
                source=name,
                where=CONFIG,
                fix="use a checkpoint of a supported family, or register a FamilyAdapter for "
                f"{model_type!r} in interp.models.adapters",
            )
        )
    return config


_WEIGHTS_FIX = (
    "the file is damaged (an interrupted download, copy or save?): copy or download the "
    "checkpoint again, or save the model again (model.save_pretrained)"
)


def _safetensors_shapes(file: Path, name: str) -> dict[str, tuple[int, ...]]:
    """Tensor shapes from a safetensors header, after checking the file holds all it promises
    (the same checks safetensors makes on loading, with messages that say what is wrong)."""
    where = file.name
    size = file.stat().st_size
    if size == 0:
        raise ModelError(located("empty (0 bytes)", source=name, where=where, fix=_WEIGHTS_FIX))
    if size < 8:
        raise ModelError(
            located(
                f"truncated: {size} bytes, not even the 8-byte header length",
                source=name,
                where=where,
                fix=_WEIGHTS_FIX,
            )
        )
    with file.open("rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        if header_size > min(size - 8, _SAFETENSORS_MAX_HEADER):
            raise ModelError(
                located(
                    f"not a whole safetensors file: its first 8 bytes announce a "
                    f"{header_size}-byte header, but the file has {size} bytes (truncated, "
                    "or not safetensors at all)",
                    source=name,
                    where=where,
                    fix=_WEIGHTS_FIX,
                )
            )
        raw = handle.read(header_size)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError(f"a JSON {type(header).__name__}, not an object")
        shapes, end = {}, 0
        for key, entry in header.items():
            if key == "__metadata__":
                continue
            begin, stop = entry["data_offsets"]
            shapes[key] = tuple(int(n) for n in entry["shape"])
            if not 0 <= int(begin) <= int(stop):
                raise ValueError(f"tensor {key!r} has data offsets {begin}..{stop}")
            end = max(end, int(stop))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
        raise ModelError(
            located(
                f"corrupt header (not the JSON tensor table safetensors writes: {reason})",
                source=name,
                where=where,
                fix=_WEIGHTS_FIX,
            )
        ) from None
    expected = 8 + header_size + end
    if size < expected:
        raise ModelError(
            located(
                f"truncated: its header lists {len(shapes)} tensors ending at byte {expected}, "
                f"but the file has only {size} bytes ({100 * size / expected:.0f}%)",
                source=name,
                where=where,
                fix=_WEIGHTS_FIX,
            )
        )
    if size > expected:
        raise ModelError(
            located(
                f"{size - expected} bytes follow its last tensor (the header lists "
                f"{expected} bytes): damaged or not written by safetensors",
                source=name,
                where=where,
                fix=_WEIGHTS_FIX,
            )
        )
    return shapes


def _check_weights(folder: Path, name: str) -> dict[str, tuple[tuple[int, ...], str]] | None:
    """Shapes of every tensor in the folder's safetensors weights (None for .bin weights),
    after checking the files are there and whole."""
    if (folder / SAFETENSORS).is_file():
        shards = [SAFETENSORS]
    elif (folder / SAFETENSORS_INDEX).is_file() or (folder / PYTORCH_BIN_INDEX).is_file():
        index_name = (
            SAFETENSORS_INDEX if (folder / SAFETENSORS_INDEX).is_file() else PYTORCH_BIN_INDEX
        )
        index = _read_json(folder / index_name, name, fix=_WEIGHTS_FIX)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ModelError(
                located("has no weight_map", source=name, where=index_name, fix=_WEIGHTS_FIX)
            )
        shards = sorted(set(map(str, weight_map.values())))
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise ModelError(
                located(
                    f"{len(missing)} of its {len(shards)} weight shards are missing "
                    f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})",
                    source=name,
                    where=index_name,
                    fix="copy or download the missing shards into the folder",
                )
            )
        if index_name == PYTORCH_BIN_INDEX:
            return None
    elif (folder / PYTORCH_BIN).is_file():
        if (folder / PYTORCH_BIN).stat().st_size == 0:
            raise ModelError(
                located("empty (0 bytes)", source=name, where=PYTORCH_BIN, fix=_WEIGHTS_FIX)
            )
        return None
    else:
        loose = sorted(p.name for p in folder.glob("*.safetensors")) + sorted(
            p.name for p in folder.glob("*.bin")
        )
        detail = (
            f"; it holds {', '.join(loose[:3])} but no {SAFETENSORS_INDEX} naming them"
            if loose
            else ""
        )
        raise ModelError(
            located(
                f"no weights file (looked for {', '.join(WEIGHT_FILES)}){detail}",
                source=name,
                fix="save the model into this folder (model.save_pretrained(folder)) or copy "
                "its weight files here",
            )
        )
    shapes: dict[str, tuple[tuple[int, ...], str]] = {}
    for shard in shards:
        for key, shape in _safetensors_shapes(folder / shard, name).items():
            shapes[key] = (shape, shard)
    return shapes


def inspect_checkpoint(path_or_id: str | os.PathLike, *, weights: bool = True) -> CheckpointInfo:
    """`check_checkpoint`, returning all it read (config.json, weight shapes)."""
    info = _locate(path_or_id)
    if not info.local:
        return info
    folder = Path(info.source)
    info.config = _check_config(folder, info.name)
    if weights:
        info.shapes = _check_weights(folder, info.name)
    return info


def check_checkpoint(path_or_id: str | os.PathLike, *, weights: bool = True) -> str:
    """What to load `path_or_id` from (the folder with ~ expanded, or the hub id), after the
    checks that need no model: the folder exists (a local-looking path never goes to the hub),
    config.json is readable with a supported model_type, and the weight files are there and
    whole (safetensors headers and sizes). ModelError naming the input and the fix otherwise.

    Cheap (reads config.json and the safetensors headers): call it before a cache lookup."""
    return inspect_checkpoint(path_or_id, weights=weights).source


def _check_weight_shapes(info: CheckpointInfo, config: Any) -> None:
    """ModelError when the safetensors tensors do not fit the model config.json describes
    (other shapes, or tensors the model has that the files lack: loading would leave them
    random). Builds the model on the meta device, so no memory is used."""
    if info.shapes is None or getattr(config, "quantization_config", None):
        return  # .bin weights (shapes unknown without loading) or quantized tensors
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(config)
    except Exception:  # noqa: BLE001 - from_pretrained below says what is wrong
        return
    aliases: dict[str, list[str]] = {}
    by_tensor: dict[int, list[str]] = {}
    for key, param in skeleton.named_parameters(remove_duplicate=False):
        by_tensor.setdefault(id(param), []).append(key)
    for names in by_tensor.values():
        for key in names:
            aliases[key] = names  # tied weights: saved under any one of their names
    expected = {key: tuple(t.shape) for key, t in skeleton.state_dict().items()}
    wrong = [
        (key, info.shapes[key], shape)
        for key, shape in expected.items()
        if key in info.shapes and info.shapes[key][0] != shape
    ]
    if wrong:
        key, (got, file), want = wrong[0]
        more = f" ({len(wrong)} tensors differ)" if len(wrong) > 1 else ""
        raise ModelError(
            located(
                f"the weights do not match {CONFIG}: {key} is {list(got)} in {file} but "
                f"{CONFIG} makes it {list(want)}{more}",
                source=info.name,
                fix=f"use the {CONFIG} saved with these weights (sizes such as hidden_size, "
                "intermediate_size, num_attention_heads, vocab_size must be theirs)",
            )
        )
    missing = sorted(
        key
        for key in expected
        if not any(alias in info.shapes for alias in aliases.get(key, [key]))
    )
    if missing:
        files = sorted({file for _, file in info.shapes.values()}) or [SAFETENSORS]
        raise ModelError(
            located(
                f"the weights lack {len(missing)} of the {len(expected)} tensors a "
                f"{config.model_type} model of this {CONFIG} has ({', '.join(missing[:3])}"
                f"{', ...' if len(missing) > 3 else ''}); loading would leave them random",
                source=info.name,
                where=", ".join(files),
                fix=f"save the whole model again (model.save_pretrained), or use the {CONFIG} "
                "saved with these weights",
            )
        )


# --------------------------------------------------------------------------------- tokenizer
def _first_line(error: BaseException, limit: int = 200) -> str:
    text = (str(error).strip().splitlines() or [""])[0]
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def load_tokenizer(
    path_or_id: str | os.PathLike, *, what: str = "checkpoint folder"
) -> PreTrainedTokenizerBase:
    """The tokenizer at `path_or_id`, with a pad token (eos when it has none).

    ModelError for a folder that is not there, one without tokenizer files (transformers
    would otherwise build an empty tokenizer from config.json alone), or corrupt files."""
    from transformers import AutoTokenizer

    info = _locate(path_or_id, what=what)
    fix_files = (
        "copy the tokenizer files of the model it was trained from into the folder, or save "
        "the tokenizer again (tokenizer.save_pretrained(folder))"
    )
    if info.local:
        folder = Path(info.source)
        if not any((folder / f).is_file() for f in TOKENIZER_FILES) and not any(
            folder.glob("*.tiktoken")
        ):
            raise ModelError(
                located(
                    f"no tokenizer files here (looked for {', '.join(TOKENIZER_FILES)})",
                    source=info.name,
                    fix=fix_files,
                )
            )
        for file in TOKENIZER_JSON_FILES:
            if (folder / file).is_file():
                _read_json(
                    folder / file, info.name, fix=_CONFIG_FIX if file == CONFIG else fix_files
                )
    try:
        tokenizer = AutoTokenizer.from_pretrained(info.source)
    except InterpError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure of a third-party loader
        raise ModelError(
            located(
                f"cannot load the tokenizer ({_first_line(error)})",
                source=info.name,
                fix=fix_files,
            )
        ) from error
    if len(tokenizer) < 2:
        raise ModelError(
            located(
                f"the tokenizer files give a vocabulary of {len(tokenizer)} token(s)",
                source=info.name,
                fix=fix_files,
            )
        )
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _tokenizer_too_large(size: int, rows: int, place: str) -> ModelError:
    return ModelError(
        f"{place}the tokenizer has {size} ids but the model embeds only {rows}; ids "
        f"{rows}..{size - 1} would index past the embedding. Fix: use the tokenizer saved "
        "with this model, or resize the embeddings (model.resize_token_embeddings)."
    )


def check_tokenizer(model: Any, tokenizer: PreTrainedTokenizerBase, source: str = "") -> None:
    """ModelError when the tokenizer has ids the model's embedding does not cover."""
    rows = model.get_input_embeddings().num_embeddings
    size = len(tokenizer)
    if size > rows:
        raise _tokenizer_too_large(size, rows, f"{source}: " if source else "")


# --------------------------------------------------------------------------------- model
def load_model(
    path_or_id: str | os.PathLike,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    attn_implementation: str | None = None,
    tokenizer: str | os.PathLike | PreTrainedTokenizerBase | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model, tokenizer) from a local HF directory or a hub id.

    device: default CUDA when available, else CPU; "auto" spreads the layers over the visible
    GPUs (accelerate's device_map="auto"). dtype: default bfloat16 on CUDA, float32 on CPU.
    attn_implementation: e.g. "eager" (what TransformerLens uses) or "sdpa".
    tokenizer: another tokenizer (directory, id or object) than the one saved with the model.
    Raises ModelError, before any weights are read where it can, for a bad device or dtype,
    a checkpoint `check_checkpoint` refuses, an unsupported family, weights that do not fit
    config.json, and a tokenizer that does not fit the model.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    target = check_device(device, allow_auto=True)
    spread = target == "auto"
    torch_dtype = resolve_dtype(dtype, check_device(None) if spread else target)
    info = inspect_checkpoint(path_or_id)
    source, name = info.source, info.name
    try:
        config = AutoConfig.from_pretrained(source)
    except InterpError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure of a third-party loader
        if info.local:
            raise ModelError(
                located(
                    f"{CONFIG} cannot be read as a {info.config.get('model_type')} config "
                    f"({_first_line(error)})",
                    source=name,
                    fix=f"restore {CONFIG} from the model these weights came from",
                )
            ) from error
        raise ModelError(
            located(
                f"no such checkpoint folder (looked for {Path(name).absolute()}), and the hub "
                f"gave no model of that name ({type(error).__name__})",
                source=name,
                fix="check the path or the hub id (owner/name), and that you are online and "
                "logged in for gated models",
            )
        ) from error
    adapter_for(config)  # unsupported family -> ModelError before loading any weights
    if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = (
            load_tokenizer(source)
            if tokenizer is None
            else load_tokenizer(tokenizer, what="tokenizer folder")
        )
    rows = getattr(config.get_text_config(), "vocab_size", None)
    if isinstance(rows, int) and len(tokenizer) > rows:
        raise _tokenizer_too_large(len(tokenizer), rows, f"{name}: ")
    _check_weight_shapes(info, config)
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if spread:
        kwargs["device_map"] = "auto"
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except InterpError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure of a third-party loader
        raise ModelError(
            located(
                f"cannot load the model weights ({_first_line(error)})",
                source=name,
                fix="check that the weight files are whole and were saved with this "
                f"{CONFIG} (copy or save the checkpoint again)",
            )
        ) from error
    if not spread:
        model.to(target)
    model.eval()
    check_tokenizer(model, tokenizer, name)
    return model, tokenizer
