/* tests/support/tfx_gen.c — the random model generator of tfx_gen.h. Every
 * choice comes from one xorshift stream seeded by the model's seed, so a
 * failing seed reproduces exactly. Only combinations the language accepts
 * are drawn (docs/language.md): MLA, retention, infini_attention and a
 * Linformer projection (encoders only) and a
 * cross-attention to a T-row memory under mask = causal only in decoders, a static memory with mask = none and
 * no RoPE, RoPE's rotary_dim even and at most head_dim, fixed's summary at
 * most its stride, learned position tables of at least max_seq rows,
 * `segments = seq` (packed sequences) only in encoders and only on
 * attentions over the call's rows (not a static memory, not Linformer's
 * projected keys). */
#include "tfx_gen.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  char *buf;
  size_t len, used;
  int overflow;
  uint64_t rng;
} gen;

static void out(gen *g, const char *fmt, ...) {
  if (g->overflow) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(g->buf + g->used, g->len - g->used, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= g->len - g->used)
    g->overflow = 1;
  else
    g->used += (size_t)n;
}

static uint32_t next(gen *g) {
  g->rng ^= g->rng << 13;
  g->rng ^= g->rng >> 7;
  g->rng ^= g->rng << 17;
  return (uint32_t)(g->rng >> 32);
}

static int pick(gen *g, int n) { return (int)(next(g) % (uint32_t)n); }
static int chance(gen *g, int percent) { return pick(g, 100) < percent; }
static int range(gen *g, int lo, int hi) { return lo + pick(g, hi - lo + 1); } /* lo..hi */

/* ---- model-wide facts the blocks need ---- */

typedef struct {
  int heads, kv_heads, hd;
} heads_cfg;

/* Shapes are drawn once per model and mostly shared by its blocks (a shape
 * of its own only now and then): every distinct shape is another set of
 * kernels for LLVM to compile, which is where a seed's time goes. */
typedef struct {
  int dim, max_seq, causal;
  int hidden, mem_width; /* the FFNs' hidden size, a T-row memory's width */
  heads_cfg heads;
  int src_rows, src_dim; /* the static source (0 rows: none) */
  int packed;            /* encoders: the input `seq` of packed sequence ids, passed to every block */
  gen *g2;               /* the second stream: the choices of packed models (the others' choices stay as they were) */
  gen *g3;               /* the third: column slices and concat in the FFNs (issue #14), the same way */
  tfx_gen_info *info;
} model;

/* ---- norms ---- */

typedef struct {
  int layer_norm; /* 0: rmsnorm */
  const char *eps;
} norm_kind;

static void norm_params(gen *g, const char *name, const norm_kind *nk, const char *indent, const char *width) {
  out(g, "%sparam %s_g : f32[%s]\n", indent, name, width);
  if (nk->layer_norm) out(g, "%sparam %s_b : f32[%s]\n", indent, name, width);
}

static void norm_call(gen *g, const char *name, const norm_kind *nk, const char *arg) {
  if (nk->layer_norm)
    out(g, "layernorm(%s, %s_g, %s_b, eps = %s)", arg, name, name, nk->eps);
  else
    out(g, "rmsnorm(%s, %s_g, eps = %s)", arg, name, nk->eps);
}

static norm_kind draw_norm(gen *g) {
  static const char *const eps[] = {"1e-5", "1e-6", "1e-12"};
  norm_kind nk = {chance(g, 45), eps[pick(g, 3)]};
  return nk;
}

/* ---- activations ---- */

static const char *const acts[] = {"silu(%s)", "gelu(%s)", "gelu(%s, approximate = tanh)", "relu(%s)", "sigmoid(%s)"};
#define N_ACTS 5
static const char *const glu_acts[] = {"sigmoid", "relu", "gelu", "gelu_tanh", "silu", "none"};
static const char *const moe_acts[] = {"silu", "sigmoid", "relu", "gelu", "gelu_tanh", "none"};

static void act_call(gen *g, int act, const char *arg) { out(g, acts[act], arg); }

/* ---- sparse patterns: ", sparse = ..." or nothing ---- */

