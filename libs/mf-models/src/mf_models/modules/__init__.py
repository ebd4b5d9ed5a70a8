"""Building blocks shared by the families: only what is truly common (layers, attention, RoPE,
the KV cache). Everything here imports MindSpore."""
