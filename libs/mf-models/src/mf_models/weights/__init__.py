"""Weights in and out: safetensors, MindSpore .ckpt (MindFormers names), HF import/export."""