static void sparse_option(gen *g, const model *m, int percent) {
  if (!chance(g, percent)) return;
  int kind = range(g, 1, 6), named = chance(g, 50), S = m->max_seq;
  m->info->sparse_kinds |= 1 << kind;
  out(g, ", sparse = ");
  switch (kind) {
  case 1: out(g, named ? "sliding(window = %d)" : "sliding(%d)", range(g, 1, S)); break;
  case 2: {
    int k = range(g, 1, 3), w = chance(g, 50) ? 0 : range(g, 1, S);
    if (w == 0 && chance(g, 50))
      out(g, "dilated(%d)", k);
    else
      out(g, named ? "dilated(dilation = %d, window = %d)" : "dilated(%d, window = %d)", k, w);
    break;
  }
  case 3: out(g, named ? "strided(stride = %d)" : "strided(%d)", range(g, 1, 5)); break;
  case 4: {
    int l = range(g, 1, 5), c = range(g, 1, l);
    if (c == 1 && chance(g, 50))
      out(g, "fixed(%d)", l);
    else
      out(g, named ? "fixed(stride = %d, summary = %d)" : "fixed(%d, summary = %d)", l, c);
    break;
  }
  case 5: {
    int w = range(g, 1, 6), dil = chance(g, 50) ? 1 : range(g, 2, 3);
    out(g, named ? "longformer(window = %d" : "longformer(%d", w);
    if (chance(g, 50)) {
      out(g, ", global = tokens(");
      int n = range(g, 1, 3);
      for (int i = 0; i < n; i++) out(g, "%s%d", i ? ", " : "", pick(g, S));
      out(g, ")");
    } else if (chance(g, 70)) {
      out(g, ", global = %d", pick(g, 4));
    }
    if (dil > 1 || chance(g, 20)) out(g, ", dilation = %d", dil);
    out(g, ")");
    break;
  }
  default:
    out(g, named ? "bigbird(block_size = %d, global = %d, random = %d, seed = %d)" : "bigbird(%d, %d, %d, %d)",
        range(g, 1, 4), pick(g, 3), pick(g, 3), pick(g, 1000));
    break;
  }
}

/* ", position = rope(...)" with a random pairing, base and rotary_dim */
static void rope_option(gen *g, int hd, tfx_gen_info *info) {
  static const char *const thetas[] = {"10000", "500", "1e6", "50"};
  int rotary = hd;
  if (hd >= 4 && chance(g, 35)) rotary = 2 * range(g, 1, hd / 2 - 1);
  info->rope = 1;
  out(g, ", position = rope(theta = %s, style = %s", thetas[pick(g, 4)], chance(g, 50) ? "interleaved" : "half");
  if (rotary != hd || chance(g, 30)) out(g, ", rotary_dim = %d", rotary);
  out(g, ")");
}

/* the standalone rope op: o = o + linear(rope(...), r_o) on a projection of
 * `arg` or on `arg` itself */
static void rope_op(gen *g, const model *m, const char *arg) {
  static const char *const thetas[] = {"10000", "500", "1e6", "50"};
  int proj = chance(g, 60), heads = proj ? 1 << pick(g, 3) : 1 + pick(g, 2), hd = proj ? 2 * range(g, 1, 4) : 0;
  int width = proj ? heads * hd : m->dim;
  if (!proj) hd = m->dim / heads;
  int rotary = hd >= 4 && chance(g, 40) ? 2 * range(g, 1, hd / 2 - 1) : hd;
  m->info->rope_op = 1;
  if (proj) out(g, "  param r_w : f32[%d, dim]\n", width);
  out(g, "  param r_o : f32[dim, %d]\n", width);
  out(g, "  o = o + linear(rope(%s%s%s, heads = %d", proj ? "linear(" : "", arg, proj ? ", r_w)" : "", heads);
  if (chance(g, 60)) out(g, ", theta = %s", thetas[pick(g, 4)]);
  if (chance(g, 60)) out(g, ", style = %s", chance(g, 50) ? "interleaved" : "half");
  if (rotary != hd) out(g, ", rotary_dim = %d", rotary);
  if (m->packed && chance(m->g2, 70)) out(g, ", segments = seq"), m->info->seg_rope = 1;
  out(g, "), r_o)\n");
}

/* ", segments = seq" on an attention of a packed model, most of the time
 * (from the second stream) */
static int segments_option(gen *g, const model *m, int percent) {
  if (!m->packed || !chance(m->g2, percent)) return 0;
  out(g, ", segments = seq");
  m->info->seg_attn = 1;
  return 1;
}

/* ---- the token mixers ---- */

static heads_cfg draw_heads(gen *g) {
  static const int heads_choice[] = {1, 2, 4};
  static const int hd_choice[] = {2, 4, 6, 8};
  heads_cfg h = {heads_choice[pick(g, 3)], 0, hd_choice[pick(g, 4)]};
  h.kv_heads = h.heads;
  if (h.heads > 1 && chance(g, 60)) h.kv_heads = h.heads / (pick(g, 2) ? 2 : h.heads);
  return h;
}

