"""Every family's parameters from its config alone (what the memory estimate walks) are the
built model's: the same names and shapes where the family lists them, the same count always."""

from __future__ import annotations

import pytest
from mf_parallel import ParallelConfig, estimate_memory

from mf_models import FAMILIES, memory_inputs, model_dims


def _debug_config(family):
    config_class = family.config_class()
    return config_class.from_name(next(p for p in config_class.presets if "debug" in p))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_the_config_lists_the_built_model_s_parameters(name):
    family = FAMILIES[name]
    config = _debug_config(family)
    model = family.model_class()(config)
    built = [(p.name, tuple(p.shape)) for p in model.get_parameters()]
    assert config.parameter_count == sum(p.size for p in model.get_parameters())
    shapes = config.parameter_shapes()
    if shapes is not None:
        assert shapes == built
    inputs = memory_inputs(config)
    assert sum(_numel(p.shape) for p in inputs["params"]) == config.parameter_count


def _numel(shape):
    count = 1
    for size in shape:
        count *= size
    return count


@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_one_process_holds_the_whole_model_and_mp_pp_split_it(name):
    config = _debug_config(FAMILIES[name])
    dims, inputs = model_dims(config), memory_inputs(config)
    one = estimate_memory(dims, ParallelConfig(), batch_size=2, **inputs)
    assert one.peak.parameters == 4 * config.parameter_count
    mp = estimate_memory(dims, ParallelConfig(model_parallel=2), batch_size=2, **inputs)
    pp = estimate_memory(dims, ParallelConfig(pipeline_stage=2, micro_batch_num=2),
                         batch_size=2, **inputs)
    for split in (mp, pp):
        assert split.peak.parameters < one.peak.parameters
        assert split.per_device < one.per_device
    assert sum(s.parameters for s in pp.stages) == one.peak.parameters
