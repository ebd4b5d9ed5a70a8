"""The run YAML schema: MindFormers' `run_*.yaml` key tree as typed sections.

The key tree and defaults follow MindFormers' configs (`configs/gpt2/run_gpt2.yaml`,
`configs/llama/run_llama_7b.yaml`, `mindformers/trainer/training_args.py`). Keys MindFormers
accepts that act on nothing here (Ascend graph-kernel flags, profiling, ModelArts upload, ...)
are listed in each section's `INERT`: read and reported, never silently dropped. Sections that
belong to another library stay plain mappings: `model.model_config` and `model.arch` (resolved
by mf-models), `processor` and the dataset `tokenizer` (mf-tokenize), `moe_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mf_train.run_yaml.typed import Section

RUN_MODES = ("train", "finetune", "eval", "predict")
DATA_LOADERS = ("MindDataset", "TextFileDataset", "JsonLinesDataset", "PythonStdlibDataset",
                # the trainer tasks' (mf_train.task_data): CSV, image folders, generated examples
                "CSVDataset", "ImageFolderDataset", "SyntheticTaskDataset")
"""`MindDataset` is MindFormers' MindRecord reader; the others read raw text (mf's own):
`PythonStdlibDataset` is the `.py` sources of the running Python's standard library, text every
machine has (the default job trains on it)."""
SPLITS = ("all", "train", "eval")
"""`data_loader.split` of PythonStdlibDataset: every file, or the train / held-out eval files."""


@dataclass
class ContextConfig(Section):
    INERT = frozenset({"enable_graph_kernel", "graph_kernel_flags", "max_call_depth",
                       "max_device_memory", "save_graphs", "save_graphs_path", "device_id",
                       "jit_config", "memory_optimize_level", "mempool_block_size",
                       "runtime_num_threads", "ascend_config", "enable_compile_cache"})
    mode: int = 0  # 0 = GRAPH_MODE, 1 = PYNATIVE_MODE
    device_target: str = "CPU"  # MindFormers' configs say "Ascend"; CPU is what every box has
    device_id: int = 0
    enable_graph_kernel: bool = False
    graph_kernel_flags: str = "--opt_level=0"
    max_call_depth: int = 10000
    max_device_memory: str = "1024GB"
    save_graphs: bool | int = False
    save_graphs_path: str = "./graph"
    jit_config: dict[str, Any] = field(default_factory=dict)
    memory_optimize_level: str = "O0"
    mempool_block_size: str = "1GB"
    runtime_num_threads: int | None = None
    ascend_config: dict[str, Any] = field(default_factory=dict)
    enable_compile_cache: bool = False


@dataclass
class ParallelContext(Section):
    """MindSpore's auto-parallel context (`parallel:`); on CPU only data parallel applies."""

    INERT = frozenset({"search_mode", "enable_alltoall", "full_batch", "enable_parallel_optimizer",
                       "strategy_ckpt_save_file", "strategy_ckpt_config",
                       "parallel_optimizer_config", "dataset_strategy", "loss_repeated_mean"})
    parallel_mode: int = 0  # 0 data, 1 semi-auto, 2 auto, 3 hybrid
    gradients_mean: bool = True
    enable_alltoall: bool = False
    full_batch: bool = True
    search_mode: str = "sharding_propagation"
    enable_parallel_optimizer: bool = False
    strategy_ckpt_save_file: str = "./ckpt_strategy.ckpt"
    strategy_ckpt_config: dict[str, Any] = field(default_factory=dict)
    parallel_optimizer_config: dict[str, Any] = field(default_factory=dict)
    dataset_strategy: str | list[Any] = "full_batch"
    loss_repeated_mean: bool = False
    # MindSpore's pipeline_scheduler ("1f1b" | "gpipe") picks mf's pipeline schedule
    pipeline_config: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParallelConfigSection(Section):
    """`parallel_config:` the degrees; mapped to mf-parallel's ParallelConfig in `parallel.py`."""

    data_parallel: int = 1
    model_parallel: int = 1
    context_parallel: int = 1
    expert_parallel: int = 1
    pipeline_stage: int = 1
    micro_batch_num: int = 1
    use_seq_parallel: bool = False
    optimizer_shard: bool = False
    vocab_emb_dp: bool = True
    gradient_aggregation_group: int = 4


@dataclass
class RecomputeConfig(Section):
    INERT = frozenset({"parallel_optimizer_comm_recompute", "mp_comm_recompute",
                       "recompute_slice_activation"})
    recompute: bool | list[Any] = False
    select_recompute: bool | list[Any] = False
    parallel_optimizer_comm_recompute: bool = False
    mp_comm_recompute: bool = True
    recompute_slice_activation: bool = False


@dataclass
class RunnerConfig(Section):
    # Data sinking (MindSpore feeding `sink_size` steps to the device at once) and the
    # initial_* counters (a resume reads its position from the checkpoint) act on nothing here.
    INERT = frozenset({"sink_mode", "sink_size", "initial_epoch", "initial_step"})
    epochs: int = 1
    batch_size: int = 1  # per device, per micro batch
    sink_mode: bool = True
    sink_size: int = 2
    gradient_accumulation_steps: int = 1
    max_steps: int = -1  # not MindFormers': > 0 stops after this many steps (Hugging Face's name)
    initial_epoch: int = 0
    initial_step: int = 0