/* o = attention(arg, ...) with params named <p>wq … */
static void attention_mixer(gen *g, const model *m, const char *arg, const char *p) {
  heads_cfg h = chance(g, 75) ? m->heads : draw_heads(g);
  int bias = chance(g, 30), pos = pick(g, 3); /* 0 none, 1 rope, 2 alibi */
  out(g, "  param %swq : f32[%d, dim]\n  param %swk : f32[%d, dim]\n", p, h.heads * h.hd, p, h.kv_heads * h.hd);
  out(g, "  param %swv : f32[%d, dim]\n  param %swo : f32[dim, %d]\n", p, h.kv_heads * h.hd, p, h.heads * h.hd);
  if (bias)
    out(g, "  param %sbq : f32[%d]\n  param %sbk : f32[%d]\n  param %sbv : f32[%d]\n  param %sbo : f32[dim]\n", p,
        h.heads * h.hd, p, h.kv_heads * h.hd, p, h.kv_heads * h.hd, p);
  out(g, "  o = attention(%s, %swq, %swk, %swv, %swo, heads = %d", arg, p, p, p, p, h.heads);
  if (h.kv_heads != h.heads || chance(g, 30)) out(g, ", kv_heads = %d", h.kv_heads);
  out(g, ", mask = %s", m->causal ? "causal" : "none");
  if (pos == 1) rope_option(g, h.hd, m->info);
  if (pos == 2) out(g, ", position = alibi"), m->info->alibi = 1;
  segments_option(g, m, 85); /* with rope() its rotations restart per sequence too (invisible: relative) */
  sparse_option(g, m, 45);
  if (bias) out(g, ", bq = %sbq, bk = %sbk, bv = %sbv, bo = %sbo", p, p, p, p);
  out(g, ")\n");
}

/* o = Linformer's attention, encoders only: k and v projected along the
 * sequence by E, F : [kp, n] (n >= max_seq; a call of T rows uses their
 * first T columns), then attend(q, E k, F v) */
static void linformer_mixer(gen *g, const model *m, const char *arg) {
  heads_cfg h = chance(g, 75) ? m->heads : draw_heads(g);
  int kp = range(g, 1, 12), n = m->max_seq + pick(g, 3);
  m->info->linformer = 1;
  out(g, "  param wq : f32[%d, dim]\n  param wk : f32[%d, dim]\n", h.heads * h.hd, h.kv_heads * h.hd);
  out(g, "  param wv : f32[%d, dim]\n  param wo : f32[dim, %d]\n", h.kv_heads * h.hd, h.heads * h.hd);
  out(g, "  param lf_e : f32[%d, %d]\n  param lf_f : f32[%d, %d]\n", kp, n, kp, n);
  out(g,
      "  o = linear(attend(linear(%s, wq), seq_project(lf_e, linear(%s, wk)), seq_project(lf_f, linear(%s, wv)), "
      "heads = %d, kv_heads = %d, mask = none), wo)\n",
      arg, arg, arg, h.heads, h.kv_heads);
}

/* o = mla_attention(arg, ...): decoders only */
static void mla_mixer(gen *g, const model *m, const char *arg) {
  int H = 1 << pick(g, 3), dn = 2 * range(g, 1, 3), dr = 2 * range(g, 1, 2), dv = 2 * range(g, 1, 3);
  int r = range(g, 4, 12), rq = chance(g, 40) ? range(g, 4, 12) : 0, q_norm = rq && chance(g, 50);
  int kv_norm = chance(g, 50);
  m->info->mla = 1;
  if (rq)
    out(g, "  param wq_a : f32[%d, dim]\n  param wq : f32[%d, %d]\n", rq, H * (dn + dr), rq);
  else
    out(g, "  param wq : f32[%d, dim]\n", H * (dn + dr));
  if (q_norm) out(g, "  param q_norm : f32[%d]\n", rq);
  out(g, "  param wkv_a : f32[%d, dim]\n  param wkv_b : f32[%d, %d]\n  param wo : f32[dim, %d]\n", r + dr,
      H * (dn + dv), r, H * dv);
  if (kv_norm) out(g, "  param kv_norm : f32[%d]\n", r);
  out(g, "  o = mla_attention(%s, wq, wkv_a, wkv_b, wo, heads = %d, rope_dim = %d", arg, H, dr);
  if (rq) out(g, ", wq_a = wq_a");
  if (q_norm) out(g, ", q_norm = q_norm");
  if (kv_norm) out(g, ", kv_norm = kv_norm");
  if (q_norm || kv_norm || chance(g, 20)) out(g, ", eps = %s", chance(g, 50) ? "1e-6" : "1e-5");
  if (chance(g, 60)) {
    static const char *const thetas[] = {"10000", "500", "1e6"};
    out(g, ", position = rope(theta = %s, style = %s)", thetas[pick(g, 3)], chance(g, 50) ? "interleaved" : "half");
  }
  out(g, ", mask = causal");
  sparse_option(g, m, 35);
  out(g, ")\n");
}

