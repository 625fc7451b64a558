// The messages of NequIP's `uvu` convolution as one CPU kernel with its own autograd node
// (src/e3nn/uvu_native.rs explains the plan and the layouts; it is the only caller).
//
// Four tensors take part; for edge z with centre c(z) and neighbour n(z):
//   G  node sums of the messages  G[c(z), o + k*ks + u*us]  path output component k, channel u
//   X  node features              X[n(z), x + u*d1 + a]  e3nn's mul-major block of the input irrep
//   R  sh @ CG (per edge)         R[z, r + k*d1 + a]     the path's (path-weighted) CG contraction
//   W  weights (per edge)         W[z, w + u]            the path's per-edge weights
// and every edge z and path p contribute G_p(k,u) * W_p(u) * R_p(k,a) * X_p(a,u) to the scalar
// F(G, X, R, W) = sum over z, p, k, a, u. The forward computes G = dF/dG (gather of the
// neighbours' features, tensor product, scatter-sum to the centres: no edge-sized messages);
// the derivative of <g, dF/dT> with respect to another tensor Y is dF/dY with T replaced by g,
// so the backward of "compute T" is "compute Y" for the other three roles, again through this
// node: first and second derivatives stay in one kernel.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

enum Role { G = 0, X = 1, R = 2, W = 3 };

struct Path {
  int64_t x, d1, u, r, d3, w, o, ks, us;  // G[o + k*ks + u*us]
};
constexpr int64_t kPathInts = 9;

// plan = [per_sample, dim_G, dim_X, dim_R, dim_W, then 9 integers per path (the Path
// fields)]; per_sample = 1: G and X have one row per edge (a plain tensor product: centres
// and neighbours are ignored). The row counts of G and X are separate arguments.
struct Plan {
  bool per_sample;
  int64_t dims[4];
  std::vector<Path> paths;
  explicit Plan(const at::Tensor& t) {
    TORCH_CHECK(t.scalar_type() == at::kLong && t.dim() == 1 && t.numel() >= 5 &&
                    (t.numel() - 5) % kPathInts == 0,
                "uvu_native: malformed plan");
    auto c = t.contiguous();
    const int64_t* p = c.data_ptr<int64_t>();
    per_sample = p[0] != 0;
    std::copy(p + 1, p + 5, dims);
    for (int64_t i = 5; i < c.numel(); i += kPathInts)
      paths.push_back(Path{p[i], p[i + 1], p[i + 2], p[i + 3], p[i + 4], p[i + 5], p[i + 6],
                           p[i + 7], p[i + 8]});
  }
};

// The roles other than `target`, in increasing order: the node's three inputs.
void others(int64_t target, int64_t out[3]) {
  int j = 0;
  for (int64_t r = 0; r < 4; ++r)
    if (r != target) out[j++] = r;
}

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
// An AVX2/FMA clone next to the baseline one, chosen at load time (the inner loops run over
// the U channels; the file is compiled with reassociation allowed so that the dot products
// over U vectorise too).
#define NEQUIP_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define NEQUIP_CLONES
#endif

// C consecutive channels held in registers: N vectors of L lanes (GCC vector extensions;
// L = 1 is a plain scalar, for the remainder of a U that is not a multiple of the vector width).
template <typename T, int L>
struct VecOf {
  typedef T type __attribute__((vector_size(L * sizeof(T))));
};
template <typename T>
struct VecOf<T, 1> {
  typedef T type;
};

template <typename T, int C>
struct Lanes {
  static constexpr int L = C * sizeof(T) >= 32 ? 32 / sizeof(T) : 1;
  static constexpr int N = C / L;
  typedef typename VecOf<T, L>::type V;
  V v[N];