@dataclass
class OptimizerConfig(Section):
    type: str = "AdamW"
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.0
    learning_rate: float | None = None  # MindFormers lets either section carry it


@dataclass
class LrScheduleConfig(Section):
    type: str = "CosineWithWarmUpLR"
    learning_rate: float = 5e-5
    lr_end: float | None = None
    warmup_steps: int | None = None
    warmup_ratio: float | None = None
    warmup_lr_init: float = 0.0
    total_steps: int = -1  # -1: derived from the dataset (epochs * steps per epoch)
    num_cycles: float | None = None
    power: float = 1.0
    decay_steps: int | None = None


@dataclass
class DataLoaderConfig(Section):
    type: str = "MindDataset"
    dataset_dir: str = ""
    shuffle: bool = True
    text_key: str = "text"  # JsonLinesDataset: the field holding the text
    file_suffixes: list[str] = field(default_factory=lambda: [".txt"])  # TextFileDataset in a dir
    split: str = "all"  # PythonStdlibDataset: all, train, or eval (the held-out files)
    num_samples: int | None = None  # MindSpore's MindDataset name: read only the first N samples


@dataclass
class DatasetConfig(Section):
    INERT = frozenset({"num_parallel_workers", "python_multiprocessing", "numa_enable",
                       "prefetch_size"})
    data_loader: DataLoaderConfig = field(default_factory=DataLoaderConfig)
    tokenizer: dict[str, Any] = field(default_factory=dict)
    input_columns: list[str] = field(default_factory=lambda: ["input_ids"])
    output_columns: list[str] | None = None
    num_parallel_workers: int = 8
    python_multiprocessing: bool = False
    drop_remainder: bool = True
    batch_size: int | None = None  # MindFormers copies runner_config.batch_size here
    repeat: int = 1
    numa_enable: bool = False
    prefetch_size: int = 1
    seed: int | None = None


@dataclass
class EvalDataLoaderConfig(DataLoaderConfig):
    shuffle: bool = False


@dataclass
class EvalDatasetConfig(DatasetConfig):
    """The same keys as a train dataset; evaluation reads every sample once, in order."""

    data_loader: EvalDataLoaderConfig = field(default_factory=EvalDataLoaderConfig)
    drop_remainder: bool = False


@dataclass
class ModelSection(Section):
    model_config: dict[str, Any] = field(default_factory=dict)
    arch: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfigSchema(Section):
    """The top level of a run YAML."""

    INERT = frozenset({"moe_config", "profile",
                       "profile_start_step", "profile_stop_step", "init_start_profile",
                       "profile_communication", "profile_memory", "auto_tune",
                       "filepath_prefix", "autotune_per_step", "remote_save_url", "layer_scale",
                       "layer_decay", "lr_scale", "lr_scale_factor", "train_dataset_task",
                       "eval_dataset_task", "eval_callbacks"})
    seed: int = 0
    run_mode: str = "train"
    output_dir: str = "./output"
    overwrite_output_dir: bool = False  # TrainingArguments' name: replace an existing job dir
    load_checkpoint: str = ""
    src_strategy_path_or_dir: str = ""
    auto_trans_ckpt: bool = False
    only_save_strategy: bool = False
    resume_training: bool | str = False
    use_parallel: bool = False
    context: ContextConfig = field(default_factory=ContextConfig)
    parallel: ParallelContext = field(default_factory=ParallelContext)
    parallel_config: ParallelConfigSection = field(default_factory=ParallelConfigSection)
    micro_batch_interleave_num: int = 1
    moe_config: dict[str, Any] = field(default_factory=dict)
    recompute_config: RecomputeConfig = field(default_factory=RecomputeConfig)
    runner_config: RunnerConfig = field(default_factory=RunnerConfig)
    runner_wrapper: dict[str, Any] = field(default_factory=dict)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    lr_schedule: LrScheduleConfig = field(default_factory=LrScheduleConfig)
    layer_scale: bool = False
    layer_decay: float = 0.65
    lr_scale: bool = False
    lr_scale_factor: int = 256
    trainer: dict[str, Any] = field(default_factory=dict)
    train_dataset: DatasetConfig = field(default_factory=DatasetConfig)
    train_dataset_task: dict[str, Any] = field(default_factory=dict)
    eval_dataset: EvalDatasetConfig = field(default_factory=EvalDatasetConfig)
    eval_dataset_task: dict[str, Any] = field(default_factory=dict)
    do_eval: bool = False
    eval_step_interval: int = -1  # -1: no evaluation at step ends
    eval_epoch_interval: int = 50  # evaluate every N epochs (MindFormers' default)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    eval_callbacks: list[dict[str, Any]] = field(default_factory=list)
    metric: dict[str, Any] | list[dict[str, Any]] = field(
        default_factory=lambda: {"type": "PerplexityMetric"})
    model: ModelSection = field(default_factory=ModelSection)
    processor: dict[str, Any] = field(default_factory=dict)
    profile: bool = False
    profile_start_step: int = 1
    profile_stop_step: int = 10
    init_start_profile: bool = False
    profile_communication: bool = False
    profile_memory: bool = True
    auto_tune: bool = False
    filepath_prefix: str = "./autotune"
    autotune_per_step: int = 10
    remote_save_url: str = ""