/* o = a mixer with a recurrent state, decoders only: kind 1 retention (an
 * optional groupnorm per head, an optional swish gate, value heads as wide
 * as or twice the key heads), kind 2 infini_attention (a segment of 1..9);
 * q and k sometimes rotated by rope(...) */
static void state_mixer(gen *g, const model *m, const char *arg, int kind) {
  int H = 1 << pick(g, 3), dk = 2 * range(g, 1, 4), dv = kind == 1 && chance(g, 50) ? 2 * dk : dk;
  if (kind == 1)
    m->info->retention = 1;
  else
    m->info->infini = 1;
  out(g, "  param wq : f32[%d, dim]\n  param wk : f32[%d, dim]\n", H * dk, H * dk);
  out(g, "  param wv : f32[%d, dim]\n  param wo : f32[dim, %d]\n", H * dv, H * dv);
  if (chance(g, 50)) {
    const char *th = chance(g, 50) ? "10000" : "500";
    out(g, "  sq = rope(linear(%s, wq), heads = %d, theta = %s)\n", arg, H, th);
    out(g, "  sk = rope(linear(%s, wk), heads = %d, theta = %s)\n", arg, H, th);
  } else {
    out(g, "  sq = linear(%s, wq)\n  sk = linear(%s, wk)\n", arg, arg);
  }
  if (kind == 2) {
    out(g, "  param s_beta : f32[%d]\n", H);
    out(g, "  o = linear(infini_attention(sq, sk, linear(%s, wv), s_beta, heads = %d, segment = %d), wo)\n", arg, H,
        range(g, 1, 9));
    return;
  }
  out(g, "  sr = retention(sq, sk, linear(%s, wv), heads = %d)\n", arg, H);
  if (chance(g, 60)) {
    out(g, "  param s_gn_g : f32[%d]\n  param s_gn_b : f32[%d]\n", H * dv, H * dv);
    out(g, "  sr = groupnorm(sr, s_gn_g, s_gn_b, groups = %d)\n", H);
  }
  if (chance(g, 60)) {
    out(g, "  param s_wg : f32[%d, dim]\n", H * dv);
    out(g, "  sr = silu(linear(%s, s_wg)) * sr\n", arg);
  }
  out(g, "  o = linear(sr, wo)\n");
}

/* co = attention(arg, c_wq, ..., memory = ...): kind 1 the static encoder
 * output `enc`, kind 2 a T-row tensor `mem` of the block. */
static void cross_attention(gen *g, const model *m, const char *arg, int kind) {
  heads_cfg h = chance(g, 75) ? m->heads : draw_heads(g);
  int mw = kind == 1 ? m->src_dim : 0;
  const char *mem = kind == 1 ? "enc" : "mem";
  if (kind == 2) {
    int form = pick(g, 3);
    if (form == 0) {
      mw = m->dim;
      out(g, "  mem = x\n");
    } else {
      mw = m->mem_width;
      out(g, "  param c_wm : f32[%d, dim]\n  mem = %s\n", mw, form == 1 ? "linear(x, c_wm)" : "silu(linear(x, c_wm))");
    }
    m->info->cross_trows = 1;
  } else {
    m->info->cross_static = 1;
  }
  int pos = pick(g, 3); /* 0 none, 1 rope (T-row memory only), 2 alibi */
  if (pos == 1 && kind == 1) pos = 0;
  out(g, "  param c_wq : f32[%d, dim]\n  param c_wk : f32[%d, %d]\n", h.heads * h.hd, h.kv_heads * h.hd, mw);
  out(g, "  param c_wv : f32[%d, %d]\n  param c_wo : f32[dim, %d]\n", h.kv_heads * h.hd, mw, h.heads * h.hd);
  out(g, "  co = attention(%s, c_wq, c_wk, c_wv, c_wo, heads = %d, kv_heads = %d, memory = %s, mask = %s", arg, h.heads,
      h.kv_heads, mem, kind == 2 && m->causal ? "causal" : "none");
  if (pos == 1) rope_option(g, h.hd, m->info);
  if (pos == 2) out(g, ", position = alibi"), m->info->alibi = 1;
  if (kind == 2) segments_option(g, m, 60); /* a memory of the call's rows */
  sparse_option(g, m, 30);
  out(g, ")\n");
}

/* ---- the channel mixers: y = ffn(f) ---- */