  static V at(const T* p) {
    V x;
    std::memcpy(&x, p, sizeof(V));
    return x;
  }
  static V at(const T* p, int64_t stride) {  // lanes p[0], p[stride], ...
    if (stride == 1) return at(p);
    if constexpr (L == 1) {
      return *p;
    } else {
      V x;
      for (int j = 0; j < L; ++j) x[j] = p[j * stride];
      return x;
    }
  }
  static void put(T* p, int64_t stride, const V& y) {
    if (stride == 1) {
      std::memcpy(p, &y, sizeof(V));
    } else if constexpr (L == 1) {
      *p = y;
    } else {
      for (int j = 0; j < L; ++j) p[j * stride] = y[j];
    }
  }
  void zero() {
#pragma GCC unroll 16
    for (int i = 0; i < N; ++i) v[i] = V{};
  }
  void load_mul(const T* p, int64_t ps, const T* q) {  // v = p * q (p with stride ps)
#pragma GCC unroll 16
    for (int i = 0; i < N; ++i) v[i] = at(p + i * L * ps, ps) * at(q + i * L);
  }
  void fma(T c, const T* p) {  // v += c * p
#pragma GCC unroll 16
    for (int i = 0; i < N; ++i) v[i] += c * at(p + i * L);
  }
  void add_mul_to(T* out, int64_t os, const T* q, int64_t qs) const {  // out += v * q
#pragma GCC unroll 16
    for (int i = 0; i < N; ++i)
      put(out + i * L * os, os, at(out + i * L * os, os) + v[i] * at(q + i * L * qs, qs));
  }
  void axpy_to(T* out, T c) const {  // out += c * v
#pragma GCC unroll 16
    for (int i = 0; i < N; ++i) {
      const V y = at(out + i * L) + c * v[i];
      std::memcpy(out + i * L, &y, sizeof(V));
    }
  }
  T dot(const T* p) const {  // sum(v * p)
    V s = v[0] * at(p);
#pragma GCC unroll 16
    for (int i = 1; i < N; ++i) s += v[i] * at(p + i * L);
    if constexpr (L == 1) {
      return s;
    } else {
      T t = 0;
      for (int j = 0; j < L; ++j) t += s[j];
      return t;
    }
  }
};

// Channels [u0, u0 + C) of path p's contribution to the target row. xt: the path's input
// block transposed (xt[a*nu + u]); acc: the X accumulator of that block (same layout).
template <typename T, int C>
inline __attribute__((always_inline)) void path_channels(int64_t target, const Path& p,
                                                         int64_t u0, T* g, T* r, T* w,
                                                         const T* xt, T* acc) {
  const int64_t d1 = p.d1, nu = p.u;
  const T* wp = w + p.w + u0;
  Lanes<T, C> v;
  for (int64_t k = 0; k < p.d3; ++k) {
    T* gk = g + p.o + k * p.ks + u0 * p.us;
    T* rk = r + p.r + k * d1;
    switch (target) {
      case G:  // g += w * sum_a r x
        v.zero();
        for (int64_t a = 0; a < d1; ++a) v.fma(rk[a], xt + a * nu + u0);
        v.add_mul_to(gk, p.us, wp, 1);
        break;
      case X:  // x += r * (g w)
        v.load_mul(gk, p.us, wp);
        for (int64_t a = 0; a < d1; ++a) v.axpy_to(acc + a * nu + u0, rk[a]);
        break;
      case R:  // r += sum_u (g w) x
        v.load_mul(gk, p.us, wp);
        for (int64_t a = 0; a < d1; ++a) rk[a] += v.dot(xt + a * nu + u0);
        break;
      case W:  // w += g * sum_a r x
        v.zero();
        for (int64_t a = 0; a < d1; ++a) v.fma(rk[a], xt + a * nu + u0);
        v.add_mul_to(w + p.w + u0, 1, gk, p.us);
        break;
    }
  }
}

