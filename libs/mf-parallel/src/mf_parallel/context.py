"""`init_context`: set up MindSpore for one device or a cluster, as MindFormers' README shows.

    context_config = ContextConfig(mode=0, device_target="CPU")
    parallel_config = ParallelContextConfig(parallel_mode="DATA_PARALLEL", gradients_mean=True)
    rank_id, device_num = init_context(use_parallel=True, context_config=context_config,
                                       parallel_config=parallel_config)

The configs are plain Python and validated when built; MindSpore (~2 s to import) is imported
only inside `init_context`. A cluster is formed by `mindspore.communication.init()`, so a
parallel run must be started by msrun (see `mf_parallel.launcher`). On CPU, MindSpore supports
only the STAND_ALONE and DATA_PARALLEL modes (SEMI_AUTO_PARALLEL answers "Invalid backend:
CPU"); mf shards tensor- and pipeline-parallel layers itself there.
"""

from __future__ import annotations

import difflib
import os
from typing import Any

from mf_parallel.errors import ParallelConfigError, ParallelError

DEVICE_TARGETS = ("CPU", "GPU", "Ascend")
MODES = {"GRAPH_MODE": 0, "PYNATIVE_MODE": 1}
PARALLEL_MODES = ("STAND_ALONE", "DATA_PARALLEL", "SEMI_AUTO_PARALLEL", "AUTO_PARALLEL",
                  "HYBRID_PARALLEL")
# Modes MindSpore runs on the CPU backend and in PyNative mode (set_auto_parallel_context docs).
CPU_PARALLEL_MODES = PYNATIVE_PARALLEL_MODES = ("STAND_ALONE", "DATA_PARALLEL")


