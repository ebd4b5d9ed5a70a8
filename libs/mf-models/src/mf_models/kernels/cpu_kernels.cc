// Fused fp32 CPU kernels for MindSpore's ops.Custom(func_type="aot"): each replaces a chain of
// 4-13 built-in kernels with one call (mf_models/kernels/__init__.py builds and loads them).
//
// Every entry point has MindSpore's AOT signature: params holds the inputs, then the outputs;
// shapes[i] / ndims[i] describe params[i]. All tensors are contiguous float32; the Python side
// only calls these for float32 inputs. Rows are the leading dimensions flattened, columns the
// last one.
//
// Why: a built-in CPU kernel costs ~10-20 us of runtime around it whatever its size, so an
// RMSNorm written as Square, ReduceMean, Add, Rsqrt, Mul, Mul costs six of those per call
// (~400 kernels per LLaMA decode step, issue 15). Large inputs (training) are split over
// threads by rows; small ones (decode) run inline, where a thread hand-off would cost more
// than the work.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

int g_threads = 1;  // set from Python: the kernel threads mf gives each rank

// Work below this many elements runs on the calling thread.
constexpr int64_t kParallelElements = 1 << 15;

// fn(first_row, end_row, part) over [0, rows), split into at most g_threads parts.
template <typename Fn>
int parallel_rows(int64_t rows, int64_t cols, Fn fn) {
  int parts = static_cast<int>(std::min<int64_t>(g_threads, rows));
  if (parts <= 1 || rows * cols < kParallelElements) {
    fn(0, rows, 0);
    return 1;
  }
  std::vector<std::thread> workers;
  int64_t step = (rows + parts - 1) / parts;
  for (int p = 1; p < parts; ++p) {
    int64_t first = p * step, end = std::min(rows, first + step);
    if (first < end) workers.emplace_back(fn, first, end, p);
  }
  fn(0, std::min(rows, step), 0);
  for (auto &w : workers) w.join();
  return parts;
}

int64_t leading(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim - 1; ++i) n *= shape[i];
  return n;
}

float *f32(void *p) { return static_cast<float *>(p); }

float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

// GELU's tanh form as x * sigmoid(x * (A + B x^2)) (Hendrycks & Gimpel 2016), as layers.py.
constexpr float kGeluA = 1.5957691216057308f;  // 2 sqrt(2 / pi)
constexpr float kGeluB = kGeluA * 0.044715f;

// Column sums of per-part partial sums (parts x cols) into out (cols).
void sum_parts(const std::vector<float> &partial, int parts, int64_t cols, float *out) {
  for (int64_t j = 0; j < cols; ++j) {
    float s = 0.f;
    for (int p = 0; p < parts; ++p) s += partial[p * cols + j];
    out[j] = s;
  }
}

}  // namespace