static void ffn_mixer(gen *g, const model *m, int kind) {
  int hidden = chance(g, 80) ? m->hidden : range(g, 4, 40), bias = chance(g, 35), swap = chance(g, 50);
  if (kind == 0) { /* GLU by hand */
    int act = pick(g, N_ACTS);
    /* from the third stream: w1 and w3 fused into one linear whose halves
     * are column slices (x[:, a:b]) */
    int fused = chance(m->g3, 40);
    if (fused) {
      m->info->col_slice = 1;
      out(g, "  param w13 : f32[%d, dim]\n  param w2 : f32[dim, %d]\n", 2 * hidden, hidden);
      if (bias) out(g, "  param b13 : f32[%d]\n  param b2 : f32[dim]\n", 2 * hidden);
      out(g, "  u13 = linear(f, w13%s)\n  u1 = u13[:, :%d]\n  u3 = u13[:, %d:]\n  gt = ", bias ? ", b13" : "", hidden,
          hidden);
    } else {
      out(g, "  param w1 : f32[%d, dim]\n  param w3 : f32[%d, dim]\n  param w2 : f32[dim, %d]\n", hidden, hidden,
          hidden);
      if (bias) out(g, "  param b1 : f32[%d]\n  param b3 : f32[%d]\n  param b2 : f32[dim]\n", hidden, hidden);
      out(g, "  u1 = linear(f, w1%s)\n  u3 = linear(f, w3%s)\n  gt = ", bias ? ", b1" : "", bias ? ", b3" : "");
    }
    act_call(g, act, "u1");
    out(g, "\n  mm = %s\n", swap ? "u3 * gt" : "gt * u3");
    out(g, "  y = %s\n", bias ? (swap ? "linear(mm, w2) + b2" : "linear(mm, w2, b2)") : "linear(mm, w2)");
  } else if (kind == 1) { /* the glu builtin */
    const char *act = glu_acts[pick(g, 6)];
    m->info->glu_builtin = 1;
    out(g, "  param w1 : f32[%d, dim]\n  param w3 : f32[%d, dim]\n  param w2 : f32[dim, %d]\n", hidden, hidden, hidden);
    if (bias) out(g, "  param b1 : f32[%d]\n  param b3 : f32[%d]\n", hidden, hidden);
    out(g, "  y = linear(glu(f, w1, w3");
    if (strcmp(act, "sigmoid") || chance(g, 50)) out(g, ", act = %s", act);
    if (bias) out(g, ", b1 = b1, b3 = b3");
    out(g, "), w2)\n");
  } else if (kind == 2) { /* MLP */
    int act = pick(g, N_ACTS), mat = chance(g, 25);
    /* from the third stream: the down projection reads concat(mm[:, :c],
     * f, mm[:, c:]) (parts of two values side by side) */
    int cat = !mat && chance(m->g3, 35), cut = cat ? range(m->g3, 1, hidden - 1) : 0;
    out(g, "  param w1 : f32[%d, dim]\n", hidden);
    if (mat)
      out(g, "  param w2t : f32[%d, dim]\n", hidden), m->info->matmul = 1;
    else if (cat)
      out(g, "  param w2 : f32[dim, %d]\n", hidden + m->dim), m->info->concat = 1;
    else
      out(g, "  param w2 : f32[dim, %d]\n", hidden);
    if (bias) out(g, "  param b1 : f32[%d]\n  param b2 : f32[dim]\n", hidden);
    out(g, "  u1 = %s\n  mm = ", bias ? (swap ? "linear(f, w1) + b1" : "linear(f, w1, b1)") : "linear(f, w1)");
    act_call(g, act, "u1");
    out(g, "\n");
    if (mat)
      out(g, "  y = matmul(mm, w2t)%s\n", bias ? " + b2" : "");
    else if (cat)
      out(g, "  y = linear(concat(mm[:, :%d], f, mm[:, %d:]), w2%s)\n", cut, cut, bias ? ", b2" : "");
    else
      out(g, "  y = %s\n", bias ? (swap ? "linear(mm, w2) - b2" : "linear(mm, w2, b2)") : "linear(mm, w2)");
  } else { /* MoE */
    static const char *const caps[] = {"0.5", "1", "1.25", "2", "0.75"};
    int E = range(g, 2, 6), k = range(g, 1, E < 3 ? E : 3), eh = range(g, 3, 12), w3 = chance(g, 55);
    int cap = chance(g, 35), shared = chance(g, 35), s3 = chance(g, 50), S = range(g, 3, 10);
    m->info->moe = 1;
    m->info->moe_capacity |= cap;
    m->info->moe_shared |= shared;
    out(g, "  param router : f32[%d, dim]\n  param e_w1 : f32[%d, %d, dim]\n  param e_w2 : f32[%d, dim, %d]\n", E, E,
        eh, E, eh);
    if (w3) out(g, "  param e_w3 : f32[%d, %d, dim]\n", E, eh);
    if (shared) {
      out(g, "  param s_w1 : f32[%d, dim]\n  param s_w2 : f32[dim, %d]\n", S, S);
      if (s3) out(g, "  param s_w3 : f32[%d, dim]\n", S);
    }
    out(g, "  y = moe(f, router, e_w1, e_w2%s, top_k = %d", w3 ? ", e_w3" : "", k);
    if (chance(g, 20)) out(g, ", experts = %d", E);
    if (chance(g, 70)) out(g, ", act = %s", moe_acts[pick(g, 6)]);
    if (chance(g, 50)) out(g, ", gate = %s", chance(g, 50) ? "softmax" : "softmax_topk");
    if (cap) out(g, ", capacity = %s", caps[pick(g, 5)]);
    if (shared) out(g, ", shared_w1 = s_w1, shared_w2 = s_w2%s", s3 ? ", shared_w3 = s_w3" : "");
    out(g, ")\n");
  }
}

