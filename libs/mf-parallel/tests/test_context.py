"""ContextConfig / ParallelContextConfig validation and init_context outside a cluster."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mf_parallel import ContextConfig, ParallelConfigError, ParallelContextConfig, init_context


def test_context_config_takes_mindformers_arguments():
    config = ContextConfig(mode="PYNATIVE_MODE", device_target="CPU", device_id=0,
                           max_call_depth=2000)
    assert config.mode == 1
    assert config.set_context_kwargs() == {"mode": 1, "max_call_depth": 2000}
    parallel = ParallelContextConfig(parallel_mode="data_parallel", gradients_mean=True,
                                     full_batch=False)
    assert parallel.auto_parallel_kwargs(4) == {"parallel_mode": "data_parallel",
                                                "device_num": 4, "gradients_mean": True,
                                                "full_batch": False}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ContextConfig(mode="graph"),
         "mode 'graph' is not 0 (GRAPH_MODE) or 1 (PYNATIVE_MODE)"),
        (lambda: ContextConfig(device_target="cpu"),
         "device_target 'cpu' is not one of ['CPU', 'GPU', 'Ascend']; did you mean 'CPU'?"),
        (lambda: ContextConfig(device_id=-1), "device_id(-1) must be an integer >= 0"),
        (lambda: ContextConfig(max_device_memroy="4GB"),
         "ContextConfig has no option 'max_device_memroy'; did you mean 'max_device_memory'?"),
        (lambda: ParallelContextConfig(parallel_mode="semi"),
         "parallel_mode 'semi' is not one of ['STAND_ALONE', 'DATA_PARALLEL', "
         "'SEMI_AUTO_PARALLEL', 'AUTO_PARALLEL', 'HYBRID_PARALLEL']"),
        (lambda: ParallelContextConfig(device_num=0), "device_num(0) must be an integer >= 1"),
        (lambda: ParallelContextConfig(full_bach=True),
         "ParallelContextConfig has no option 'full_bach'; did you mean 'full_batch'?"),
    ],
)
def test_config_errors(make, message):
    with pytest.raises(ParallelConfigError) as info:
        make()
    assert str(info.value) == message


def test_semi_auto_parallel_is_refused_on_cpu_before_mindspore_loads():
    with pytest.raises(ParallelConfigError, match=r"^parallel_mode 'SEMI_AUTO_PARALLEL' does not "
                                                  r"run on device_target 'CPU'"):
        init_context(True, ContextConfig(device_target="CPU"),
                     ParallelContextConfig(parallel_mode="SEMI_AUTO_PARALLEL"))


def _run(code: str) -> subprocess.CompletedProcess:
    env_clean = "import os; [os.environ.pop(k, None) for k in ('MS_ROLE', 'MS_WORKER_NUM')]; "
    return subprocess.run([sys.executable, "-c", env_clean + code], capture_output=True,
                          text=True, timeout=120)


def test_use_parallel_outside_msrun_is_a_usage_error_without_loading_mindspore():
    result = _run(
        "import sys\n"
        "from mf_parallel import init_context, ParallelConfigError\n"
        "try:\n"
        "    init_context(use_parallel=True)\n"
        "except ParallelConfigError as exc:\n"
        "    print(exc.exit_code, exc)\n"
        "print('mindspore' in sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.strip().splitlines()
    assert first.startswith("2 use_parallel=True, but this process was not started by msrun")
    assert second == "False"


def test_single_device_is_rank_0_of_1():
    result = _run(
        "from mf_parallel import init_context, ContextConfig\n"
        "print(init_context(False, ContextConfig(mode=1, device_target='CPU')))\n"
        "import mindspore as ms\n"
        "print(ms.get_context('mode'), ms.get_context('device_target'))\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:2] == ["(0, 1)", "1 CPU"]
