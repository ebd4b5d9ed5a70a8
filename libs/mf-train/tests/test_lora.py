"""LoRA on every family's debug preset: exact at init, only LoRA trains, merge == LoRA.

One module-scoped run per family does the expensive part once (a compiled value_and_grad +
AdamW train step, compiled step-API decoding of the LoRA and of the merged model) and the
tests below assert on what it recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mf_models import AutoModelForCausalLM, UnsafeFileError

from mf_train.errors import CheckpointMismatchError, CheckpointNotFoundError, TrainConfigError
from mf_train.lora import (
    DEFAULT_TARGET_MODULES,
    LoraConfig,
    apply_lora,
    count_parameters,
    load_lora,
    lora_layers,
    lora_state_dict,
    merge_lora,
    save_lora,
)

# The four families issue 6 names for LoRA (BLOOM and PanGu-Alpha are checked below).
LORA_FAMILIES = ["gpt2", "llama", "glm", "glm2"]
PROMPT_LEN, NEW_TOKENS, CACHE_LEN = 8, 6, 16
TRAIN_STEPS = 12
CONFIG = LoraConfig(lora_rank=4, lora_alpha=8)


def _batch(vocab: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, vocab, (2, 12)).astype(np.int32)
    mask = np.ones_like(ids)
    ids[1, :3], mask[1, :3] = 0, 0  # a left-padded row
    return ids, mask


def _forward(model, ids, mask):
    from mindspore import Tensor

    return model(Tensor(ids), None, Tensor(mask)).asnumpy()


def _prompt(config):
    ids = np.random.default_rng(1).integers(4, config.vocab_size, (1, PROMPT_LEN))
    if config.family == "glm":  # a GLM prompt ends with [gMASK] <sop>
        ids[0, -2:] = config.gmask_token_id, config.bos_token_id
    return ids.astype(np.int32)


def _decode(model, step, prompt):
    """Logits of every prompt position and greedy tokens through a compiled step function.

    The prompt goes in one token per step, so each model compiles one graph (T = 1) instead
    of a prefill and a decode graph: the step API allows any split of the tokens into steps.
    """
    key_mask = np.zeros((1, CACHE_LEN), np.int32)
    positions = model.prefill_positions(np.ones_like(prompt), prompt)  # (1, P) or (1, 2, P)
    logits, tokens, token = [], [], None
    for slot in range(PROMPT_LEN + NEW_TOKENS - 1):
        key_mask[:, slot] = 1
        if slot < PROMPT_LEN:
            token, pos = prompt[:, slot:slot + 1], positions[..., slot:slot + 1]
        else:
            pos = model.next_positions(pos)
        out = step(token, pos, slot, key_mask).asnumpy()  # (1, 1, V)
        logits.append(out[:, -1])
        if slot >= PROMPT_LEN - 1:
            token = out[:, -1].argmax(-1).astype(np.int32)[:, None]  # (1, 1)
            tokens.append(int(token[0, 0]))
    return np.stack(logits, 1), tokens


def _train(model, ids, mask, steps: int):
    """A compiled train step (value_and_grad + AdamW in one graph) over the trainable params."""
    import mindspore as ms
    from mindspore import Tensor, nn

    optimizer = nn.AdamWeightDecay(model.trainable_params(), learning_rate=3e-3,
                                   weight_decay=0.01)

    def loss_fn(x, m):
        return model(x, x, m)[0]

    grad_fn = ms.value_and_grad(loss_fn, None, optimizer.parameters)

    @ms.jit
    def train_step(x, m):
        loss, grads = grad_fn(x, m)
        optimizer(grads)
        return loss

    x, m = Tensor(ids), Tensor(mask)
    return [float(train_step(x, m).asnumpy()) for _ in range(steps)]


@pytest.fixture(scope="module", params=LORA_FAMILIES)
def run(request, tmp_path_factory):
    family = request.param
    model = AutoModelForCausalLM.from_config(f"{family}_debug", seed=5)
    vocab = model.config.vocab_size
    ids, mask = _batch(vocab)
    prompt = _prompt(model.config)
    rec = {"family": family, "ids": ids, "mask": mask}
    rec["base_names"] = sorted(p.name for p in model.get_parameters())
    rec["base_count"] = count_parameters(model)
    rec["base_logits"] = _forward(model, ids, mask)
    base_step = model.step_function(model.new_cache(1, CACHE_LEN))
    rec["base_step_logits"], rec["base_tokens"] = _decode(model, base_step, prompt)

    apply_lora(model, CONFIG, seed=0)
    rec["targets"] = [(layer.path, layer.in_features, layer.out_features)
                      for layer in lora_layers(model)]
    rec["lora_count"] = count_parameters(model)
    rec["init_logits"] = _forward(model, ids, mask)
    lora_step = model.step_function(model.new_cache(1, CACHE_LEN))
    rec["init_step_logits"], rec["init_tokens"] = _decode(model, lora_step, prompt)
    frozen_before = {p.name: p.asnumpy().copy() for p in model.get_parameters()
                     if not p.requires_grad}
    lora_before = lora_state_dict(model)

    rec["losses"] = _train(model, ids, mask, TRAIN_STEPS)
    rec["frozen_before"] = frozen_before
    # Copies: asnumpy() can share the parameter's memory, which merge_lora overwrites.
    rec["frozen_after"] = {p.name: p.asnumpy().copy() for p in model.get_parameters()
                           if p.name in frozen_before}
    rec["lora_before"], rec["lora_after"] = lora_before, lora_state_dict(model)
    rec["lora_logits"] = _forward(model, ids, mask)
    # The step function compiled at init reads the trained weights in place (no recompile).
    rec["lora_step_logits"], rec["lora_tokens"] = _decode(model, lora_step, prompt)
    rec["lora_dir"] = tmp_path_factory.mktemp(f"{family}_lora")
    save_lora(model, rec["lora_dir"])

    merge_lora(model)
    rec["merged_logits"] = _forward(model, ids, mask)
    # The merged model has the base model's cells again, so the base graph compiled at the
    # start is the plain model's step function; it reads the merged weights in place.
    rec["merged_step_logits"], rec["merged_tokens"] = _decode(model, base_step, prompt)
    rec["merged_names"] = sorted(p.name for p in model.get_parameters())
    rec["merged_weights"] = {name: value.copy() for name, value in model.state_dict().items()}
    rec["merged_trainable"] = count_parameters(model).trainable
    rec["merged_dir"] = tmp_path_factory.mktemp(f"{family}_merged")
    model.save_pretrained(rec["merged_dir"])
    return rec


# ---- the LoRA model at init ----------------------------------------------------------------------
def test_lora_model_at_init_equals_the_base_exactly(run):
    np.testing.assert_array_equal(run["init_logits"], run["base_logits"])
    np.testing.assert_array_equal(run["init_step_logits"], run["base_step_logits"])
    assert run["init_tokens"] == run["base_tokens"]


def test_default_targets_are_the_family_defaults(run):
    import re

    pattern = re.compile(DEFAULT_TARGET_MODULES[run["family"]])
    paths = [path for path, _, _ in run["targets"]]
    assert paths and all(pattern.fullmatch(p) for p in paths)
    expected_leaf = {"llama": {"wq", "wk", "wv", "wo"}, "gpt2": {"dense1", "dense3"},
                     "glm": {"query_key_value"}, "glm2": {"query_key_value"}}[run["family"]]
    assert {p.rsplit(".", 1)[1] for p in paths} == expected_leaf


def test_parameter_counts_follow_rank_times_in_plus_out(run):
    rank = CONFIG.lora_rank
    formula = sum(rank * (n_in + n_out) for _, n_in, n_out in run["targets"])
    assert run["lora_count"].trainable == formula
    assert run["lora_count"].total == run["base_count"].total + formula
    assert run["base_count"].trainable == run["base_count"].total  # nothing frozen before


def test_parameter_counts_match_the_config_arithmetic():
    """The same count from the config alone, for the two families whose layout is fixed."""
    model = AutoModelForCausalLM.from_config("llama_debug")
    cfg, r = model.config, 8
    q, kv = cfg.num_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    c = cfg.hidden_size
    per_layer = r * ((c + q) + (c + kv) + (c + kv) + (q + c))  # wq, wk, wv, wo
    apply_lora(model, LoraConfig(lora_rank=r))
    assert count_parameters(model).trainable == cfg.num_layers * per_layer

    model = AutoModelForCausalLM.from_config("gpt2_debug")
    c = model.config.hidden_size
    apply_lora(model, LoraConfig(lora_rank=r))
    assert count_parameters(model).trainable == model.config.num_layers * 2 * r * (c + c)
    text = str(count_parameters(model))
    assert text.startswith("trainable params: ") and "all params: " in text


# ---- training ------------------------------------------------------------------------------------
def test_training_changes_only_lora_weights_and_lowers_the_loss(run):
    assert run["frozen_before"], "nothing was frozen"
    for name, before in run["frozen_before"].items():
        np.testing.assert_array_equal(run["frozen_after"][name], before, err_msg=name)
    assert set(run["frozen_before"]) | set(run["lora_after"]) == set(run["base_names"]) | set(
        run["lora_after"])
    for name, after in run["lora_after"].items():
        assert not np.array_equal(after, run["lora_before"][name]), f"{name} did not train"
    # Frozen base + untrained LoRA would repeat the first loss exactly; GLM's DeepNorm-scaled
    # residuals make its q/k/v-only adapter the slowest to move (about 0.13 in 12 steps).
    losses = run["losses"]
    assert losses[-1] < losses[0] - 0.05, losses


def test_lora_b_starts_at_zero_and_a_is_kaiming_uniform(run):
    for name, value in run["lora_before"].items():
        if name.endswith(".mindpet_delta_lora_b"):
            assert not value.any(), name
        else:
            bound = 1.0 / np.sqrt(value.shape[1])  # kaiming_uniform(a=sqrt(5)) on fan_in
            assert np.abs(value).max() <= bound
            assert np.abs(value).max() > 0.8 * bound  # spread over the range, not a tiny init


# ---- merge ---------------------------------------------------------------------------------------
def test_merged_model_gives_the_lora_models_logits_and_tokens(run):
    np.testing.assert_allclose(run["merged_logits"], run["lora_logits"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(run["merged_step_logits"], run["lora_step_logits"], atol=1e-5,
                               rtol=0)
    assert run["merged_tokens"] == run["lora_tokens"]
    # ... and the training really moved the model away from its base.
    assert np.abs(run["lora_logits"] - run["base_logits"]).max() > 1e-2


def test_merged_model_is_a_plain_checkpoint(run):
    assert run["merged_names"] == run["base_names"]
    assert run["merged_trainable"] == run["base_count"].total
    reloaded = AutoModelForCausalLM.from_pretrained(run["merged_dir"])
    assert not lora_layers(reloaded)
    weights = reloaded.state_dict()
    assert sorted(weights) == run["base_names"]
    for name, value in run["merged_weights"].items():
        np.testing.assert_array_equal(weights[name], value, err_msg=name)


# ---- LoRA-only checkpoints -----------------------------------------------------------------------
def test_lora_checkpoint_round_trips_into_a_fresh_base_model(run):
    from safetensors.numpy import load_file

    saved = load_file(str(run["lora_dir"] / "lora_model.safetensors"))
    assert set(saved) == set(run["lora_after"])
    # MindFormers' names: a MindFormers LoRA checkpoint and ours name A and B alike.
    assert {name.rsplit(".", 1)[1] for name in saved} == {"mindpet_delta_lora_a",
                                                          "mindpet_delta_lora_b"}
    config = json.loads((run["lora_dir"] / "lora_config.json").read_text())
    assert config["pet_config"]["lora_rank"] == CONFIG.lora_rank
    assert config["pet_config"]["target_modules"] == DEFAULT_TARGET_MODULES[run["family"]]

    fresh = AutoModelForCausalLM.from_config(f"{run['family']}_debug", seed=5)
    load_lora(fresh, run["lora_dir"])  # applies the saved config, then loads the weights
    for name, value in lora_state_dict(fresh).items():
        np.testing.assert_array_equal(value, run["lora_after"][name])
    np.testing.assert_array_equal(_forward(fresh, run["ids"], run["mask"]), run["lora_logits"])


def test_load_lora_from_a_state_dict_into_a_wrapped_model():
    model = apply_lora(AutoModelForCausalLM.from_config("gpt2_debug"), CONFIG, seed=1)
    other = apply_lora(AutoModelForCausalLM.from_config("gpt2_debug"), CONFIG, seed=2)
    weights = {name: np.full_like(value, 0.25) for name, value in lora_state_dict(other).items()}
    load_lora(model, weights)
    assert all((value == 0.25).all() for value in lora_state_dict(model).values())


def test_load_lora_reads_the_lora_part_of_a_full_mindspore_ckpt(tmp_path):
    """MindFormers saves a LoRA run as one .ckpt of base + LoRA weights, under these names."""
    from mf_models.weights.io import write_ckpt

    trained = apply_lora(AutoModelForCausalLM.from_config("llama_debug"), CONFIG, seed=3)
    weights = {name: np.full_like(value, 0.5) for name, value in lora_state_dict(trained).items()}
    base = AutoModelForCausalLM.from_config("llama_debug", seed=9).state_dict()
    write_ckpt({**base, **weights}, tmp_path / "llama_lora.ckpt")
    model = apply_lora(AutoModelForCausalLM.from_config("llama_debug"), CONFIG)
    base_before = {p.name: p.asnumpy().copy() for p in model.get_parameters()
                   if not p.requires_grad}
    load_lora(model, tmp_path / "llama_lora.ckpt")
    assert all((value == 0.5).all() for value in lora_state_dict(model).values())
    for param in model.get_parameters():  # the base is not the LoRA loader's business
        if not param.requires_grad:
            np.testing.assert_array_equal(param.asnumpy(), base_before[param.name])


def test_load_lora_reaches_a_graph_compiled_before_it():
    """A resume loads LoRA weights after the train step compiled: the graph must see them."""
    import mindspore as ms
    from mf_models.modules.layers import Linear
    from mindspore import Tensor, nn

    class Tiny(nn.Cell):
        def __init__(self):
            super().__init__()
            self.proj = Linear(8, 4, bias=False, transpose_b=True, std=0.5,
                               param_dtype="float32", compute_dtype="float32",
                               rng=np.random.default_rng(0))

        def construct(self, x):
            return self.proj(x)

    tiny = apply_lora(Tiny(), LoraConfig(lora_rank=2, lora_alpha=2, target_modules="proj"))

    @ms.jit
    def forward(x):
        return tiny(x)

    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    w = tiny.proj.base.weight.asnumpy().copy()
    np.testing.assert_allclose(forward(Tensor(x)).asnumpy(), x @ w.T, rtol=1e-5, atol=1e-6)
    a = np.full((2, 8), 0.1, np.float32)
    b = np.full((4, 2), 0.2, np.float32)
    load_lora(tiny, {"proj.mindpet_delta_lora_a": a, "proj.mindpet_delta_lora_b": b})
    np.testing.assert_allclose(forward(Tensor(x)).asnumpy(), x @ w.T + x @ a.T @ b.T,
                               rtol=1e-5, atol=1e-6)


# ---- the math of one layer, both weight layouts --------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(n_in=st.integers(1, 9), n_out=st.integers(1, 9), rank=st.integers(1, 4),
       alpha=st.floats(0.5, 64), transpose_b=st.booleans(), seed=st.integers(0, 2**16))
def test_one_lora_linear_matches_numpy_and_its_merge(n_in, n_out, rank, alpha, transpose_b,
                                                     seed):
    from mf_models.modules.layers import Linear
    from mindspore import Tensor

    from mf_train.lora.layer import LoraLinear

    rng = np.random.default_rng(seed)
    base = Linear(n_in, n_out, bias=True, transpose_b=transpose_b, std=0.5,
                  param_dtype="float32", compute_dtype="float32", rng=rng)
    layer = LoraLinear(base, "layer", rank, alpha, 0.0, rng)
    a = rng.standard_normal((rank, n_in)).astype(np.float32)
    b = rng.standard_normal((n_out, rank)).astype(np.float32)
    layer.lora_a.set_data(Tensor(a))
    layer.lora_b.set_data(Tensor(b))
    x = rng.standard_normal((2, 3, n_in)).astype(np.float32)
    w = base.weight.asnumpy()
    w_out_in = w if transpose_b else w.T
    expected = x @ w_out_in.T + base.bias.asnumpy() + (x @ a.T @ b.T) * (alpha / rank)
    np.testing.assert_allclose(layer(Tensor(x)).asnumpy(), expected, rtol=1e-4, atol=1e-4)
    merged = w + layer.delta_weight()
    merged_out_in = merged if transpose_b else merged.T
    np.testing.assert_allclose(x @ merged_out_in.T + base.bias.asnumpy(), expected, rtol=1e-4,
                               atol=1e-4)


def test_dropout_acts_on_the_input_of_a_only_while_training():
    from mf_models.modules.layers import Linear
    from mindspore import Tensor

    from mf_train.lora.layer import LoraLinear

    rng = np.random.default_rng(0)
    base = Linear(16, 8, bias=False, transpose_b=True, std=0.5, param_dtype="float32",
                  compute_dtype="float32", rng=rng)
    layer = LoraLinear(base, "layer", 4, 4, 0.5, rng)
    layer.lora_b.set_data(Tensor(np.ones((8, 4), np.float32)))
    x = Tensor(rng.standard_normal((4, 16)).astype(np.float32))
    plain = base(x).asnumpy()
    a, b = layer.lora_a.asnumpy(), layer.lora_b.asnumpy()
    no_dropout = plain + (x.asnumpy() @ a.T @ b.T)
    layer.set_train(False)
    np.testing.assert_allclose(layer(x).asnumpy(), no_dropout, rtol=1e-5, atol=1e-5)
    layer.set_train(True)
    trained = layer(x).asnumpy()
    assert not np.allclose(trained, no_dropout, atol=1e-3)
    # Dropout zeroes inputs of A and rescales the rest by 1/(1-p); the base path is untouched:
    # the LoRA part is (x * keep / (1 - p)) @ A^T @ B^T for some 0/1 mask `keep`.
    lora_part = trained - plain
    assert np.linalg.matrix_rank(lora_part, tol=1e-4) <= 4


# ---- bad input: one line each --------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    (dict(lora_rank=0), "lora_rank=0 must be a positive integer"),
    (dict(lora_rank=2.5), "lora_rank=2.5 must be a positive integer"),
    (dict(lora_alpha=0), "lora_alpha=0 must be a positive number"),
    (dict(lora_dropout=1.0), "lora_dropout=1.0 must be a number in [0, 1)"),
    (dict(target_modules="(wq"), "target_modules='(wq' is not a valid regex: missing ), "),
    (dict(target_modules=""), "target_modules='' must be a non-empty regex string"),
    (dict(pet_type="ptuning2"), "pet_type='ptuning2': LoraConfig only does 'lora'"),
])
def test_bad_config_values_are_one_line_errors(kwargs, message):
    with pytest.raises(TrainConfigError) as err:
        LoraConfig(**kwargs)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)
    assert err.value.exit_code == 2


def test_pet_config_keys_are_checked():
    config = LoraConfig.from_dict({"pet_type": "lora", "lora_rank": 16, "lora_alpha": 16,
                                   "lora_dropout": 0.05, "target_modules": ".*wq|.*wv"})
    assert (config.lora_rank, config.scaling, config.target_modules) == (16, 1.0, ".*wq|.*wv")
    with pytest.raises(TrainConfigError, match=r"unknown pet_config key 'lora_rnak'; did you "
                                                r"mean 'lora_rank'\?"):
        LoraConfig.from_dict({"lora_rnak": 8})
    with pytest.raises(TrainConfigError, match=r"pet_config.exclude_layers is not supported"):
        LoraConfig.from_dict({"exclude_layers": "wo"})


def test_a_regex_that_matches_nothing_names_itself_and_real_layers():
    model = AutoModelForCausalLM.from_config("llama_debug")
    with pytest.raises(TrainConfigError) as err:
        apply_lora(model, LoraConfig(target_modules=".*q_proj|.*v_proj"))
    text = str(err.value)
    assert text.startswith("target_modules '.*q_proj|.*v_proj' matches no Linear layer of "
                           "LlamaForCausalLM")
    assert "model.layers.*.attention.wq" in text and "\n" not in text
    assert not lora_layers(model) and all(p.requires_grad for p in model.get_parameters())


def test_targets_match_a_whole_path_or_an_attribute_name():
    model = AutoModelForCausalLM.from_config("llama_debug")
    apply_lora(model, LoraConfig(target_modules="wq|wv"))  # MindFormers-style bare names
    assert [layer.path for layer in lora_layers(model)] == [
        "model.layers.0.attention.wq", "model.layers.0.attention.wv",
        "model.layers.1.attention.wq", "model.layers.1.attention.wv"]
    model = AutoModelForCausalLM.from_config("llama_debug")
    apply_lora(model, LoraConfig(target_modules=r"model\.layers\.1\..*|lm_head"))
    assert [layer.path for layer in lora_layers(model)] == [
        "model.layers.1.attention.wq", "model.layers.1.attention.wk",
        "model.layers.1.attention.wv", "model.layers.1.attention.wo",
        "model.layers.1.feed_forward.w1", "model.layers.1.feed_forward.w3",
        "model.layers.1.feed_forward.w2", "lm_head"]
    with pytest.raises(TrainConfigError, match="matches no Linear layer"):
        apply_lora(AutoModelForCausalLM.from_config("llama_debug"), LoraConfig(target_modules="w"))


def test_lora_config_imports_no_mindspore():
    code = ("import sys\n"
            "from mf_train.lora import LoraConfig, DEFAULT_TARGET_MODULES\n"
            "LoraConfig.from_dict({'lora_rank': 4}).targets_for('llama')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mindspore'))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_applying_twice_and_merging_nothing_are_errors():
    model = AutoModelForCausalLM.from_config("gpt2_debug")
    with pytest.raises(TrainConfigError, match="has no LoRA layers; call apply_lora first"):
        merge_lora(model)
    apply_lora(model, CONFIG)
    with pytest.raises(TrainConfigError, match=r"already has 4 LoRA layers \(first "
                                                r"backbone.blocks.0.attention.dense1\)"):
        apply_lora(model, CONFIG)


def test_bloom_default_and_a_family_without_a_default():
    model = AutoModelForCausalLM.from_config("bloom_debug")
    apply_lora(model)  # peft's fused query_key_value -> our dense1/2/3
    assert {layer.path.rsplit(".", 1)[1] for layer in lora_layers(model)} == {
        "dense1", "dense2", "dense3"}
    # MindFormers ships no PanGu-Alpha LoRA config, so there is no default to copy.
    pangu = AutoModelForCausalLM.from_config("pangualpha_debug")
    with pytest.raises(TrainConfigError, match="no default LoRA target_modules for the "
                                                "pangualpha family; set target_modules"):
        apply_lora(pangu)
    apply_lora(pangu, LoraConfig(target_modules=".*dense1|.*dense3"))
    assert len(lora_layers(pangu)) == 2 * pangu.config.num_layers  # the top query layer counts


def test_loading_mismatched_lora_weights_is_refused(tmp_path):
    model = apply_lora(AutoModelForCausalLM.from_config("gpt2_debug"), CONFIG)
    bigger = apply_lora(AutoModelForCausalLM.from_config("gpt2_debug"),
                        LoraConfig(lora_rank=8))
    with pytest.raises(CheckpointMismatchError, match=r"lora_a: LoRA weights has shape \(8, 64\) "
                                                      r"but the model's LoRA weight is \(4, 64\)"):
        load_lora(model, lora_state_dict(bigger))
    partial = dict(list(lora_state_dict(model).items())[1:])
    with pytest.raises(CheckpointMismatchError, match="1 missing, first "
                                                      "backbone.blocks.0.attention.dense1."
                                                      "mindpet_delta_lora_a"):
        load_lora(model, partial)
    with pytest.raises(CheckpointMismatchError, match=r"holds no LoRA weights \(names ending "
                                                      r"in .mindpet_delta_lora_a or "
                                                      r".mindpet_delta_lora_b; it has 1 other "
                                                      r"tensors, first backbone.layernorm.gamma"):
        load_lora(model, {"backbone.layernorm.gamma": np.ones(64, np.float32)})
    with pytest.raises(CheckpointNotFoundError, match="do not exist"):
        load_lora(model, tmp_path / "nowhere")
    with pytest.raises(UnsafeFileError, match=r"adapter_model.bin: a pickle file"):
        load_lora(model, tmp_path / "adapter_model.bin")
    save_lora(model, tmp_path / "kept")
    bare = AutoModelForCausalLM.from_config("gpt2_debug")
    (tmp_path / "kept" / "lora_config.json").unlink()
    with pytest.raises(TrainConfigError, match="has no LoRA layers and .* carries no "
                                               "lora_config.json; call apply_lora"):
        load_lora(bare, tmp_path / "kept")


def test_a_preset_that_carries_lora_trains_lora(tmp_path):
    """Trainer(model="llama_7b_lora") is LoRA as in MindFormers, not full training."""
    from mf_train.resolve import resolve_run

    run = resolve_run({"output_dir": str(tmp_path / "out")}, model="llama_7b_lora")
    assert run.pet["pet_type"] == "lora" and run.pet["lora_rank"] == 16
    assert run.to_dict()["model"]["model_config"]["pet_config"]["lora_rank"] == 16
    assert "the model preset" in run.config.origins.get("model.model_config.pet_config", "")
    plain = resolve_run({"output_dir": str(tmp_path / "out")}, model="llama_7b")
    assert plain.pet is None
