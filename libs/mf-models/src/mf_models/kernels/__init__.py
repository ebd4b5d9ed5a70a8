"""mf's fused CPU kernels: C++ (`cpu_kernels.cc`) run by MindSpore's `ops.Custom(func_type="aot")`.

    from mf_models.kernels import fused_ops
    ops = fused_ops()      # None: use the built-in path (no compiler, MF_CUSTOM_KERNELS=0, ...)
    y = ops.rms_norm(x, weight, eps)

Why: on CPU a built-in kernel costs ~10-20 us of runtime whatever its size, and a LLaMA decode
step was ~400 of them (issue 15; DESIGN.md "Custom kernels"). One custom call replaces an
RMSNorm's seven kernels, a rotary embedding's seven, SwiGLU's gating's three, a bias + GELU's
six, and LayerNorm's backward (22 ms per 2048 x 512 call in MindSpore's kernel).

The library is compiled once per source text with the system C++ compiler (`$CXX`, else g++,
else c++) into ~/.cache/mf/kernels/<source hash>/ (or $MF_HOME/kernels), written under a
temporary name and renamed, so concurrent ranks never load half a file. Where no compiler is
found, the compile fails, or `MF_CUSTOM_KERNELS=0` is set, every caller keeps its built-in
MindSpore path (one line on stderr says why, once) -- the results agree to float rounding
(tests/test_kernels.py checks both paths, forward and gradient).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("cpu_kernels.cc")
LIBRARY = "mf_cpu_kernels.so"
SWITCH = "MF_CUSTOM_KERNELS"  # "0" turns the custom kernels off
FLAGS = ["-O3", "-std=c++17", "-shared", "-fPIC", "-pthread"]
COMPILE_TIMEOUT_S = 300


def cache_dir() -> Path:
    """Where compiled kernels live: $MF_HOME/kernels or ~/.cache/mf/kernels."""
    home = os.environ.get("MF_HOME")
    return (Path(home).expanduser() if home else Path("~/.cache/mf").expanduser()) / "kernels"


def compiler() -> str | None:
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def build(directory: Path | None = None) -> Path:
    """The compiled library for this source text, compiled now if not cached. Raises
    RuntimeError with one line saying why it cannot be built."""
    text = SOURCE.read_bytes()
    digest = hashlib.sha256(text + " ".join(FLAGS).encode()).hexdigest()[:16]
    target = (directory or cache_dir()) / digest / LIBRARY
    if target.is_file():
        return target
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler found ($CXX, g++, c++)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{LIBRARY}.", dir=target.parent)
    os.close(fd)
    try:
        result = subprocess.run([cxx, *FLAGS, "-o", tmp, str(SOURCE)], capture_output=True,
                                text=True, timeout=COMPILE_TIMEOUT_S, check=False)
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise RuntimeError(f"{Path(cxx).name} failed on {SOURCE.name}: "
                               f"{lines[0] if lines else result.returncode}")
        os.replace(tmp, target)  # atomic: another rank sees no file or a whole one
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{Path(cxx).name} took over {COMPILE_TIMEOUT_S} s") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def enabled() -> bool:
    return os.environ.get(SWITCH, "1").strip() not in ("0", "false", "no", "off")


@functools.lru_cache(maxsize=1)
def fused_ops() -> FusedOps | None:
    """The fused ops of this process, or None (the caller then uses its built-in path)."""
    if not enabled():
        return None
    try:
        path = build()
        return FusedOps(path)
    except (OSError, RuntimeError) as exc:
        print(f"mf: custom CPU kernels off, built-in kernels used instead ({exc}); "
              f"set {SWITCH}=0 to skip this attempt", file=sys.stderr)
        return None


def status() -> str:
    """One line for benchmark headers: whether the fused kernels are in use."""
    if not enabled():
        return f"custom kernels off ({SWITCH}=0)"
    return "custom kernels on" if fused_ops() is not None else "custom kernels off (no build)"


def _same(x, *rest):
    """Output shape/dtype inference: the first input's."""
    return x


def _first_two(a, b, *rest):
    return a, b


def _x_and_params(x, param, *rest):
    return x, param, param


def _attention_out(q, *rest):
    """(B, H, T, D) queries -> (B, T, H * D)."""
    return q[0], q[2], q[1] * q[3]


def _first_dtype(q, *rest):
    return q


class FusedOps:
    """The Custom primitives over one compiled library, each with its gradient as `bprop`."""

    def __init__(self, path: Path):
        import ctypes

        from mf_parallel.runtime import kernel_threads, local_ranks
        from mindspore import ops

        lib = ctypes.CDLL(str(path))  # the same handle MindSpore dlopens: one thread setting
        written = os.environ.get("MF_KERNEL_THREADS", "")
        lib.mf_set_threads(int(written) if written.isdigit() and int(written) > 0
                           else kernel_threads(local_ranks()))

        def custom(name, shape, bprop=None, dtype=None):
            return ops.Custom(f"{path}:{name}", out_shape=shape, out_dtype=dtype or shape,
                              func_type="aot", bprop=bprop)

        rms_norm_grad = custom("mf_rms_norm_grad", _first_two)
        rope_grad = custom("mf_rope_grad", _same)
        silu_mul_grad = custom("mf_silu_mul_grad", _first_two)
        bias_gelu_grad = custom("mf_bias_gelu_grad", _first_two)
        self.layer_norm_grad = custom("mf_layer_norm_grad", _x_and_params)

        def rms_norm_bprop(x, weight, eps, out, dout):
            dx, dweight = rms_norm_grad(x, weight, eps, dout)
            return dx, dweight, ops.zeros_like(eps)

        def rope_bprop(x, cos, sin, out, dout):
            return rope_grad(dout, cos, sin), ops.zeros_like(cos), ops.zeros_like(sin)

        def silu_mul_bprop(gate, up, out, dout):
            return silu_mul_grad(gate, up, dout)

        def bias_gelu_bprop(x, bias, out, dout):
            return bias_gelu_grad(x, bias, dout)

        self.rms_norm_op = custom("mf_rms_norm", _same, rms_norm_bprop)
        self.rope = custom("mf_rope", _same, rope_bprop)
        self.silu_mul = custom("mf_silu_mul", _same, silu_mul_bprop)
        self.bias_gelu = custom("mf_bias_gelu", _same, bias_gelu_bprop)
        # Decoding only (a cached step is never differentiated): no bprop.
        self.cached_attention = custom("mf_cached_attention", _attention_out,
                                       dtype=_first_dtype)
