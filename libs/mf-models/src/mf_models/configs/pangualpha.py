"""PanGu-Alpha config and presets (Zeng et al. 2021, arXiv:2104.12369; MindFormers
`PanguAlphaConfig`)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from mf_models.configs.base import ModelConfig
from mf_models.configs.shapes import mindformers_block, norm
from mf_models.errors import ModelConfigError

# "fast_gelu" is MindSpore's FastGelu, x * sigmoid(1.702 x), MindFormers' default for PanGu;
# "gelu" is the tanh approximation (MindSpore nn.GELU).
ACTIVATIONS = ("fast_gelu", "gelu", "relu")

PRESETS: dict[str, dict[str, Any]] = {
    # MindFormers configs/pangualpha/run_pangualpha_2_6b.yaml; paper table 1 (2.6B row).
    "pangualpha_2_6b": dict(seq_length=1024, vocab_size=40000, hidden_size=2560,
                            ffn_hidden_size=10240, num_layers=32, num_heads=32),
    # Paper table 1 (13B row: 40 layers, hidden 5120, FFN 20480, 40 heads) and the original
    # PanGu-Alpha code (ffn = 4 * hidden). MindFormers' run_pangualpha_13b.yaml writes
    # ffn_hidden_size 10240, which would make an 8.6B model; we keep the published width.
    "pangualpha_13b": dict(seq_length=1024, vocab_size=40000, hidden_size=5120,
                           ffn_hidden_size=20480, num_layers=40, num_heads=40),
    # Tiny flavour for tests.
    "pangualpha_debug": dict(seq_length=128, vocab_size=1024, hidden_size=64,
                             ffn_hidden_size=256, num_layers=3, num_heads=4),
}

# MindFormers' shapes (its transformer module): dense1/2/3 (q, k, v) are (out, in); projection
# and mapping are (in, out). The Megatron split of GPT-2, for the blocks and the top query layer.
_BLOCK_PLAN: dict[str, tuple[str | None, ...]] = {
    "layernorm*.gamma": (None,),
    "layernorm*.beta": (None,),
    "attention.dense*.weight": ("mp", None),
    "attention.dense*.bias": ("mp",),
    "attention.projection.weight": ("mp", None),
    "attention.projection.bias": (None,),
    "output.mapping.weight": (None, "mp"),
    "output.mapping.bias": ("mp",),
    "output.projection.weight": ("mp", None),
    "output.projection.bias": (None,),
}
SHARDING_PLAN: dict[str, tuple[str | None, ...]] = {
    "backbone.embedding.word_embedding.embedding_table": ("mp", None),
    "backbone.embedding.position_embedding.embedding_table": (None, None),
    "backbone.top_query_embedding.embedding_table": (None, None),
    **{f"backbone.blocks.*.{name}": spec for name, spec in _BLOCK_PLAN.items()},
    **{f"backbone.top_query_layer.{name}": spec for name, spec in _BLOCK_PLAN.items()},
    "backbone.layernorm.gamma": (None,),
    "backbone.layernorm.beta": (None,),
}


@dataclasses.dataclass
class PanguAlphaConfig(ModelConfig):
    """PanGu-Alpha: GPT-style pre-LayerNorm blocks with learned positions, then a top query
    layer whose query is a learned embedding of the position; head tied to the embedding.

    `num_layers` counts the top query layer, as MindFormers does: num_layers - 1 blocks + 1.
    """

    family: ClassVar[str] = "pangualpha"
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    # The seed README's model matrix spells the 2.6B model `pangualpha_2_6_b`.
    preset_aliases: ClassVar[dict[str, str]] = {"pangualpha_2_6_b": "pangualpha_2_6b"}
    sharding_plan: ClassVar[dict[str, tuple[str | None, ...]]] = SHARDING_PLAN

    seq_length: int = 1024
    vocab_size: int = 40000
    hidden_size: int = 2560
    ffn_hidden_size: int = 10240
    num_layers: int = 32
    num_heads: int = 32
    hidden_act: str = "fast_gelu"
    post_layernorm_residual: bool = False
    # MindFormers' LayerNorm default.
    layernorm_epsilon: float = 1e-5
    # The original code's eod_id and padding_id (its src/utils.py): both 6.
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = 6
    pad_token_id: int | None = 6

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden_act not in ACTIVATIONS:
            raise ModelConfigError(
                f"hidden_act={self.hidden_act!r} is not one of {', '.join(ACTIVATIONS)}")
        if self.post_layernorm_residual:
            raise ModelConfigError("post_layernorm_residual=True is not supported for "
                                   "pangualpha; only False (the published models') is")
        if isinstance(self.ffn_hidden_size, bool) or not isinstance(
                self.ffn_hidden_size, int) or self.ffn_hidden_size < 1:
            raise ModelConfigError(
                f"ffn_hidden_size={self.ffn_hidden_size!r} must be a positive integer")

    def parameter_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        c, f, p = self.hidden_size, self.ffn_hidden_size, self.seq_length
        shapes = [("backbone.embedding.word_embedding.embedding_table", (self.vocab_size, c)),
                  ("backbone.embedding.position_embedding.embedding_table", (p, c))]
        # num_layers - 1 blocks, then the top query layer (the same shapes) after a LayerNorm.
        for i in range(self.num_layers - 1):
            shapes += mindformers_block(f"backbone.blocks.{i}", c, f)
        shapes += norm("backbone.layernorm", c)
        shapes += [("backbone.top_query_embedding.embedding_table", (p, c))]
        return shapes + mindformers_block("backbone.top_query_layer", c, f)