extern "C" {

void mf_set_threads(int threads) { g_threads = std::max(1, threads); }

// y = w * (x / sqrt(mean(x^2) + eps)) over the last axis. Inputs x (..., C), w (C,), eps (1,).
int mf_rms_norm(int, void **params, int *ndims, int64_t **shapes, const char **, void *,
                void *) {
  const float *x = f32(params[0]), *w = f32(params[1]);
  const float eps = f32(params[2])[0];
  float *y = f32(params[3]);
  const int64_t c = shapes[0][ndims[0] - 1], n = leading(ndims[0], shapes[0]);
  parallel_rows(n, c, [&](int64_t first, int64_t end, int) {
    for (int64_t r = first; r < end; ++r) {
      const float *xr = x + r * c;
      float *yr = y + r * c;
      float sq = 0.f;
      for (int64_t j = 0; j < c; ++j) sq += xr[j] * xr[j];
      const float inv = 1.f / std::sqrt(sq / c + eps);
      for (int64_t j = 0; j < c; ++j) yr[j] = w[j] * (xr[j] * inv);
    }
  });
  return 0;
}

// The gradient of mf_rms_norm: inputs x, w, eps, dy; outputs dx (..., C) and dw (C,).
// With r = 1 / sqrt(mean(x^2) + eps): dx = r w dy - x r^3 mean(w dy x), dw = sum_rows dy x r.
int mf_rms_norm_grad(int, void **params, int *ndims, int64_t **shapes, const char **, void *,
                     void *) {
  const float *x = f32(params[0]), *w = f32(params[1]), *dy = f32(params[3]);
  const float eps = f32(params[2])[0];
  float *dx = f32(params[4]), *dw = f32(params[5]);
  const int64_t c = shapes[0][ndims[0] - 1], n = leading(ndims[0], shapes[0]);
  std::vector<float> partial(static_cast<size_t>(std::max(1, g_threads)) * c, 0.f);
  int parts = parallel_rows(n, c, [&](int64_t first, int64_t end, int part) {
    float *dw_part = partial.data() + part * c;
    for (int64_t r = first; r < end; ++r) {
      const float *xr = x + r * c, *gr = dy + r * c;
      float *dxr = dx + r * c;
      float sq = 0.f, dot = 0.f;
      for (int64_t j = 0; j < c; ++j) {
        sq += xr[j] * xr[j];
        dot += w[j] * gr[j] * xr[j];
      }
      const float inv = 1.f / std::sqrt(sq / c + eps);
      const float k = dot * inv * inv * inv / c;
      for (int64_t j = 0; j < c; ++j) {
        dxr[j] = inv * w[j] * gr[j] - xr[j] * k;
        dw_part[j] += gr[j] * xr[j] * inv;
      }
    }
  });
  sum_parts(partial, parts, c, dw);
  return 0;
}

// Rotary embedding, "rotate half" layout (Su et al. 2021; HF LLaMA): for d < D/2
//   y[d] = x[d] cos[d] - x[d + D/2] sin[d],  y[d + D/2] = x[d + D/2] cos[d + D/2] + x[d] sin[d + D/2].
// x (B, H, T, D), cos and sin (B, 1, T, D). `sign` -1 gives the transpose (the gradient, since
// the tables repeat their first half: sin[d] == sin[d + D/2]).
static int rope(void **params, int64_t **shapes, float sign) {
  const float *x = f32(params[0]), *cs = f32(params[1]), *sn = f32(params[2]);
  float *y = f32(params[3]);
  const int64_t b = shapes[0][0], h = shapes[0][1], t = shapes[0][2], d = shapes[0][3];
  const int64_t half = d / 2;
  parallel_rows(b * h * t, d, [&](int64_t first, int64_t end, int) {
    for (int64_t r = first; r < end; ++r) {
      const int64_t bi = r / (h * t), ti = r % t;
      const float *xr = x + r * d, *c = cs + (bi * t + ti) * d, *s = sn + (bi * t + ti) * d;
      float *yr = y + r * d;
      for (int64_t j = 0; j < half; ++j) {
        yr[j] = xr[j] * c[j] - sign * xr[j + half] * s[j];
        yr[j + half] = xr[j + half] * c[j + half] + sign * xr[j] * s[j + half];
      }
    }
  });
  return 0;
}

int mf_rope(int, void **params, int *, int64_t **shapes, const char **, void *, void *) {
  return rope(params, shapes, 1.f);
}

int mf_rope_grad(int, void **params, int *, int64_t **shapes, const char **, void *, void *) {
  return rope(params, shapes, -1.f);
}

// SwiGLU's gating (Shazeer 2020): y = silu(gate) * up, silu(a) = a sigmoid(a).
int mf_silu_mul(int, void **params, int *ndims, int64_t **shapes, const char **, void *,
                void *) {
  const float *a = f32(params[0]), *u = f32(params[1]);
  float *y = f32(params[2]);
  const int64_t c = shapes[0][ndims[0] - 1], n = leading(ndims[0], shapes[0]);
  parallel_rows(n, c, [&](int64_t first, int64_t end, int) {
    for (int64_t i = first * c; i < end * c; ++i) y[i] = a[i] * sigmoid(a[i]) * u[i];
  });
  return 0;
}

// Inputs gate, up, dy; outputs d_gate = dy up silu'(gate), d_up = dy silu(gate), with
// silu'(a) = s (1 + a (1 - s)), s = sigmoid(a).
int mf_silu_mul_grad(int, void **params, int *ndims, int64_t **shapes, const char **, void *,
                     void *) {
  const float *a = f32(params[0]), *u = f32(params[1]), *dy = f32(params[2]);
  float *da = f32(params[3]), *du = f32(params[4]);
  const int64_t c = shapes[0][ndims[0] - 1], n = leading(ndims[0], shapes[0]);
  parallel_rows(n, c, [&](int64_t first, int64_t end, int) {
    for (int64_t i = first * c; i < end * c; ++i) {
      const float s = sigmoid(a[i]);
      da[i] = dy[i] * u[i] * s * (1.f + a[i] * (1.f - s));
      du[i] = dy[i] * a[i] * s;
    }
  });
  return 0;
}

// y = gelu(x + bias): x (..., F), bias (F,).
int mf_bias_gelu(int, void **params, int *ndims, int64_t **shapes, const char **, void *,
                 void *) {
  const float *x = f32(params[0]), *bias = f32(params[1]);
  float *y = f32(params[2]);
  const int64_t c = shapes[0][ndims[0] - 1], n = leading(ndims[0], shapes[0]);
  parallel_rows(n, c, [&](int64_t first, int64_t end, int) {
    for (int64_t r = first; r < end; ++r) {
      for (int64_t j = 0; j < c; ++j) {
        const float v = x[r * c + j] + bias[j];
        y[r * c + j] = v * sigmoid(v * (kGeluA + kGeluB * v * v));
      }
    }
  });
  return 0;
}

// Inputs x, bias, dy; outputs dx = dy gelu'(x + bias) and dbias = sum_rows dx, with
// gelu'(v) = s + v s (1 - s) (A + 3 B v^2), s = sigmoid(v (A + B v^2)).
int mf_bias_gelu_grad(int, void **params, int *ndims, int64_t **shapes, const char **, void *,
                      void *) {
  const float *x = f32(params[0]), *bias = f32(params[1]), *dy = f32(params[2]);
  float *dx = f32(params[3]), *db = f32(params[4]);
  const int64_t c = shapes[0][ndims[0] - 1], n = leading(ndims[0], shapes[0]);
  std::vector<float> partial(static_cast<size_t>(std::max(1, g_threads)) * c, 0.f);
  int parts = parallel_rows(n, c, [&](int64_t first, int64_t end, int part) {
    float *db_part = partial.data() + part * c;
    for (int64_t r = first; r < end; ++r) {
      for (int64_t j = 0; j < c; ++j) {
        const float v = x[r * c + j] + bias[j];
        const float s = sigmoid(v * (kGeluA + kGeluB * v * v));
        const float g = dy[r * c + j] * (s + v * s * (1.f - s) * (kGeluA + 3.f * kGeluB * v * v));
        dx[r * c + j] = g;
        db_part[j] += g;
      }
    }
  });
  sum_parts(partial, parts, c, db);
  return 0;
}

// LayerNorm's gradient (Ba et al. 2016) from x, gamma, eps and dy; outputs dx (..., C),
// dgamma and dbeta (C,). With xhat = (x - mean) r, r = 1 / sqrt(var + eps), g = gamma dy:
//   dx = r (g - mean(g) - xhat mean(g xhat)), dgamma = sum_rows dy xhat, dbeta = sum_rows dy.
int mf_layer_norm_grad(int, void **params, int *ndims, int64_t **shapes, const char **, void *,
                       void *) {
  const float *x = f32(params[0]), *gamma = f32(params[1]), *dy = f32(params[3]);
  const float eps = f32(params[2])[0];
  float *dx = f32(params[4]), *dgamma = f32(params[5]), *dbeta = f32(params[6]);
  const int64_t c = shapes[0][ndims[0] - 1], n = leading(ndims[0], shapes[0]);
  const size_t slots = static_cast<size_t>(std::max(1, g_threads)) * c;
  std::vector<float> partial_gamma(slots, 0.f), partial_beta(slots, 0.f);
  int parts = parallel_rows(n, c, [&](int64_t first, int64_t end, int part) {
    float *pg = partial_gamma.data() + part * c, *pb = partial_beta.data() + part * c;
    for (int64_t r = first; r < end; ++r) {
      const float *xr = x + r * c, *gr = dy + r * c;
      float *dxr = dx + r * c;
      float sum = 0.f;
      for (int64_t j = 0; j < c; ++j) sum += xr[j];
      const float mean = sum / c;
      float var = 0.f;
      for (int64_t j = 0; j < c; ++j) var += (xr[j] - mean) * (xr[j] - mean);
      const float inv = 1.f / std::sqrt(var / c + eps);
      float g_mean = 0.f, gx_mean = 0.f;
      for (int64_t j = 0; j < c; ++j) {
        const float xhat = (xr[j] - mean) * inv, g = gamma[j] * gr[j];
        g_mean += g;
        gx_mean += g * xhat;
        pg[j] += gr[j] * xhat;
        pb[j] += gr[j];
      }
      g_mean /= c;
      gx_mean /= c;
      for (int64_t j = 0; j < c; ++j) {
        const float xhat = (xr[j] - mean) * inv;
        dxr[j] = inv * (gamma[j] * gr[j] - g_mean - xhat * gx_mean);
      }
    }
  });
  sum_parts(partial_gamma, parts, c, dgamma);
  sum_parts(partial_beta, parts, c, dbeta);
  return 0;
}

// Attention of new queries over a whole KV cache (Vaswani et al. 2017), no gradient (decoding):
//   out[b, t, h D:(h+1) D] = softmax(q[b, h, t] . K[b, h / G]^T / sqrt(D) + bias[b, h?, t]) V
// Inputs q (B, H, T, D); keys and values as the cache stores them, rows (B KV S, D) (reading
// them as (B, KV, S, D) would copy both caches every layer: MindSpore's Reshape of the
// ScatterUpdate output is a copy); bias (B, 1 or H, T, S) float32, 0 or -1e9. Output
// (B, T, H D), what the output projection reads. G = H / KV heads share one key/value head.
int mf_cached_attention(int, void **params, int *, int64_t **shapes, const char **, void *,
                        void *) {
  const float *q = f32(params[0]), *keys = f32(params[1]), *values = f32(params[2]);
  const float *bias = f32(params[3]);
  float *out = f32(params[4]);
  const int64_t b = shapes[0][0], h = shapes[0][1], t = shapes[0][2], d = shapes[0][3];
  const int64_t s = shapes[3][3], bias_heads = shapes[3][1];
  const int64_t kv = shapes[1][0] / (b * s), group = h / kv;
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  parallel_rows(b * h, t * s * d / 8, [&](int64_t first, int64_t end, int) {
    std::vector<float> p(s), acc(d);
    for (int64_t r = first; r < end; ++r) {
      const int64_t bi = r / h, hi = r % h;
      const float *k0 = keys + (bi * kv + hi / group) * s * d;
      const float *v0 = values + (bi * kv + hi / group) * s * d;
      for (int64_t ti = 0; ti < t; ++ti) {
        const float *qr = q + (r * t + ti) * d;
        const float *br = bias + ((bi * bias_heads + (bias_heads == 1 ? 0 : hi)) * t + ti) * s;
        float top = -INFINITY;
        for (int64_t si = 0; si < s; ++si) {
          const float *kr = k0 + si * d;
          float lanes[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
          int64_t j = 0;
          for (; j + 8 <= d; j += 8)
            for (int l = 0; l < 8; ++l) lanes[l] += qr[j + l] * kr[j + l];
          float dot = 0.f;
          for (; j < d; ++j) dot += qr[j] * kr[j];
          for (int l = 0; l < 8; ++l) dot += lanes[l];
          p[si] = dot * scale + br[si];
          top = std::max(top, p[si]);
        }
        float total = 0.f;
        for (int64_t si = 0; si < s; ++si) total += (p[si] = std::exp(p[si] - top));
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t si = 0; si < s; ++si) {
          if (p[si] == 0.f) continue;  // a masked slot (exp(-1e9) underflows to 0)
          const float *vr = v0 + si * d;
          for (int64_t j = 0; j < d; ++j) acc[j] += p[si] * vr[j];
        }
        float *o = out + ((bi * t + ti) * h + hi) * d;
        for (int64_t j = 0; j < d; ++j) o[j] = acc[j] / total;
      }
    }
  });
  return 0;
}

}  // extern "C"
