"""Every bad checkpoint and bad device ends in one clear CLI error, and nothing is left behind.

One table of cases, each: a name, a function that makes the bad input under tmp_path from a
valid tiny checkpoint (built once per module, copied per case), the `interp` argv, and the
words the message must hold. Each case runs `interp.cli.main` and checks: exit code 1, stderr
starting with "interp: error:", naming the input (the path or the device string), saying
"Fix:", no traceback, no model weights loaded, and no file written or changed under tmp_path
(no --out folder, no cache, no *.tmp). Offline: nothing here reaches the hub.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from interp.cli import main
from interp.errors import ModelError
from interp.facts import WorldConfig, build_world, write_polyfact

pytestmark = pytest.mark.filterwarnings("ignore:.*few tokens for:UserWarning")

EVAL = ["eval", "{ckpt}", "--facts", "{facts}", "--n-boot", "0", "--out", "{out}"]
_ANALYSIS = ["--facts", "{facts}", "--seq-len", "16", "--token-budget", "64"]
_ANALYSIS += ["--n-boot", "0", "--n-perm", "0", "--lahis-samples", "0", "--out", "{out}"]
SCORE = ["score", "{ckpt}", *_ANALYSIS, "--no-ablation"]
ABLATE = ["ablate", "{ckpt}", *_ANALYSIS]


def on(device: str, argv: list[str]) -> list[str]:
    return [*argv, "--device", device]


def cpu(argv: list[str]) -> list[str]:
    return on("cpu", argv)


# --------------------------------------------------------------------------------- fixtures
@dataclass
class Base:
    root: Path  # build_tiny's folder: tokenizer/ and qwen2/
    model: Path  # the valid tiny checkpoint
    facts: Path


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Base:
    from interp.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("bad_input_models")
    facts, _ = build_world(WorldConfig(languages=("en", "de"), relations=("continent",)))
    write_polyfact(facts, root / "facts")
    texts = [i.statement for i in facts.items()] + [i.question for i in facts.items()]
    sizes = dict(hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2, num_kv_heads=1)
    model = build_tiny(root / "tiny", "qwen2", texts=texts, vocab_size=300, **sizes)
    return Base(root=root / "tiny", model=model, facts=root / "facts")


@dataclass
class Case:
    """What a prep function gets: where to work and how to copy the valid checkpoint."""

    tmp: Path
    base: Base
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture
    argv: list[str]

    def copy(self, name: str = "ckpt") -> Path:
        return Path(shutil.copytree(self.base.model, self.tmp / name))

    def format(self, ckpt: str, argv: list[str] | None = None) -> list[str]:
        values = {
            "ckpt": ckpt,
            "facts": str(self.base.facts),
            "out": str(self.tmp / "out"),
            "tmp": str(self.tmp),
        }
        return [a.format(**values) for a in (self.argv if argv is None else argv)]

    def warm_cache(self, ckpt: str) -> None:
        """Run the case's command once on CPU, so the failing run finds its results cached."""
        argv = self.format(ckpt)
        argv[argv.index("--device") + 1] = "cpu"
        assert main(argv) == 0, self.capsys.readouterr().err
        self.capsys.readouterr()


# --------------------------------------------------------------------------------- bad inputs
def _config(case: Case, change) -> str:
    ckpt = case.copy()
    config = json.loads((ckpt / "config.json").read_text())
    change(config)
    (ckpt / "config.json").write_text(json.dumps(config))
    return str(ckpt)


def _write(name: str, content: str | bytes):
    def prep(case: Case) -> str:
        ckpt = case.copy()
        file = ckpt / name
        file.write_bytes(content) if isinstance(content, bytes) else file.write_text(content)
        return str(ckpt)

    return prep


def _remove(*names: str):
    def prep(case: Case) -> str:
        ckpt = case.copy()
        for name in names:
            (ckpt / name).unlink()
        return str(ckpt)

    return prep


def missing_dot_relative(case: Case) -> str:
    case.monkeypatch.chdir(case.tmp)
    return "./no-such/ckpt"


def missing_dotdot(case: Case) -> str:
    (case.tmp / "work").mkdir()
    case.monkeypatch.chdir(case.tmp / "work")
    return "../no-such-ckpt"


def missing_absolute(case: Case) -> str:
    case.copy()  # a checkpoint is beside it, under another name
    return str(case.tmp / "ckpt-typo")


def missing_home(case: Case) -> str:
    case.monkeypatch.setenv("HOME", str(case.tmp / "home"))
    return "~/no-such-ckpt"


def missing_owner_name(case: Case) -> str:
    # `owner/name` could be a hub id; offline and not cached, it is a missing folder too
    case.monkeypatch.chdir(case.tmp)
    return "no-such-owner/ckpt"


