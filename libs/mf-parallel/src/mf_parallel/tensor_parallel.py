"""Vocabulary-parallel embedding lookup and cross-entropy (Megatron-LM, Shoeybi et al. 2019).

With the vocabulary split over a model-parallel group, member i holds rows [start, start + n)
of the embedding table and produces the logits of those n tokens only; the whole (B, T, V)
logits never exist on one rank.

- `VocabParallelLookup(group, start)(table_shard, ids)`: each member looks up the ids it owns
  (zeros elsewhere) and the group sums the rows (Megatron's g: the gradient needs no sum).
- `VocabParallelNLL(group, start)(logits_shard, targets)`: per-token -log softmax(logits)[target]
  over the whole vocabulary. Megatron subtracts a max taken with an AllReduce(MAX); MindSpore's
  CPU AllReduce only sums ("AllReduce only support reduce sum on CPU", measured), so each member
  takes the log-sum-exp of its shard (stable on its own), the group gathers those G numbers,
  and every member takes their log-sum-exp: log sum_i exp(lse_i) is the whole vocabulary's.
  Autodiff through the gather's own-slice backward gives exactly softmax - one_hot on each
  member's logits.

Cells; MindSpore is imported on first use.
"""

from __future__ import annotations

import functools
from typing import Any

from mf_parallel import collectives
from mf_parallel.collectives import Group


@functools.cache
def _vocab_cells() -> dict[str, type]:
    from mindspore import dtype as mstype
    from mindspore import nn, ops

    def owned(ids, start: int, size: int):
        """(ids - start where this member owns the id, else 0; 1.0 where owned, else 0.0)."""
        local = ids - start
        mine = ops.logical_and(local >= 0, local < size)
        return ops.where(mine, local, ops.zeros_like(local)), ops.cast(mine, mstype.float32)

    class VocabParallelLookup(nn.Cell):
        """Rows of the whole table for ids (B, T) -> (B, T, C), from this member's shard."""

        def __init__(self, group: Group, start: int):
            super().__init__()
            self.start = start
            self.reduce = collectives.ReduceFromGroup(group)

        def construct(self, table, ids):
            local, mine = owned(ids, self.start, table.shape[0])
            rows = ops.gather(table, local, 0)  # (B, T, C); row 0 where not owned
            rows = rows * ops.cast(mine, rows.dtype).expand_dims(-1)
            return self.reduce(rows)

    class VocabParallelNLL(nn.Cell):
        """-log p(target) (B, T) from this member's logits shard (B, T, V / G), float32."""

        def __init__(self, group: Group, start: int):
            super().__init__()
            self.start = start
            self.size = group.size
            self.gather = collectives.GatherFromGroup(group, -1)
            self.reduce = collectives.ReduceFromGroup(group)

        def construct(self, logits, targets):
            logits = ops.cast(logits, mstype.float32)
            b, t, v = logits.shape
            shard_lse = ops.logsumexp(logits, -1, keepdim=True)  # (B, T, 1)
            lse = ops.logsumexp(self.gather(shard_lse), -1)  # (B, T): the whole vocabulary's
            local, mine = owned(targets, self.start, v)
            picked = ops.gather_elements(logits.reshape(b * t, v), 1, local.reshape(b * t, 1))
            target_logit = self.reduce(picked.reshape(b, t) * mine)  # only the owner's counts
            return lse - target_logit

    return {"VocabParallelLookup": VocabParallelLookup, "VocabParallelNLL": VocabParallelNLL}


def __getattr__(name: str) -> Any:
    if name in ("VocabParallelLookup", "VocabParallelNLL"):
        return _vocab_cells()[name]
    raise AttributeError(f"module 'mf_parallel.tensor_parallel' has no attribute {name!r}")