// Rows [begin, end) of the target tensor (zero-initialised) from the rows of the other
// three, X in the kernel's layout (see XBlock). Null centres / neighbours: the identity.
template <typename T>
inline __attribute__((always_inline)) void rows(int64_t target, const Plan& plan,
                                                T* const base[4], const int64_t* centres,
                                                const int64_t* neighbours, int64_t begin,
                                                int64_t end) {
  // 4, 2 and 1 vectors of channels per call (U = 8 in float64 is one call of two vectors)
  constexpr int wide = 128 / sizeof(T), pair = 64 / sizeof(T), vec = 32 / sizeof(T);
  for (int64_t z = begin; z < end; ++z) {
    T* g = base[G] + (centres ? centres[z] : z) * plan.dims[G];
    T* x = base[X] + (neighbours ? neighbours[z] : z) * plan.dims[X];
    T* r = base[R] + z * plan.dims[R];
    T* w = base[W] + z * plan.dims[W];
    for (const Path& p : plan.paths) {
      T* xb = x + p.x;  // the input block, xb[a*nu + u] (read, or accumulated for X)
      const int64_t nu = p.u;
      int64_t u0 = 0;
      for (; u0 + wide <= nu; u0 += wide) path_channels<T, wide>(target, p, u0, g, r, w, xb, xb);
      for (; u0 + pair <= nu; u0 += pair) path_channels<T, pair>(target, p, u0, g, r, w, xb, xb);
      for (; u0 + vec <= nu; u0 += vec) path_channels<T, vec>(target, p, u0, g, r, w, xb, xb);
      for (; u0 < nu; ++u0) path_channels<T, 1>(target, p, u0, g, r, w, xb, xb);
    }
  }
}

#define NEQUIP_ROWS(NAME, T)                                                              \
  NEQUIP_CLONES void NAME(int64_t target, const Plan& plan, T* const base[4],               \
                          const int64_t* centres, const int64_t* neighbours, int64_t begin, \
                          int64_t end) {                                                    \
    rows<T>(target, plan, base, centres, neighbours, begin, end);                           \
  }
NEQUIP_ROWS(rows_f32, float)
NEQUIP_ROWS(rows_f64, double)

void rows_any(int64_t target, const Plan& plan, float* const base[4], const int64_t* c,
              const int64_t* n, int64_t begin, int64_t end) {
  rows_f32(target, plan, base, c, n, begin, end);
}

void rows_any(int64_t target, const Plan& plan, double* const base[4], const int64_t* c,
              const int64_t* n, int64_t begin, int64_t end) {
  rows_f64(target, plan, base, c, n, begin, end);
}

// An input block of X: e3nn's [U, d1] at column x of a row; the kernel keeps it as [d1, U]
// (channels innermost, xb[a*U + u]) so that the channel loops read and write contiguous
// memory. X is brought into that layout once per call (and the X target back out of it),
// not once per edge.
struct XBlock {
  int64_t x, d1, u;
};

std::vector<XBlock> x_blocks(const Plan& plan) {
  std::vector<XBlock> out;
  for (const Path& p : plan.paths)
    if (std::none_of(out.begin(), out.end(), [&](const XBlock& b) { return b.x == p.x; }))
      out.push_back(XBlock{p.x, p.d1, p.u});
  return out;
}

// src [rows, dim] -> dst [rows, dim] with every block to the kernel's layout (to_kernel) or
// back to e3nn's; columns outside the blocks are left as they are in dst.
template <typename T>
void relayout(const T* src, T* dst, int64_t n_rows, int64_t dim, const std::vector<XBlock>& blocks,
              bool to_kernel) {
  at::parallel_for(0, n_rows, 256, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      for (const XBlock& b : blocks) {
        const T* s = src + i * dim + b.x;
        T* d = dst + i * dim + b.x;
        for (int64_t u = 0; u < b.u; ++u)
          for (int64_t a = 0; a < b.d1; ++a) {
            if (to_kernel)
              d[a * b.u + u] = s[u * b.d1 + a];
            else
              d[u * b.d1 + a] = s[a * b.u + u];
          }
      }
  });
}

