"""The run YAML: MindFormers' `run_*.yaml` schema, `base_config` inheritance, `--options`."""

from mf_train.run_yaml.config import (
    TRAJECTORY_KEYS,
    DerivedValue,
    RunConfig,
    check_run_config,
    load_run_config,
    run_config_from_mapping,
)
from mf_train.run_yaml.load import apply_options, apply_overrides, deep_merge, parse_option

__all__ = [
    "TRAJECTORY_KEYS",
    "DerivedValue",
    "RunConfig",
    "apply_options",
    "apply_overrides",
    "check_run_config",
    "deep_merge",
    "load_run_config",
    "parse_option",
    "run_config_from_mapping",
]