/* ---- one block ---- */

/* Writes `block NAME(x[, enc]) -> f32[T, dim] { ... }`; returns 1 when the
 * block takes the static encoder output as its second input. */
static int emit_block(gen *g, model *m, const char *name) {
  norm_kind nk = draw_norm(g);
  int place = pick(g, 3);                   /* 0 pre-norm, 1 post-norm, 2 shared (h = norm(x) + o) */
  int mix = m->causal ? pick(g, 100) : 100; /* decoders: 20% MLA, 20% a recurrent state */
  int mla = mix < 20, state = mix >= 20 && mix < 40 ? 1 + pick(g, 2) : 0; /* 1 retention, 2 infini_attention */
  int cross = chance(g, 25) ? (m->src_rows && chance(g, 60) ? 1 : 2) : 0;
  int ffn = pick(g, 6); /* 0 GLU, 1 glu(), 2 MLP, 3 MoE, 4 none, 5 MLP */
  if (ffn == 5) ffn = 2;
  int res_first = chance(g, 50), scale = chance(g, 15);
  m->info->layernorm |= nk.layer_norm;
  m->info->post_norm |= place == 1;

  out(g, "\nblock %s(x : f32[T, dim]%s%s) -> f32[T, dim] {\n", name, cross == 1 ? ", enc : f32[src_rows, src_dim]" : "",
      m->packed ? ", seq : i32[T]" : "");
  /* token mixer */
  norm_params(g, "n1", &nk, "  ", "dim");
  if (place != 1) {
    out(g, "  a = ");
    norm_call(g, "n1", &nk, "x");
    out(g, "\n");
  }
  const char *in = place == 1 ? "x" : "a";
  /* encoders: Linformer in about one block of five (read from the stream
   * without advancing it, so models without it draw as before) */
  int linformer = !m->causal && !cross && g->rng % 5 == 0;
  if (mla)
    mla_mixer(g, m, in);
  else if (linformer)
    linformer_mixer(g, m, in);
  else if (state)
    state_mixer(g, m, in, state);
  else
    attention_mixer(g, m, in, "");
  /* the rope op, more often in packed models (there its rotation restarting
   * at each sequence shows in the output; an attention's rope() is
   * relative, so its restart cannot change the scores) */
  if (chance(g, 15) || (m->packed && chance(m->g2, 45))) rope_op(g, m, in);
  if (scale) out(g, "  param ls : f32[dim]\n  o = o * ls\n");
  const char *res = place == 2 ? "a" : "x";
  if (place == 1) {
    char sum[16];
    snprintf(sum, sizeof sum, res_first ? "x + o" : "o + x");
    out(g, "  h = ");
    norm_call(g, "n1", &nk, sum);
    out(g, "\n");
  } else {
    out(g, "  h = %s%s%s\n", res_first ? res : "o", " + ", res_first ? "o" : res);
  }

  /* cross-attention */
  if (cross) {
    norm_params(g, "nc", &nk, "  ", "dim");
    if (place == 0) {
      out(g, "  hc = ");
      norm_call(g, "nc", &nk, "h");
      out(g, "\n");
    }
    cross_attention(g, m, place == 0 ? "hc" : "h", cross);
    if (place == 0) {
      out(g, "  h = h + co\n");
    } else {
      out(g, "  h = ");
      norm_call(g, "nc", &nk, "h + co");
      out(g, "\n");
    }
  }

  /* channel mixer */
  if (ffn == 4) {
    out(g, "  return h\n}\n");
    return cross == 1;
  }
  norm_params(g, "n2", &nk, "  ", "dim");
  if (place == 1) {
    out(g, "  f = h\n");
  } else {
    out(g, "  f = ");
    norm_call(g, "n2", &nk, "h");
    out(g, "\n");
  }
  ffn_mixer(g, m, ffn);
  if (place == 1) {
    out(g, "  return ");
    norm_call(g, "n2", &nk, res_first ? "h + y" : "y + h");
    out(g, "\n}\n");
  } else {
    out(g, "  return %s\n}\n", res_first ? "h + y" : "y + h");
  }
  return cross == 1;
}