// The target tensor from the three others (in role order): [n_g, dim_G] (G), [n_x, dim_X] (X)
// or [Z, dim] (R, W), Z = the number of edges.
at::Tensor compute(int64_t target, const at::Tensor& plan_t, const at::Tensor& centres_t,
                   const at::Tensor& neighbours_t, int64_t n_g, int64_t n_x,
                   const at::Tensor ins[3]) {
  TORCH_CHECK(target >= 0 && target < 4, "uvu_native: bad target");
  const Plan plan(plan_t);
  const bool identity = plan.per_sample;  // G and X: one row per edge
  const at::Tensor centres = centres_t.contiguous(), neighbours = neighbours_t.contiguous();
  const int64_t z = identity ? n_g : centres.numel();
  TORCH_CHECK(identity ? n_x == n_g
                       : (centres.scalar_type() == at::kLong &&
                          neighbours.scalar_type() == at::kLong && neighbours.numel() == z &&
                          centres.device().is_cpu() && neighbours.device().is_cpu()),
              "uvu_native: centres and neighbours must be int64 CPU tensors of one length");
  const int64_t rows_of[4] = {n_g, n_x, z, z};
  int64_t roles[3];
  others(target, roles);
  at::Tensor t[4];
  for (int i = 0; i < 3; ++i) {
    const int64_t role = roles[i];
    TORCH_CHECK(ins[i].device().is_cpu(), "uvu_native: CPU tensors only");
    TORCH_CHECK(ins[i].dim() == 2 && ins[i].size(0) == rows_of[role] &&
                    ins[i].size(1) == plan.dims[role],
                "uvu_native: input of role ", role, " has shape ", ins[i].sizes(), ", expected [",
                rows_of[role], ", ", plan.dims[role], "]");
    TORCH_CHECK(ins[i].scalar_type() == ins[0].scalar_type(), "uvu_native: mixed dtypes");
    t[role] = ins[i].contiguous();
  }
  const int64_t* c = identity ? nullptr : centres.data_ptr<int64_t>();
  const int64_t* n = identity ? nullptr : neighbours.data_ptr<int64_t>();
  for (int64_t e = 0; !identity && e < z; ++e)
    TORCH_CHECK(c[e] >= 0 && c[e] < n_g && n[e] >= 0 && n[e] < n_x,
                "uvu_native: edge ", e, " has a node index out of range");
  const std::vector<XBlock> blocks = x_blocks(plan);
  // G and X are sums over edges (scatters): one partial sum per thread, added at the end
  // (a fixed order for a given thread count); R and W have one row per edge.
  const bool scatter = !identity && (target == G || target == X);
  // at least ~32k multiply-adds per chunk: smaller ones cost more in threading than they save
  int64_t work = 1;
  for (const Path& p : plan.paths) work += p.d3 * p.d1 * p.u;
  const int64_t grain = std::max<int64_t>(16, 32768 / work);
  // at::parallel_for runs at most min(threads, ceil(z / grain)) chunks, chunk i on thread i
  const int64_t threads =
      scatter && !at::in_parallel_region()
          ? std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), (z + grain - 1) / grain))
          : 1;
  at::Tensor out = at::zeros({threads, rows_of[target], plan.dims[target]}, ins[0].options());
  at::Tensor x_kernel;  // X in the kernel's layout (target X: `out` is in that layout)
  AT_DISPATCH_FLOATING_TYPES(ins[0].scalar_type(), "uvu_native", [&] {
    scalar_t* base[4];
    for (int i = 0; i < 4; ++i) base[i] = t[i].defined() ? t[i].data_ptr<scalar_t>() : nullptr;
    if (target != X) {
      x_kernel = at::empty_like(t[X]);
      relayout(base[X], x_kernel.data_ptr<scalar_t>(), n_x, plan.dims[X], blocks, true);
      base[X] = x_kernel.data_ptr<scalar_t>();
    }
    scalar_t* const target_base = out.data_ptr<scalar_t>();
    const int64_t slot_size = rows_of[target] * plan.dims[target];
    auto run = [&](int64_t begin, int64_t end, int64_t slot) {
      scalar_t* b[4] = {base[0], base[1], base[2], base[3]};
      b[target] = target_base + slot * slot_size;
      rows_any(target, plan, b, c, n, begin, end);
    };
    if (threads == 1 && scatter) {  // (one partial sum: no parallel loop)
      run(0, z, 0);
    } else {
      at::parallel_for(0, z, grain, [&](int64_t begin, int64_t end) {
        const int64_t slot = scatter ? at::get_thread_num() : 0;
        TORCH_CHECK(slot < threads, "uvu_native: more chunks than partial sums");
        run(begin, end, slot);
      });
    }
  });
  at::Tensor sum = threads == 1 ? out[0] : out.sum(0);
  if (target != X) return sum;
  at::Tensor x_grad = at::zeros_like(sum);
  AT_DISPATCH_FLOATING_TYPES(sum.scalar_type(), "uvu_native_relayout", [&] {
    relayout(sum.data_ptr<scalar_t>(), x_grad.data_ptr<scalar_t>(), n_x, plan.dims[X], blocks, false);
  });
  return x_grad;
}