def _unknown_key_error(owner: str, key: str, supported: tuple[str, ...]) -> ParallelConfigError:
    close = difflib.get_close_matches(key, supported, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"supported: {', '.join(supported)}"
    return ParallelConfigError(f"{owner} has no option {key!r}; {hint}")


class ContextConfig:
    """MindSpore's run context, with MindFormers' `ContextConfig` arguments.

    mode: 0 / "GRAPH_MODE" (compiled, MindFormers' default) or 1 / "PYNATIVE_MODE".
    device_target: "CPU" (mf's default: it runs anywhere), "GPU" or "Ascend".
    device_id: the device of this process; None takes DEVICE_ID from the environment, or lets
    MindSpore choose (under msrun it assigns one per rank).
    Other keyword arguments are passed to `mindspore.set_context` (MindFormers' list).
    """

    SUPPORTED_KWARGS = (
        "precompile_only", "enable_dump", "auto_tune_mode", "save_dump_path",
        "enable_reduce_precision", "variable_memory_max_size", "enable_profiling",
        "profiling_options", "enable_auto_mixed_precision", "enable_graph_kernel",
        "reserve_class_name_in_scope", "check_bprop", "max_device_memory", "print_file_path",
        "enable_sparse", "max_call_depth", "env_config_path", "graph_kernel_flags",
        "save_compile_cache", "runtime_num_threads", "load_compile_cache", "grad_for_scalar",
        "pynative_synchronize", "mempool_block_size", "jit_config", "memory_optimize_level",
    )

    def __init__(self, mode: int | str = 0, device_target: str = "CPU",
                 device_id: int | None = None, save_graphs: bool = False,
                 save_graphs_path: str = ".", **kwargs: Any) -> None:
        self.mode = _mode_number(mode)
        if device_target not in DEVICE_TARGETS:
            close = [t for t in DEVICE_TARGETS if t.lower() == str(device_target).lower()]
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ParallelConfigError(
                f"device_target {device_target!r} is not one of {list(DEVICE_TARGETS)}{hint}"
            )
        self.device_target = device_target
        if device_id is None and os.environ.get("DEVICE_ID", "").isdigit():
            device_id = int(os.environ["DEVICE_ID"])
        if device_id is not None and (
            not isinstance(device_id, int) or isinstance(device_id, bool) or device_id < 0
        ):
            raise ParallelConfigError(f"device_id({device_id!r}) must be an integer >= 0")
        self.device_id = device_id
        self.save_graphs = save_graphs
        self.save_graphs_path = save_graphs_path
        for key in kwargs:
            if key not in self.SUPPORTED_KWARGS:
                raise _unknown_key_error("ContextConfig", key, self.SUPPORTED_KWARGS)
        self.extra = dict(kwargs)

    def set_context_kwargs(self) -> dict[str, Any]:
        """What goes to `mindspore.set_context` (the device goes to `mindspore.set_device`)."""
        kwargs: dict[str, Any] = {"mode": self.mode, **self.extra}
        if self.save_graphs:  # deprecated in MindSpore 2.10: passed only when asked for
            kwargs.update(save_graphs=self.save_graphs, save_graphs_path=self.save_graphs_path)
        return kwargs

    def __repr__(self) -> str:
        return (f"ContextConfig(mode={self.mode}, device_target={self.device_target!r}, "
                f"device_id={self.device_id!r}, extra={self.extra!r})")


def _mode_number(mode: int | str) -> int:
    if isinstance(mode, int) and not isinstance(mode, bool) and mode in MODES.values():
        return mode
    if isinstance(mode, str) and mode.upper() in MODES:
        return MODES[mode.upper()]
    raise ParallelConfigError(
        f"mode {mode!r} is not 0 (GRAPH_MODE) or 1 (PYNATIVE_MODE)"
    )


class ParallelContextConfig:
    """MindSpore's auto-parallel context, with MindFormers' `ParallelContextConfig` arguments.

    parallel_mode: one of STAND_ALONE, DATA_PARALLEL, SEMI_AUTO_PARALLEL, AUTO_PARALLEL,
    HYBRID_PARALLEL (any case). device_num: None takes the cluster's size; a number is checked
    against it. Other keyword arguments go to `mindspore.set_auto_parallel_context`.
    """

    SUPPORTED_KWARGS = (
        "global_rank", "gradient_fp32_sync", "auto_parallel_search_mode", "search_mode",
        "parameter_broadcast", "strategy_ckpt_load_file", "strategy_ckpt_save_file",
        "full_batch", "enable_parallel_optimizer", "enable_alltoall", "all_reduce_fusion_config",
        "pipeline_stages", "grad_accumulation_step", "parallel_optimizer_config", "comm_fusion",
    )

    def __init__(self, parallel_mode: str = "STAND_ALONE", device_num: int | None = None,
                 gradients_mean: bool = False, **kwargs: Any) -> None:
        if not isinstance(parallel_mode, str) or parallel_mode.upper() not in PARALLEL_MODES:
            raise ParallelConfigError(
                f"parallel_mode {parallel_mode!r} is not one of {list(PARALLEL_MODES)}"
            )
        self.parallel_mode = parallel_mode.upper()
        if device_num is not None and (
            not isinstance(device_num, int) or isinstance(device_num, bool) or device_num < 1
        ):
            raise ParallelConfigError(f"device_num({device_num!r}) must be an integer >= 1")
        self.device_num = device_num
        if not isinstance(gradients_mean, bool):
            raise ParallelConfigError(
                f"gradients_mean must be true or false, got {gradients_mean!r}"
            )
        self.gradients_mean = gradients_mean
        for key in kwargs:
            if key not in self.SUPPORTED_KWARGS:
                raise _unknown_key_error("ParallelContextConfig", key, self.SUPPORTED_KWARGS)
        self.extra = dict(kwargs)

    def auto_parallel_kwargs(self, device_num: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"parallel_mode": self.parallel_mode.lower(),
                                  "device_num": device_num, **self.extra}
        if self.parallel_mode != "STAND_ALONE":  # stand_alone rejects gradients_mean
            kwargs["gradients_mean"] = self.gradients_mean
        return kwargs

    def __repr__(self) -> str:
        return (f"ParallelContextConfig(parallel_mode={self.parallel_mode!r}, "
                f"device_num={self.device_num!r}, gradients_mean={self.gradients_mean}, "
                f"extra={self.extra!r})")


def launched_by_msrun() -> bool:
    """Whether this process is a rank started by msrun (which exports the cluster's env)."""
    return bool(os.environ.get("MS_ROLE")) and bool(os.environ.get("MS_WORKER_NUM"))


def _first_line(exc: BaseException) -> str:
    # MindSpore errors carry a C++ stack after the first line; people need only the first.
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def _check_modes(context: ContextConfig, parallel: ParallelContextConfig) -> None:
    mode = parallel.parallel_mode
    if context.device_target == "CPU" and mode not in CPU_PARALLEL_MODES:
        raise ParallelConfigError(
            f"parallel_mode {mode!r} does not run on device_target 'CPU' (MindSpore supports only "
            f"{' and '.join(CPU_PARALLEL_MODES)} there); use DATA_PARALLEL: mf shards tensor and "
            f"pipeline parallel layers itself on CPU"
        )
    if context.mode == MODES["PYNATIVE_MODE"] and mode not in PYNATIVE_PARALLEL_MODES:
        raise ParallelConfigError(
            f"parallel_mode {mode!r} needs mode=0 (GRAPH_MODE); PyNative runs only "
            f"{' and '.join(PYNATIVE_PARALLEL_MODES)}"
        )


def init_context(
    use_parallel: bool = False,
    context_config: ContextConfig | None = None,
    parallel_config: ParallelContextConfig | None = None,
) -> tuple[int, int]:
    """Set MindSpore's context, join the cluster if `use_parallel`; return (rank_id, device_num).

    Without `use_parallel` this process is rank 0 of 1. With it, the process must have been
    started by msrun; the rank and the number of devices come from the cluster.
    """
    if not isinstance(use_parallel, bool):
        raise ParallelConfigError(f"use_parallel must be true or false, got {use_parallel!r}")
    context_config = context_config or ContextConfig()
    parallel_config = parallel_config or ParallelContextConfig(
        parallel_mode="DATA_PARALLEL" if use_parallel else "STAND_ALONE")
    if use_parallel:
        _check_modes(context_config, parallel_config)
        if not launched_by_msrun():
            raise ParallelConfigError(
                "use_parallel=True, but this process was not started by msrun (MS_ROLE and "
                "MS_WORKER_NUM are unset); launch it with `msrun --worker_num=N "
                "--local_worker_num=N script.py`"
            )

    import mindspore as ms  # lazily: ~2 s, and only the ranks need it

    try:
        ms.set_context(**context_config.set_context_kwargs())
        if context_config.device_id is None or context_config.device_target == "CPU":
            ms.set_device(context_config.device_target)
        else:
            ms.set_device(context_config.device_target, context_config.device_id)
    except (ValueError, TypeError) as exc:
        raise ParallelConfigError(f"MindSpore rejected the context: {_first_line(exc)}") from exc
    except Exception as exc:  # noqa: BLE001 - MindSpore raises RuntimeError from C++
        raise ParallelError(f"could not set MindSpore's context: {_first_line(exc)}") from exc
    if not use_parallel:
        return 0, 1

    from mindspore import communication

    try:
        communication.init()
        rank_id = communication.get_rank()
        device_num = communication.get_group_size()
    except Exception as exc:  # noqa: BLE001
        raise ParallelError(f"could not join the cluster: {_first_line(exc)}") from exc
    if parallel_config.device_num is not None and parallel_config.device_num != device_num:
        raise ParallelConfigError(
            f"device_num({parallel_config.device_num}) does not match the cluster, which msrun "
            f"started with {device_num} ranks"
        )
    try:
        ms.set_auto_parallel_context(**parallel_config.auto_parallel_kwargs(device_num))
    except (ValueError, TypeError) as exc:
        raise ParallelConfigError(
            f"MindSpore rejected the parallel context: {_first_line(exc)}"
        ) from exc
    except Exception as exc:  # noqa: BLE001
        raise ParallelError(f"could not set the parallel context: {_first_line(exc)}") from exc
    return rank_id, device_num