int tfx_gen_model(uint64_t seed, char *buf, size_t len, tfx_gen_info *info) {
  gen G = {buf, len, 0, 0, seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull};
  gen *g = &G;
  for (int i = 0; i < 4; i++) next(g);
  memset(info, 0, sizeof *info);

  static const int dims[] = {8, 12, 16, 24, 32};
  model M = {dims[pick(g, 5)],
             range(g, 8, 16),
             chance(g, 70),
             range(g, 4, 40),
             range(g, 4, 20),
             {0, 0, 0},
             0,
             0,
             0,
             NULL,
             NULL,
             info};
  model *m = &M;
  m->heads = draw_heads(g);
  int tokens = chance(g, 75), vocab = range(g, 16, 40);
  int posk = pick(g, 4); /* 0, 1 none, 2 learned, 3 sinusoidal */
  if (chance(g, 35)) m->src_rows = range(g, 1, 9), m->src_dim = range(g, 4, 20);
  int enc_kind = m->src_rows ? pick(g, 3) : 0; /* 0 the source itself, 1 a linear, 2 attention + layernorm */
  int enc_heads = 1 + pick(g, 2), enc_hd = 2 * range(g, 1, 3);
  int n_blocks = chance(g, 25) ? 2 : 1;
  int tied = tokens && chance(g, 50), out_w = tied ? vocab : range(g, 5, 24), head_bias = chance(g, 30);
  int softmax_out = chance(g, 10);
  norm_kind fk = draw_norm(g);
  /* the embedding's epilogue rows (fuse_embedding) draw from a second stream,
   * so every other choice of a seed stays as it was: a token-type row added
   * after the positions, and a norm of the sum */
  gen G2 = {NULL, 0, 0, 0, seed * 0xd1b54a32d192ed03ull + 0x8cb92ba72f3d8dd7ull};
  gen *g2 = &G2;
  for (int i = 0; i < 4; i++) next(g2);
  int emb_row = chance(g2, 25), emb_norm = chance(g2, 30);
  norm_kind ek = draw_norm(g2);
  int unroll = chance(g2, 40); /* after the stream's other draws: they stay as they were */
  /* decoders: a YOCO cross-decoder after the blocks (one global k, v shared
   * by two causal attends: one KV cache), its heads 2 or 4 */
  int yoco = m->causal && chance(g2, 30), yoco_heads = chance(g2, 50) ? 2 : 4;
  /* encoders: packed sequences (a second input `seq`); the segments options
   * draw from this stream too */
  m->packed = !m->causal && chance(g2, 50);
  m->g2 = g2;
  gen G3 = {NULL, 0, 0, 0, seed * 0xa24baed4963ee407ull + 0x9fb21c651e98df25ull};
  for (int i = 0; i < 4; i++) next(&G3);
  m->g3 = &G3;

  info->tokens = tokens;
  info->vocab = vocab;
  info->width = m->dim;
  info->out_width = out_w;
  info->max_seq = m->max_seq;
  info->causal = m->causal;
  info->n_blocks = n_blocks;
  info->learned_pos = posk == 2;
  info->sinusoidal = posk == 3;
  info->softmax_out = softmax_out;
  info->emb_row = emb_row;
  info->emb_norm = emb_norm;
  info->layernorm = fk.layer_norm;
  info->unroll = unroll;
  info->yoco = yoco;
  info->segments = m->packed;

  out(g, "# generated by tests/support/tfx_gen.c, seed %llu\n", (unsigned long long)seed);
  out(g, "model gen%llu\n", (unsigned long long)seed);
  out(g, "const dim = %d, vocab = %d, max_seq = %d, out_w = %d\n", m->dim, vocab, m->max_seq, out_w);
  if (m->src_rows) out(g, "const src_rows = %d, src_dim = %d\n", m->src_rows, m->src_dim);
  if (enc_kind == 2) out(g, "const enc_heads = %d, enc_hd = %d\n", enc_heads, enc_hd);
  if (tokens) out(g, "param tok : f32[vocab, dim]\n");
  if (posk == 2) out(g, "param pos_table : f32[%d, dim]\n", m->max_seq + pick(g, 3));
  if (emb_row) out(g, "param typ : f32[dim]\n");
  if (emb_norm) norm_params(g, "emb", &ek, "", "dim");
  norm_params(g, "final", &fk, "", "dim");
  if (!tied) out(g, "param head : f32[out_w, dim]\n");
  if (head_bias) out(g, "param head_b : f32[out_w]\n");
  if (m->src_rows) {
    out(g, "param src : f32[src_rows, src_dim]\n");
    if (enc_kind == 1) out(g, "param enc_w : f32[src_dim, src_dim]\n");
    if (enc_kind == 2) {
      out(g, "param enc_wq : f32[enc_heads * enc_hd, src_dim]\nparam enc_wk : f32[enc_heads * enc_hd, src_dim]\n");
      out(g, "param enc_wv : f32[enc_heads * enc_hd, src_dim]\nparam enc_wo : f32[src_dim, enc_heads * enc_hd]\n");
      out(g, "param enc_g : f32[src_dim]\nparam enc_b : f32[src_dim]\n");
    }
  }

  if (yoco)
    out(g, "param yk : f32[dim, dim]\nparam yv : f32[dim, dim]\nparam yq0 : f32[dim, dim]\nparam yq1 : f32[dim, dim]\n"
           "param yo0 : f32[dim, dim]\nparam yo1 : f32[dim, dim]\n");
  int takes_enc[2] = {0, 0}, reps[2] = {1, 1};
  for (int b = 0; b < n_blocks; b++) {
    char name[16];
    snprintf(name, sizeof name, "layer%d", b);
    takes_enc[b] = emit_block(g, m, name);
    reps[b] = range(g, 1, 2);
  }

  const char *seq_in = m->packed ? ", seq : i32[T]" : "";
  if (tokens)
    out(g, "\nforward(tokens : i32[T]%s) -> f32[T, out_w] {\n  x = embedding(tok, tokens)\n", seq_in);
  else
    out(g, "\nforward(x : f32[T, dim]%s) -> f32[T, out_w] {\n", seq_in);
  if (posk == 2) {
    int seg_pos = m->packed; /* restart at each sequence */
    info->seg_pos |= seg_pos;
    out(g, "  x = x + positions(pos_table, %s%s)\n", tokens && chance(g, 50) ? "tokens" : "x",
        seg_pos ? ", segments = seq" : "");
  }
  if (posk == 3) {
    if (chance(g, 50))
      out(g, "  x = x + sinusoidal(x)\n");
    else
      out(g, "  x = sinusoidal(x, base = %s) + x\n", chance(g, 50) ? "100" : "1e4");
  }
  if (emb_row) out(g, "  x = x + typ\n");
  if (emb_norm) {
    out(g, "  x = ");
    norm_call(g, "emb", &ek, "x");
    out(g, "\n");
  }
  if (takes_enc[0] || takes_enc[1]) {
    if (enc_kind == 0) out(g, "  enc = src\n");
    if (enc_kind == 1) out(g, "  enc = gelu(linear(src, enc_w))\n");
    if (enc_kind == 2)
      out(g, "  enc = layernorm(src + attention(src, enc_wq, enc_wk, enc_wv, enc_wo, heads = enc_heads, mask = none)"
             ", enc_g, enc_b)\n");
  }
  for (int b = 0; b < n_blocks; b++) {
    char extra[16];
    snprintf(extra, sizeof extra, "%s%s", takes_enc[b] ? ", enc" : "", m->packed ? ", seq" : "");
    if (reps[b] == 1 && chance(g, 50))
      out(g, "  x = layer%d(x%s, prefix = \"b%d\")\n", b, extra, b);
    else
      out(g, "  x = repeat(%d, prefix = \"b%d\") layer%d(x%s)\n", reps[b], b, b, extra);
  }
  if (yoco) {
    out(g, "  ygk = linear(x, yk)\n  ygv = linear(x, yv)\n");
    for (int l = 0; l < 2; l++)
      out(g, "  x = x + linear(attend(linear(x, yq%d), ygk, ygv, heads = %d, mask = causal), yo%d)\n", l, yoco_heads,
          l);
  }
  out(g, "  z = ");
  norm_call(g, "final", &fk, "x");
  out(g, "\n  y = linear(z, %s%s)\n", tied ? "tok" : "head", head_bias ? ", head_b" : "");
  out(g, "  return %s\n}\n", softmax_out ? "softmax(y)" : "y");
  if (unroll) out(g, "schedule {\n  unroll = on\n}\n");
  return g->overflow ? -1 : 0;
}