struct UvuNative : public torch::autograd::Function<UvuNative> {
  static at::Tensor forward(AutogradContext* ctx, int64_t target, const at::Tensor& plan,
                            const at::Tensor& centres, const at::Tensor& neighbours, int64_t n_g,
                            int64_t n_x, const at::Tensor& a, const at::Tensor& b,
                            const at::Tensor& c) {
    ctx->saved_data["target"] = target;
    ctx->saved_data["plan"] = plan;
    ctx->saved_data["centres"] = centres;
    ctx->saved_data["neighbours"] = neighbours;
    ctx->saved_data["n_g"] = n_g;
    ctx->saved_data["n_x"] = n_x;
    ctx->save_for_backward({a, b, c});
    const at::Tensor ins[3] = {a, b, c};
    return compute(target, plan, centres, neighbours, n_g, n_x, ins);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const int64_t target = ctx->saved_data["target"].toInt();
    const at::Tensor plan = ctx->saved_data["plan"].toTensor();
    const at::Tensor centres = ctx->saved_data["centres"].toTensor();
    const at::Tensor neighbours = ctx->saved_data["neighbours"].toTensor();
    const int64_t n_g = ctx->saved_data["n_g"].toInt(), n_x = ctx->saved_data["n_x"].toInt();
    const variable_list saved = ctx->get_saved_variables();
    variable_list out(9);  // one per forward argument
    if (!grads[0].defined()) return out;
    int64_t roles[3];
    others(target, roles);
    at::Tensor by_role[4];
    by_role[target] = grads[0];
    for (int i = 0; i < 3; ++i) by_role[roles[i]] = saved[i];
    for (int i = 0; i < 3; ++i) {
      // needs_input_grad counts tensor arguments only (plan, centres, neighbours = 0..2)
      if (!ctx->needs_input_grad(3 + i)) continue;
      int64_t in_roles[3];
      others(roles[i], in_roles);
      out[6 + i] = UvuNative::apply(roles[i], plan, centres, neighbours, n_g, n_x,
                                    by_role[in_roles[0]], by_role[in_roles[1]],
                                    by_role[in_roles[2]]);
    }
    return out;
  }
};

}  // namespace

// C entry point. Tensors are tch's handles (`at::Tensor*`); returns a new handle, or null with
// the error message in `err`.
extern "C" at::Tensor* nequip_uvu_native(int64_t target, const at::Tensor* plan,
                                         const at::Tensor* centres, const at::Tensor* neighbours,
                                         int64_t n_g, int64_t n_x, const at::Tensor* a,
                                         const at::Tensor* b, const at::Tensor* c, char* err,
                                         size_t err_len) {
  try {
    return new at::Tensor(
        UvuNative::apply(target, *plan, *centres, *neighbours, n_g, n_x, *a, *b, *c));
  } catch (const std::exception& e) {
    std::snprintf(err, err_len, "%s", e.what());
    return nullptr;
  }
}