def missing_nested_relative(case: Case) -> str:
    case.monkeypatch.chdir(case.tmp)
    return "runs/default/base"


def file_not_folder(case: Case) -> str:
    return str(case.copy() / "model.safetensors")


def model_root_not_model_folder(case: Case) -> str:
    # build_tiny's output folder: the model is in its qwen2/ subfolder
    return str(shutil.copytree(case.base.root, case.tmp / "tiny"))


def unsupported_family(case: Case) -> str:
    from transformers import GPT2Config

    ckpt = case.copy()
    (ckpt / "config.json").unlink()
    GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(ckpt)
    return str(ckpt)


def weights_empty(case: Case) -> str:
    ckpt = case.copy()
    (ckpt / "model.safetensors").write_bytes(b"")
    return str(ckpt)


def weights_truncated(case: Case) -> str:
    ckpt = case.copy()
    data = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(data[: len(data) // 2])
    return str(ckpt)


def weights_corrupt_header(case: Case) -> str:
    ckpt = case.copy()
    data = bytearray((ckpt / "model.safetensors").read_bytes())
    data[8:40] = b"#" * 32  # the JSON header starts at byte 8
    (ckpt / "model.safetensors").write_bytes(bytes(data))
    return str(ckpt)


def weights_shape_mismatch(case: Case) -> str:
    return _config(case, lambda c: c.update(intermediate_size=96))


def weights_missing_tensor(case: Case) -> str:
    from safetensors.torch import load_file, save_file

    ckpt = case.copy()
    tensors = load_file(ckpt / "model.safetensors")
    del tensors["lm_head.weight"]
    save_file(tensors, ckpt / "model.safetensors", metadata={"format": "pt"})
    return str(ckpt)


def weights_shard_missing(case: Case) -> str:
    ckpt = case.copy()
    from safetensors import safe_open

    with safe_open(ckpt / "model.safetensors", "pt") as f:
        keys = list(f.keys())
    first, second = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    (ckpt / "model.safetensors").rename(ckpt / first)
    weight_map = {k: first if i else second for i, k in enumerate(keys)}
    (ckpt / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return str(ckpt)


def tokenizer_larger_than_embedding(case: Case) -> str:
    from transformers import AutoTokenizer

    ckpt = case.copy()
    tokenizer = AutoTokenizer.from_pretrained(ckpt)
    tokenizer.add_tokens([f"<extra_{i}>" for i in range(8)])
    tokenizer.save_pretrained(ckpt)
    return str(ckpt)


def valid(case: Case) -> str:
    return str(case.copy())


def cached(case: Case) -> str:
    ckpt = str(case.copy())
    case.warm_cache(ckpt)
    return ckpt


def second_missing(case: Case) -> str:
    case.copy()  # the first checkpoint, {tmp}/ckpt, is fine
    return str(case.tmp / "no-such-second")


_NO_CUDA = "not available on this machine"
_cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
_needs_few_gpus = pytest.mark.skipif(_cuda_count > 7, reason="this machine has a cuda:7")
_needs_no_cuda = pytest.mark.skipif(_cuda_count > 0, reason="CUDA is available here")
_needs_no_mps = pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS is available")
CASES = [
    # ---- checkpoint folders that are not there: never sent to the hub
    ("missing ./x", missing_dot_relative, cpu(EVAL), ["no such checkpoint folder"]),
    ("missing ../x", missing_dotdot, cpu(EVAL), ["no such checkpoint folder"]),
    ("missing /abs", missing_absolute, cpu(EVAL), ["no such checkpoint folder", "beside it: ckpt"]),
    ("missing ~/x", missing_home, cpu(EVAL), ["no such checkpoint folder", "home/no-such-ckpt"]),
    ("missing owner/name", missing_owner_name, cpu(EVAL), ["no such checkpoint folder", "cache"]),
    ("missing a/b/c score", missing_nested_relative, cpu(SCORE), ["no such checkpoint folder"]),
    ("missing /abs ablate", missing_absolute, cpu(ABLATE), ["no such checkpoint folder"]),
    ("a file", file_not_folder, cpu(EVAL), ["a file, not a checkpoint folder"]),
    pytest.param(
        "second of two missing",
        second_missing,
        cpu(["eval", "{tmp}/ckpt", *EVAL[1:]]),
        ["no such checkpoint folder"],
    ),
    # ---- config.json
    ("no config.json", _remove("config.json"), cpu(EVAL), ["no config.json"]),
    ("model root", model_root_not_model_folder, cpu(EVAL), ["no config.json", "qwen2"]),
    (
        "config not JSON",
        _write("config.json", "{oops"),
        cpu(EVAL),
        ["config.json", "not valid JSON"],
    ),
    (
        "config not JSON score",
        _write("config.json", "{"),
        cpu(SCORE),
        ["config.json", "not valid JSON"],
    ),
    ("config a list", _write("config.json", "[1, 2]"), cpu(EVAL), ["config.json", "not an object"]),
    (
        "no model_type",
        lambda case: _config(case, lambda c: c.pop("model_type")),
        cpu(EVAL),
        ["config.json", "no model_type", "qwen2"],
    ),
    (
        "unknown model_type",
        lambda case: _config(case, lambda c: c.update(model_type="blargh")),
        cpu(EVAL),
        ["'blargh'", "not supported", "qwen2"],
    ),
    (
        "unsupported family",
        unsupported_family,
        cpu(EVAL),
        ["'gpt2'", "not supported", "llama, mistral, olmo2, qwen2, qwen3"],
    ),
    ("unsupported family score", unsupported_family, cpu(SCORE), ["'gpt2'", "not supported"]),
    # ---- weights
    ("weights empty", weights_empty, cpu(EVAL), ["model.safetensors", "empty (0 bytes)"]),
    ("weights truncated", weights_truncated, cpu(EVAL), ["model.safetensors", "truncated"]),
    ("weights truncated score", weights_truncated, cpu(SCORE), ["model.safetensors", "truncated"]),
    (
        "weights bad header",
        weights_corrupt_header,
        cpu(EVAL),
        ["model.safetensors", "corrupt header"],
    ),
    (
        "weights other shapes",
        weights_shape_mismatch,
        cpu(EVAL),
        ["do not match config.json", "gate_proj", "[64, 32]", "[96, 32]"],
    ),
    (
        "weights other shapes ablate",
        weights_shape_mismatch,
        cpu(ABLATE),
        ["do not match config.json"],
    ),
    ("weights lack a tensor", weights_missing_tensor, cpu(EVAL), ["lack 1 of", "lm_head.weight"]),
    ("no weights", _remove("model.safetensors"), cpu(EVAL), ["no weights file"]),
    ("shard missing", weights_shard_missing, cpu(EVAL), ["index.json", "shards are missing"]),
    # ---- tokenizer
    (
        "no tokenizer",
        _remove("tokenizer.json", "tokenizer_config.json"),
        cpu(EVAL),
        ["no tokenizer files"],
    ),
    (
        "no tokenizer score",
        _remove("tokenizer.json", "tokenizer_config.json"),
        cpu(SCORE),
        ["no tokenizer files"],
    ),
    (
        "tokenizer corrupt",
        _write("tokenizer.json", "{bad"),
        cpu(EVAL),
        ["tokenizer.json", "not valid JSON"],
    ),
    ("tokenizer corrupt score", _write("tokenizer.json", "{bad"), cpu(SCORE), ["tokenizer.json"]),
    (
        "tokenizer too large",
        tokenizer_larger_than_embedding,
        cpu(EVAL),
        ["tokenizer has 308 ids", "embeds only 300"],
    ),
    (
        "tokenizer too large score",
        tokenizer_larger_than_embedding,
        cpu(SCORE),
        ["embeds only 300"],
    ),
    # ---- devices: refused before any model is loaded or anything written
    ("device gpu", valid, on("gpu", EVAL), ["unknown device", "did you mean 'cuda'"]),
    ("device cuda:x", valid, on("cuda:x", EVAL), ["unknown device", "cuda:0"]),
    ("device tpu", valid, on("tpu", EVAL), ["unknown device"]),
    ("device CPU", valid, on("CPU", EVAL), ["unknown device", "did you mean 'cpu'"]),
    ("device meta", valid, on("meta", EVAL), ["not loaded on 'meta' devices"]),
    pytest.param("device cuda:7", valid, on("cuda:7", EVAL), [_NO_CUDA], marks=_needs_few_gpus),
    pytest.param("device cuda", valid, on("cuda", EVAL), [_NO_CUDA], marks=_needs_no_cuda),
    pytest.param("device mps", valid, on("mps", EVAL), [_NO_CUDA], marks=_needs_no_mps),
    ("device gpu score", valid, on("gpu", SCORE), ["unknown device"]),
    ("device tpu ablate", valid, on("tpu", ABLATE), ["unknown device"]),
    pytest.param(
        "device cuda:7 score", valid, on("cuda:7", SCORE), [_NO_CUDA], marks=_needs_few_gpus
    ),
    # ... and also when the results are cached
    ("cached eval, device gpu", cached, on("gpu", EVAL), ["unknown device"]),
    pytest.param(
        "cached eval, device cuda:7", cached, on("cuda:7", EVAL), [_NO_CUDA], marks=_needs_few_gpus
    ),
    pytest.param(
        "cached score, device tpu",
        cached,
        on("tpu", SCORE),
        ["unknown device"],
    ),
]


PARAMS = [
    pytest.param(*c.values, marks=c.marks, id=c.values[0])
    if hasattr(c, "values")
    else pytest.param(*c, id=c[0])
    for c in CASES
]


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize(("name", "prep", "argv", "words"), PARAMS)
def test_bad_checkpoint_or_device(name, prep, argv, words, base, tmp_path, monkeypatch, capsys):
    from transformers import AutoModelForCausalLM

    case = Case(tmp_path, base, monkeypatch, capsys, argv)
    ckpt = prep(case)
    argv = case.format(ckpt)
    device = argv[argv.index("--device") + 1]
    out = tmp_path / "out"
    out_before = out.exists()
    before = _files(tmp_path)
    loaded = []
    original = AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(
        AutoModelForCausalLM,
        "from_pretrained",
        lambda *a, **k: loaded.append(a) or original(*a, **k),
    )
    capsys.readouterr()

    code = main(argv)

    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith("interp: error:"), err
    if device != "cpu":
        assert f"'{device}'" in err, err  # names the device string
    else:
        assert ckpt in err or str(Path(ckpt)) in err, err  # names the checkpoint as given
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"
    assert "Fix:" in err, err
    assert "Traceback" not in err and "internal error" not in err, err
    for hub_text in ("Repo id must", "huggingface.co", "repo_type"):
        assert hub_text not in err, err
    assert err.count("\n") == 1, err  # one line
    assert not loaded, f"model weights were loaded before the error: {loaded}"
    assert out.exists() == out_before, "the --out folder was created"
    assert _files(tmp_path) == before, "files were written or changed"
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith((".tmp", ".partial"))]


def test_table_is_large_enough():
    assert len(PARAMS) >= 20
    names = [p.id for p in PARAMS]
    assert len(set(names)) == len(names)


# --------------------------------------------------------------------------------- library
def test_devices_and_dtypes_directly():
    from interp.models.loading import check_device, resolve_device, resolve_dtype

    assert resolve_device("cpu") == torch.device("cpu")
    assert check_device("auto", allow_auto=True) == "auto"
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    assert resolve_dtype("torch.float16", torch.device("cpu")) == torch.float16
    for bad in ("gpu", "cuda:x", "tpu", "auto", "xla"):
        with pytest.raises(ModelError, match=f"device '{bad}'.*Fix:"):
            resolve_device(bad)
    with pytest.raises(ModelError, match=r"dtype 'fp8': unknown dtype.*Fix: use one of"):
        resolve_dtype("fp8", torch.device("cpu"))


def test_load_model_refuses_bad_device_and_dtype_before_reading(tmp_path):
    from interp.models.loading import load_model

    # the checkpoint is not even there: the device and dtype are refused first
    with pytest.raises(ModelError, match="device 'tpu'"):
        load_model(tmp_path / "missing", device="tpu")
    with pytest.raises(ModelError, match="dtype 'int3'"):
        load_model(tmp_path / "missing", device="cpu", dtype="int3")


def test_evaluate_checkpoint_checks_device_on_a_cache_hit(base, tmp_path):
    from interp.evaluate.run import evaluate_checkpoint
    from interp.facts import read_polyfact

    ckpt = shutil.copytree(base.model, tmp_path / "ckpt")
    facts = read_polyfact(base.facts)
    first = evaluate_checkpoint(ckpt, facts, n_boot=0, device="cpu", progress=False)
    assert not first.from_cache
    assert evaluate_checkpoint(ckpt, facts, n_boot=0, device="cpu", progress=False).from_cache
    with pytest.raises(ModelError, match="device 'cuda:x'"):
        evaluate_checkpoint(ckpt, facts, n_boot=0, device="cuda:x", progress=False)


def test_valid_variants_still_load(base, tmp_path):
    """A sharded checkpoint with an index, a hand-renamed shard, and ~ paths load fine."""
    from safetensors import safe_open

    from interp.models.loading import check_checkpoint, load_model

    ckpt = Path(shutil.copytree(base.model, tmp_path / "home" / "ckpt"))
    with safe_open(ckpt / "model.safetensors", "pt") as f:
        keys = list(f.keys())
    shard = "model-00001-of-00001.safetensors"
    (ckpt / "model.safetensors").rename(ckpt / shard)
    (ckpt / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": dict.fromkeys(keys, shard)})
    )
    model, tokenizer = load_model(ckpt, device="cpu")
    assert model.config.model_type == "qwen2" and len(tokenizer) == 300
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path / "home"))
        assert check_checkpoint("~/ckpt") == str(ckpt)
