"""Data, model, pipeline and optimizer-shard parallel training on real msrun ranks, against one
process: the first step's loss within 1e-5 and the merged weights after 3 AdamW steps (with
gradient clipping active) within 1e-4, for LLaMA with grouped-query attention and for GPT-2
(tied embedding). One msrun launch per world size trains every layout of that size in turn
(2 ranks: 12 layouts, 4 ranks: 3; ~1 min per layout on 2 busy cores: run with -m slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mf_parallel import merge, read_strategy
from mf_parallel.local import run_local
from parallel_cases import GENERATE_OPTIONS, LR, PROMPTS, STEPS, adamw, global_batches

WORKER = Path(__file__).with_name("msrun_parallel_worker.py")
MODELS = ("llama_debug", "gpt2_debug")  # llama_debug: 4 heads, 2 key/value heads

LLAMA, GPT2 = MODELS
# (models, name, dp, mp, pp, micro batches per rank, extra): what the issue asks of both
# families, plus the variants that exercise one more path on LLaMA only.
TWO_RANKS = [
    (MODELS, "dp2", 2, 1, 1, 1, {}),
    (MODELS, "mp2", 1, 2, 1, 1, {"vocab_emb_dp": False}),  # vocabulary-parallel embedding + loss
    ((LLAMA,), "mp2_vocab_whole", 1, 2, 1, 1, {"interleave": 2}),  # default vocab_emb_dp
    (MODELS, "pp2", 1, 1, 2, 2, {}),  # 1F1B; GPT-2's tied table on both stages
    ((LLAMA,), "pp2_gpipe", 1, 1, 2, 2, {"schedule": "gpipe"}),
    (MODELS, "dp2_optimizer_shard", 2, 1, 1, 1, {"optimizer_shard": True}),
]
FOUR_RANKS = [
    ((LLAMA,), "dp2_mp2", 2, 2, 1, 1, {"vocab_emb_dp": False, "optimizer_shard": True}),
    (MODELS, "mp2_pp2", 1, 2, 2, 2, {"vocab_emb_dp": False}),
]


def cases(layouts):
    return [{"name": f"{model}_{name}", "model": model, "dp": dp, "mp": mp, "pp": pp,
             "micro": micro, **extra}
            for models, name, dp, mp, pp, micro, extra in layouts for model in models]


GENERATE = [{"name": f"{model}_generate_mp2", "kind": "generate", "model": model, "mp": 2}
            for model in MODELS]


def launch(tmp_path_factory, todo, workers):
    out = tmp_path_factory.mktemp(f"parallel_{workers}")
    (out / "cases.json").write_text(json.dumps(todo))
    run_local(WORKER, [str(out), str(out / "cases.json")], workers=workers,
              log_dir=out / "logs", timeout=1200)
    return out


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    return launch(tmp_path_factory, cases(TWO_RANKS) + GENERATE, 2)


@pytest.fixture(scope="module")
def four_ranks(tmp_path_factory):
    return launch(tmp_path_factory, cases(FOUR_RANKS), 4)


@pytest.fixture(scope="module")
def reference():
    """Each model trained in this one process on the whole global batch."""
    import mindspore as ms
    from mf_models import AutoModelForCausalLM

    from mf_train.optim import build_adamw
    from mf_train.train_step import TrainStep

    ms.set_context(mode=ms.PYNATIVE_MODE)
    results = {}
    for name in MODELS:
        model = AutoModelForCausalLM.from_config(name, seed=0)
        optimizer = build_adamw(model.trainable_params(), np.full(STEPS, LR, np.float32),
                                **adamw())
        step = TrainStep(model, optimizer, max_grad_norm=1.0)
        outs = [step.step([batch]) for batch in global_batches(model.config.vocab_size)]
        results[name] = ([o.loss for o in outs], [o.grad_norm for o in outs],
                         model.state_dict())
    return results


def merged_weights(folder: Path) -> dict[str, np.ndarray]:
    """Every parameter rebuilt from the ranks' slices with the job's strategy file."""
    strategy = read_strategy(folder / "strategy.json")
    shards = {rank: np.load(folder / f"rank_{rank}.npz", allow_pickle=False)
              for rank in range(strategy.mesh.size)}
    weights = {}
    for name, param in strategy.params.items():
        ranks = strategy.stage_ranks(param.stage)  # stage-local rank i is global ranks[i]
        weights[name] = merge([shards[r][name] for r in ranks], strategy.layout(name))
    return weights


def check_case(out: Path, case: str, reference) -> None:
    folder = out / case
    reports = [json.loads(p.read_text()) for p in sorted(folder.glob("rank_*.json"))]
    losses, norms, weights = reference[reports[0]["model"]]
    for report in reports:  # every rank reports the global batch's loss
        assert report["losses"][0] == pytest.approx(losses[0], abs=1e-5), case
        np.testing.assert_allclose(report["losses"], losses, atol=1e-4, err_msg=case)
        np.testing.assert_allclose(report["norms"], norms, rtol=1e-4, err_msg=case)
    assert norms[0] > 1.0  # clipping was active, so the norm across ranks mattered
    merged = merged_weights(folder)
    assert set(merged) == set(weights)
    for name, expected in weights.items():
        np.testing.assert_allclose(merged[name], expected, atol=1e-4, rtol=0,
                                   err_msg=f"{case}: {name}")


@pytest.mark.msrun
@pytest.mark.slow
@pytest.mark.timeout(3000)
@pytest.mark.parametrize("case", [c["name"] for c in cases(TWO_RANKS)])
def test_two_rank_layouts_train_like_one_process(two_ranks, reference, case):
    check_case(two_ranks, case, reference)


@pytest.mark.msrun
@pytest.mark.slow
@pytest.mark.timeout(3000)
@pytest.mark.parametrize("case", [c["name"] for c in cases(FOUR_RANKS)])
def test_four_rank_layouts_train_like_one_process(four_ranks, reference, case):
    check_case(four_ranks, case, reference)


@pytest.mark.msrun
@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_optimizer_shard_halves_the_adamw_state_per_rank(two_ranks):
    for model in MODELS:
        def state(layout, model=model):
            folder = two_ranks / f"{model}_{layout}"
            return [json.loads((folder / f"rank_{r}.json").read_text())["optimizer_state_bytes"]
                    for r in range(2)]

        whole, sharded = state("dp2"), state("dp2_optimizer_shard")
        assert whole[0] == whole[1] and sharded[0] == sharded[1]
        # every debug matrix's dim 0 divides by 2; only a few 1-D gains stay whole
        assert sharded[0] < 0.52 * whole[0], (model, sharded, whole)


@pytest.mark.msrun
@pytest.mark.slow
@pytest.mark.timeout(3000)
@pytest.mark.parametrize("model", MODELS)
def test_generation_split_over_two_ranks_gives_one_process_tokens(two_ranks, model):
    from mf_generate import generate
    from mf_models import AutoModelForCausalLM

    whole = AutoModelForCausalLM.from_config(model, seed=0)
    expected = np.asarray(generate(whole, PROMPTS, **GENERATE_OPTIONS)).tolist()
    for rank in range(2):
        report = json.loads((two_ranks / f"{model}_generate_mp2" / f"rank_{rank}.json")
                            .read_text())
        assert report["tokens"] == expected
        assert report["cache_heads"] == whole.config.kv_heads // 2  # the cache split by heads
