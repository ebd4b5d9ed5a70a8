"""Sharded checkpoints and `mf ckpt transform`: whole <-> sharded <-> sharded is exact (bytes),
LoRA checkpoints too, MindSpore's strategy files as a source, resume onto another layout,
strategy files without training, a staged save by ranks, and bad input as one line with
nothing written (no MindSpore: checkpoints made of numpy arrays with a real model config)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mf_parallel import ParallelConfig, read_strategy
from mf_tui import cli
from safetensors.numpy import load_file, save_file

from mf_train.checkpoint import list_checkpoints
from mf_train.lora import LORA_A_NAME, LORA_B_NAME
from mf_train.sharded import (
    STRATEGY_FILE,
    CheckpointTensors,
    finalize_sharded,
    merge_checkpoint,
    rank_dir,
    read_checkpoint_tensors,
    save_strategy_only,
    shard_checkpoint,
    staging_dir,
    strategy_for_layout,
    transform_checkpoint,
    transform_for_resume,
    write_rank_shard,
)


def llama_debug_config():
    from mf_models.configs.llama import LlamaConfig

    return LlamaConfig.from_name("llama_debug")


def llama_params(config) -> list[tuple[str, tuple[int, ...]]]:
    """LLaMA's parameters in model order (mf_models/models/llama.py)."""
    h, kv = config.hidden_size, config.n_kv_heads * (config.hidden_size // config.num_heads)
    ffn, vocab = config.intermediate_size, config.vocab_size
    params = [("model.tok_embeddings.embedding_weight", (vocab, h))]
    for i in range(config.num_layers):
        prefix = f"model.layers.{i}."
        params += [(prefix + "attention.wq.weight", (h, h)), (prefix + "attention.wk.weight",
                   (kv, h)), (prefix + "attention.wv.weight", (kv, h)),
                   (prefix + "attention.wo.weight", (h, h)),
                   (prefix + "feed_forward.w1.weight", (ffn, h)),
                   (prefix + "feed_forward.w2.weight", (h, ffn)),
                   (prefix + "feed_forward.w3.weight", (ffn, h)),
                   (prefix + "attention_norm.weight", (h,)), (prefix + "ffn_norm.weight", (h,))]
    return params + [("model.norm_out.weight", (h,)), ("lm_head.weight", (vocab, h))]


def write_checkpoint(path: Path, params, config=None, seed: int = 0) -> Path:
    """A whole checkpoint: random weights, AdamW moments, a step counter, trainer state."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    weights = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in params}
    optimizer = {f"adam_{k}.{name}": rng.standard_normal(np.shape(a)).astype(np.float32)
                 for name, a in weights.items() for k in "mv"}
    optimizer["global_step"] = np.array([12], np.int32)
    save_file(weights, str(path / "model.safetensors"))
    save_file(optimizer, str(path / "optimizer.safetensors"))
    (path / "trainer_state.json").write_text(json.dumps({"step": 12, "epoch": 0,
                                                         "data_position": {}}))
    if config is not None:
        config.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    config = llama_debug_config()
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint-12",
                            llama_params(config), config)


def same_files(a: Path, b: Path, name: str) -> None:
    left, right = load_file(str(a / name)), load_file(str(b / name))
    assert left.keys() == right.keys()
    for key in left:
        assert left[key].dtype == right[key].dtype and left[key].tobytes() == right[key].tobytes()


def test_split_then_merge_gives_back_the_checkpoint_byte_for_byte(whole, tmp_path):
    sharded = transform_checkpoint(whole, tmp_path / "sharded", dst_layout="dp=2,mp=2,pp=2")
    merged = transform_checkpoint(sharded, tmp_path / "merged", dst_layout="dp=1,mp=1,pp=1")

    same_files(whole, merged, "model.safetensors")
    same_files(whole, merged, "optimizer.safetensors")
    for name in ("config.json", "trainer_state.json"):  # still a model dir and a checkpoint
        assert (merged / name).read_text() == (whole / name).read_text()
    assert not (merged / STRATEGY_FILE).exists()
    strategy = read_strategy(sharded / STRATEGY_FILE)
    assert strategy.config.device_num == 8
    assert sorted(p.name for p in sharded.iterdir() if p.is_dir()) == [f"rank_{r}"
                                                                        for r in range(8)]
    rank0, rank7 = (load_file(str(rank_dir(sharded, r) / "model.safetensors")) for r in (0, 7))
    # embedding and layer 0 on stage 0 (ranks 0-3), layer 1, final norm, head on stage 1
    assert "model.tok_embeddings.embedding_weight" in rank0 and "lm_head.weight" not in rank0
    assert "lm_head.weight" in rank7 and "model.layers.0.attention.wq.weight" not in rank7
    assert rank0["model.layers.0.attention.wq.weight"].shape == (32, 64)  # rows over mp=2
    assert rank7["model.layers.1.attention.wo.weight"].shape == (64, 32)  # columns over mp=2
    moments = load_file(str(rank_dir(sharded, 0) / "optimizer.safetensors"))
    assert moments["adam_m.model.layers.0.attention.wq.weight"].shape == (32, 64)
    assert moments["global_step"].tolist() == [12]  # the step counter is on every rank


def test_a_to_b_to_a_between_sharded_layouts_is_byte_for_byte(whole, tmp_path):
    a = transform_checkpoint(whole, tmp_path / "a", dst_layout="dp=1,mp=2,pp=2")
    b = transform_checkpoint(a, tmp_path / "b", dst_layout="dp=2,mp=1,pp=1,optimizer_shard=true")
    back = transform_checkpoint(b, tmp_path / "back", dst_strategy=a / STRATEGY_FILE)

    for rank in range(4):
        for name in ("model.safetensors", "optimizer.safetensors"):
            same_files(rank_dir(a, rank), rank_dir(back, rank), name)
    # optimizer sharding: each dp rank holds half of every moment whose dim 0 divides
    moments = load_file(str(rank_dir(b, 1) / "optimizer.safetensors"))
    assert moments["adam_v.lm_head.weight"].shape == (512, 64)
    weights = load_file(str(rank_dir(b, 1) / "model.safetensors"))
    assert weights["lm_head.weight"].shape == (1024, 64)
    merged = transform_checkpoint(b, tmp_path / "merged", dst_layout="dp=1,mp=1,pp=1")
    same_files(whole, merged, "optimizer.safetensors")


def lora_params(config) -> list[tuple[str, tuple[int, ...]]]:
    rank, h = 4, config.hidden_size
    out = []
    for i in range(config.num_layers):
        for proj in ("wq", "wo"):
            stem = f"model.layers.{i}.attention.{proj}."
            out += [(stem + LORA_A_NAME, (rank, h)), (stem + LORA_B_NAME, (h, rank))]
    return out


def test_lora_checkpoints_split_by_their_base_layers_and_merge_back(tmp_path, capsys):
    lora = write_checkpoint(tmp_path / "lora", lora_params(llama_debug_config()))
    code = cli.main(["ckpt", "transform", str(lora), str(tmp_path / "nope"),
                     "--dst-layout", "dp=1,mp=2,pp=1"])
    err = capsys.readouterr().err
    assert code == 2 and "has no config.json (a LoRA checkpoint?): name its model with" in err
    assert not (tmp_path / "nope").exists()

    sharded = transform_checkpoint(lora, tmp_path / "sharded", dst_layout="dp=1,mp=2,pp=2",
                                   model="llama_debug")
    shards = load_file(str(rank_dir(sharded, 1) / "model.safetensors"))
    wq = "model.layers.0.attention.wq."
    wo = "model.layers.0.attention.wo."
    assert shards[wq + LORA_A_NAME].shape == (4, 64)   # column-parallel wq: A whole,
    assert shards[wq + LORA_B_NAME].shape == (32, 4)   # B's rows split
    assert shards[wo + LORA_A_NAME].shape == (4, 32)   # row-parallel wo: A's columns split,
    assert shards[wo + LORA_B_NAME].shape == (64, 4)   # B whole
    assert "model.layers.1.attention.wq." + LORA_A_NAME not in shards  # layer 1: stage 1
    merged = transform_checkpoint(sharded, tmp_path / "merged", dst_layout="dp=1,mp=1,pp=1")
    same_files(lora, merged, "model.safetensors")
    same_files(lora, merged, "optimizer.safetensors")


def test_a_mindformers_sharded_checkpoint_merges_with_mindsporess_strategy(whole, tmp_path):
    # MindFormers' form: rank_<i>/<name>.safetensors and MindSpore's strategy file (its JSON
    # twin here; the protobuf form is read by the same code, see mf-parallel's tests)
    params = dict(load_file(str(whole / "model.safetensors")))
    layout = {name: {"dev_matrix": [1, 2], "tensor_map": [0, -1] if "wq" in name else
                     [-1] * a.ndim} for name, a in params.items()}
    source = tmp_path / "mindformers"
    for rank in range(2):
        rank_dir(source, rank).mkdir(parents=True)
        shards = {name: (np.split(a, 2)[rank] if "wq" in name else a)
                  for name, a in params.items()}
        save_file(shards, str(rank_dir(source, rank) / f"llama_rank_{rank}-12_1.safetensors"))
    strategy = tmp_path / "ckpt_strategy.json"
    strategy.write_text(json.dumps({"parallel_strategy_item": {"op": {"stage": 0}},
                                    "parallel_layout_item": layout}))
    merged = transform_checkpoint(source, tmp_path / "merged", dst_layout="dp=1,mp=1,pp=1",
                                  src_strategy=strategy, src_layout="dp=1,mp=2,pp=1")
    same_files(whole, merged, "model.safetensors")


def test_a_resume_onto_another_layout_reshards_once(whole, tmp_path):
    config = llama_debug_config()
    parallel = ParallelConfig(model_parallel=2, pipeline_stage=2, micro_batch_num=2).resolve(4)
    path = save_strategy_only(config, llama_params(config), parallel, tmp_path / "strategy")
    strategy = read_strategy(path)
    assert {strategy.params["model.norm_out.weight"].stage,
            strategy.params["model.layers.0.ffn_norm.weight"].stage} == {1, 0}

    checkpoints = tmp_path / "checkpoints"
    src = checkpoints / "checkpoint-12"
    transform_checkpoint(whole, src, dst_layout="dp=1,mp=1,pp=1")
    moved = transform_for_resume(src, path)
    assert moved == checkpoints / "checkpoint-12.dp1-mp2-pp2"
    assert read_checkpoint_tensors(moved).strategy == strategy
    assert transform_for_resume(src, strategy) == moved  # made once, then reused
    assert transform_for_resume(moved, strategy) == moved  # already in that layout
    assert list_checkpoints(checkpoints) == [src]  # not mistaken for another checkpoint


def test_ranks_write_a_sharded_save_that_appears_whole(whole, tmp_path):
    reference = transform_checkpoint(whole, tmp_path / "reference", dst_layout="dp=2,mp=2,pp=1")
    strategy = read_strategy(reference / STRATEGY_FILE)
    checkpoints = tmp_path / "checkpoints"
    staging = staging_dir(checkpoints, 12)
    for rank in range(4):  # each rank writes its own folder
        write_rank_shard(staging, rank,
                         load_file(str(rank_dir(reference, rank) / "model.safetensors")),
                         load_file(str(rank_dir(reference, rank) / "optimizer.safetensors")))
        assert list_checkpoints(checkpoints) == []
    final = finalize_sharded(staging, checkpoints / "checkpoint-12", strategy,
                             (whole / "trainer_state.json").read_text())
    assert list_checkpoints(checkpoints) == [final] and not staging.exists()
    merged = transform_checkpoint(final, tmp_path / "merged", dst_layout="dp=1,mp=1,pp=1")
    same_files(whole, merged, "model.safetensors")


# ---- bad input ----------------------------------------------------------------------------------

def run(capsys, *argv) -> tuple[int, str]:
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err.strip()


def test_a_strategy_of_another_model_is_refused(whole, tmp_path, capsys):
    other = llama_debug_config()
    other.hidden_size, other.num_heads = 32, 2
    parallel = ParallelConfig(model_parallel=2).resolve(2)
    path = save_strategy_only(other, llama_params(other), parallel, tmp_path)
    code, err = run(capsys, "ckpt", "transform", whole, tmp_path / "out", "--dst-strategy", path)
    assert code == 2 and len(err.splitlines()) == 1
    assert "has shape (1024, 64), the strategy says (1024, 32)" in err
    assert not (tmp_path / "out").exists()


def test_a_missing_rank_folder_is_named(whole, tmp_path, capsys):
    import shutil

    sharded = transform_checkpoint(whole, tmp_path / "sharded", dst_layout="dp=2,mp=2,pp=1")
    shutil.rmtree(rank_dir(sharded, 3))
    code, err = run(capsys, "ckpt", "transform", sharded, tmp_path / "out", "--dst-layout",
                    "dp=1,mp=1,pp=1")
    assert code == 2
    assert err == (f"mf: error: {sharded} is missing rank_3/ (its strategy has 4 ranks: 2 dp x 2 "
                   "mp x 1 pp)")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["--dst-layout", "dp=1,mp=3,pp=1"], "dim 0 of size 1024 (shape (1024, 64)) is split over "
                                         "mp(3): 1024 % 3 = 1"),
    (["--dst-layout", "dp=1,mp=1,pp=3"], "at least"),
    (["--dst-layout", "dp=two"], "layout 'dp=two': dp='two' must be an integer >= 1"),
    (["--dst-layout", "tp=2"], "is not KEY=VALUE with KEY one of dp, mp, pp, optimizer_shard"),
    ([], "give exactly one of --dst-strategy FILE and --dst-layout dp=D,mp=M,pp=P"),
])
def test_impossible_layouts_are_one_line_and_write_nothing(whole, tmp_path, capsys, args,
                                                           expected):
    code, err = run(capsys, "ckpt", "transform", whole, tmp_path / "out", *args)
    assert code == 2 and len(err.splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "out").exists()


def test_an_existing_destination_or_a_broken_strategy_is_refused(whole, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    code, err = run(capsys, "ckpt", "transform", whole, tmp_path / "taken", "--dst-layout",
                    "dp=1,mp=2,pp=1")
    assert code == 2 and "was not made by mf as a model directory; mf never replaces it" in err
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    done = transform_checkpoint(whole, tmp_path / "done", dst_layout="dp=1,mp=2,pp=1")
    code, err = run(capsys, "ckpt", "transform", whole, done, "--dst-layout", "dp=1,mp=1,pp=1")
    assert code == 2 and "already holds an earlier model of mf's" in err
    assert run(capsys, "ckpt", "transform", whole, done, "--dst-layout", "dp=1,mp=1,pp=1",
               "--overwrite")[0] == 0
    assert not (done / STRATEGY_FILE).exists()  # replaced by the whole checkpoint
    broken = tmp_path / "strategy.json"
    broken.write_text('{"format": "mf-parallel-strategy", "version": 1, "mesh":')
    code, err = run(capsys, "ckpt", "transform", whole, tmp_path / "out", "--dst-strategy",
                    broken)
    assert code == 2 and "not valid JSON (truncated or corrupt?)" in err
    assert not (tmp_path / "out").exists()


# ---- a trained checkpoint, sharded and merged, is still a model directory ------------------------

@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_merged_checkpoint_generates_and_evaluates_as_the_original(tmp_path):
    import subprocess
    import sys

    mf = str(Path(sys.executable).with_name("mf"))
    config = str(Path(__file__).resolve().parents[3] / "configs" / "llama" /
                 "run_llama_debug.yaml")
    options = ["--options", f"output_dir={tmp_path / 'job'}",
               f"processor.tokenizer.vocab_file={tmp_path / 'tok' / 'tokenizer.model'}"]

    def mf_run(*args: str) -> str:
        result = subprocess.run([mf, *args], capture_output=True, text=True, timeout=400)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    mf_run("train", config, *options, "runner_config.max_steps=3", "do_eval=false")
    original = tmp_path / "job" / "checkpoints" / "checkpoint-3"
    sharded = tmp_path / "sharded"
    mf_run("ckpt", "transform", str(original), str(sharded), "--dst-layout", "dp=1,mp=2,pp=2")
    merged = tmp_path / "merged"
    mf_run("ckpt", "transform", str(sharded), str(merged), "--dst-layout", "dp=1,mp=1,pp=1")

    same_files(original, merged, "model.safetensors")
    prompt = ["def ", "--max-new-tokens", "12"]
    assert mf_run("generate", str(merged), *prompt) == mf_run("generate", str(original), *prompt)
    scores = [mf_run("eval", config, "--checkpoint", str(path), *options)
              for path in (merged, original)]
    assert "perplexity" in scores[0] and scores[0] == scores[1]


# ---- properties over any two layouts ------------------------------------------------------------

@st.composite
def layouts(draw):
    pp = draw(st.integers(1, 2))
    return ParallelConfig(data_parallel=draw(st.integers(1, 2)),
                          model_parallel=draw(st.sampled_from([1, 2, 4])), pipeline_stage=pp,
                          micro_batch_num=pp, optimizer_shard=draw(st.booleans()))


def in_memory(params, seed: int = 0) -> CheckpointTensors:
    rng = np.random.default_rng(seed)
    weights = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in params}
    optimizer = {f"adam_{k}.{n}": rng.standard_normal(a.shape).astype(np.float32)
                 for n, a in weights.items() for k in "mv"}
    optimizer["global_step"] = np.array([3], np.int32)
    return CheckpointTensors(Path("."), None, [(weights, optimizer)])


def identical(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes()
        for k in a)


@settings(deadline=None, max_examples=12)
@given(layouts(), layouts(), st.booleans())
def test_any_layout_to_any_other_and_back_is_exact_lora_too(a, b, lora):
    config = llama_debug_config()
    whole_tensors = in_memory(lora_params(config) if lora else llama_params(config))
    strategy_a = strategy_for_layout(whole_tensors, a, model="llama_debug")
    at_a = CheckpointTensors(Path("."), strategy_a, shard_checkpoint(whole_tensors, strategy_a))
    strategy_b = strategy_for_layout(at_a, b, model="llama_debug")
    at_b = CheckpointTensors(Path("."), strategy_b, shard_checkpoint(at_a, strategy_b))

    back = shard_checkpoint(at_b, strategy_a)  # A -> B -> A
    assert all(identical(w, w0) and identical(o, o0)
               for (w, o), (w0, o0) in zip(back, at_a.ranks, strict=True))
    merged_b, merged_a = merge_checkpoint(at_b), merge_checkpoint(at_a)  # merge(B) == merge(A)
    assert identical(merged_b[0], merged_a[0]) and identical(merged_b[1], merged_a[1])
    assert identical(merged_a[0], whole_tensors.ranks[0][0])
