/* passes/attn_cost.c — the attention cost model: for one ATTENTION /
 * MLA_ATTENTION node, the schedule of each entry with its estimate, from
 * the node's FLOPs and bytes at a context of max_seq and the graph's thread
 * count (docs/performance.md, "The attention cost model", states the
 * formula and its calibration):
 *  - prefill (forward entry, T = max_seq query rows): an estimate in ns of
 *    one thread for each schedule that applies, the cheapest chosen
 *    (schedule { attention = dense } forces row; attention = flash forces
 *    the tiled schedules where they apply, ir/attention.c's
 *    tfx_attn_schedule_auto). Per head, with d the head dim:
 *      row   = pairs * (A_ROW + B_ROW d) + T * C_ROW d
 *      tiled = lanes * (A_FLASH + B_FLASH d) + ceil(T / W) * C_FLASH d
 *    pairs: the (query, key) pairs the per-row kernel visits (causal
 *    T (T + 1) / 2, none T^2; a sliding window only its window's pairs, the
 *    other patterns every pair, masked per element); lanes: W x 16 for
 *    every (tile of W query rows, group of 16 keys) that holds an allowed
 *    pair by ir/'s block rule (the tile's masked and padded lanes cost as
 *    much as the others), W = 16 (AVX-512); a dilated pattern (k >= 2) is
 *    gathered: both counted on its k classes of ceil(T / k) positions, each
 *    the smaller pattern of tfx_attn_gather; the last terms are the items'
 *    own work (a row's setup and output; a tile's transposed queries and
 *    output). tiled is flash without a pattern and block_sparse with one;
 *    MLA has row only. The constants: CPU ns measured with
 *    bench/attn_cost.py (docs/performance.md). Threads do not enter: both
 *    schedules split into (rows or tiles) x heads items. The tiles win
 *    (3-5x per unit) except at a short max_seq (d = 64: max_seq <= ~12)
 *    or a narrow window over a short one;
 *    the FLOPs of the pairs visited (4 d per pair and head, the kept
 *    fraction from ir/'s block rule over (W x 16) tiles) are reported too;
 *  - decode (decode entry, one query row at position max_seq - 1): row runs
 *    one item per head, split(S) one per (head, part) plus a merge. With P
 *    threads (schedule threads, TFX_COST_THREADS when auto), a key costs
 *    1 unit, a launch through the pool F units, a merge record (d + 2
 *    floats) R units; K is the keys the row visits (decode_keys: L =
 *    max_seq without a pattern, a sliding window's w, a dilated pattern's
 *    class, else the 16-key groups of the block table holding an allowed
 *    key):
 *      row      = ceil(H / P) * K            (+ F when the kernel forks)
 *      split(S) = ceil(H S / P) * ceil(K / S) + H S R / P + 2 F
 *    A launch forks only when its static work (KV elements at max_seq)
 *    reaches the backend's grain (2^17 elements, TFX_COST_GRAIN); below it
 *    every kernel runs on the calling thread, P = 1, and split never pays.
 *    Split decode is chosen when it fits (tfx_attn_split_fits) and its best
 *    S (powers of two up to TFX_ATTN_MAX_SPLITS) costs under 0.9 of row.
 *    Where the model keeps row, decode = auto runs the tiny-head kernel
 *    (backend/k_tiny_heads.c) instead when head_dim is a power of two <= 16
 *    (ir/attention.c tfx_attn_tiny_auto; measured, not estimated: 1.1-1.4x
 *    stories260K's decode, docs/performance.md "Small models").
 * schedule { attention = ... } and schedule { decode = ... } override the
 * choices (the pass applies them before asking the model). */
#include <math.h>

#include "passes.h"

#define TFX_COST_THREADS 4         /* threads assumed when the schedule says auto */
#define TFX_COST_GRAIN (1 << 17)   /* backend/cg.h TFX_CG_INLINE_WORK: below it a launch runs inline */
#define TFX_COST_FORK 400.0        /* a fork/join through the pool, in key units (bench/decode_cost.py: 391) */
#define TFX_COST_RECORD 8.0        /* one merge record, in key units (bench/decode_cost.py: 7.7) */
#define TFX_COST_PAY 0.9           /* split must save 10% */
#define TFX_COST_TILE_ROWS 16      /* the query tile of the kept-fraction estimate */
#define TFX_COST_TILE_KEYS 16      /* the key group of the kept-fraction estimate */
#define TFX_COST_MAX_TILES 1048576 /* cells of the kept-fraction estimate (coarser tiles beyond) */
/* prefill, CPU ns of one thread (bench/attn_cost.py: T = 1024, d = 8..128,
 * causal and sliding(16); docs/performance.md): per visited unit a + b *
 * head_dim, per item c * head_dim */
#define TFX_COST_ROW_A 4.51     /* the per-row kernel: per (query, key) pair and head */
#define TFX_COST_ROW_B 0.094    /* ... and per dim */
#define TFX_COST_ROW_ITEM 5.5   /* per (row, head) item and dim */
#define TFX_COST_FLASH_A 0.56   /* the flash / block-sparse tiles: per lane pair (padded and masked lanes too) */
#define TFX_COST_FLASH_B 0.045  /* ... and per dim */
#define TFX_COST_FLASH_ITEM 63. /* per (tile, head) item and dim (gathering the tile's queries, writing it) */

static double ceil_div(double a, double b) { return ceil(a / b); }

/* A prefill of max_seq over the block rule's tiles (16 x 16, coarser past
 * TFX_COST_MAX_TILES cells): the fraction of (query, key) pairs in tiles
 * with an allowed pair (kept), and the lane pairs the tiled schedules visit
 * (every such tile whole). */
static void kept_tiles(const tfx_graph *g, const tfx_node *n, int64_t L, double *kept_fraction, double *lanes) {
  int64_t qt = TFX_COST_TILE_ROWS, kt = TFX_COST_TILE_KEYS;
  while ((L / qt + 1) * (L / kt + 1) > TFX_COST_MAX_TILES) qt *= 2, kt *= 2;
  double kept = 0, all = 0, lane = 0;
  for (int64_t i0 = 0; i0 < L; i0 += qt) {
    int64_t i1 = i0 + qt < L ? i0 + qt : L;
    for (int64_t j0 = 0; j0 < L; j0 += kt) {
      int64_t j1 = j0 + kt < L ? j0 + kt : L;
      double cells = (double)(i1 - i0) * (double)(j1 - j0);
      all += cells;
      if (tfx_attn_block_allowed(n, i0, i1, j0, j1, g->max_seq) != TFX_ATTN_BLOCK_NONE) {
        kept += cells;
        lane += (double)qt * (double)kt;
      }
    }
  }
  *kept_fraction = all > 0 ? kept / all : 0;
  *lanes = lane;
}

/* The keys one head's decode row visits for the query at position L - 1 (L = Lc positions of the
 * gathered problem pn when dilated): the whole causal range without a pattern; a sliding window's exact
 * range; otherwise the 16-key groups that hold an allowed key of that query, as the row kernel walks the
 * block-sparse table's runs (the masked keys of a partial group cost as much as the others). */
static double decode_keys(const tfx_graph *g, const tfx_node *pn, int64_t Lc) {
  if (pn->sparse.kind == TFX_SPARSE_NONE) return (double)Lc;
  if (pn->sparse.kind == TFX_SPARSE_SLIDING) {
    int64_t w = pn->sparse.window > 0 ? pn->sparse.window : 1;
    return (double)(w < Lc ? w : Lc);
  }
  double keys = 0;
  for (int64_t j0 = 0; j0 < Lc; j0 += TFX_COST_TILE_KEYS) {
    int64_t j1 = j0 + TFX_COST_TILE_KEYS < Lc ? j0 + TFX_COST_TILE_KEYS : Lc;
    if (tfx_attn_block_allowed(pn, Lc - 1, Lc, j0, j1, g->max_seq) != TFX_ATTN_BLOCK_NONE) keys += (double)(j1 - j0);
  }
  return keys > 0 ? keys : 1;
}

static double decode_row(double H, double L, double P, int forks) {
  return ceil_div(H, P) * L + (forks ? TFX_COST_FORK : 0);
}

static double decode_split(double H, double L, double P, int S, int forks) {
  return ceil_div(H * S, P) * ceil_div(L, S) + H * S * TFX_COST_RECORD / P + (forks ? 2 * TFX_COST_FORK : 0);
}

void tfx_attn_cost_eval(const tfx_graph *g, const tfx_node *n, tfx_attn_cost *c) {
  *c = (tfx_attn_cost){0};
  int64_t L = g->max_seq > 0 ? g->max_seq : 1;
  int64_t H = n->heads > 0 ? n->heads : 1, d = n->head_dim > 0 ? n->head_dim : 1;
  int64_t G = n->op == TFX_OP_ATTENTION && n->kv_heads > 0 ? n->kv_heads : 1;
  int causal = n->mask == TFX_MASK_CAUSAL;
  /* prefill: the estimate of each schedule that applies, the cheapest (or the override) */
  double lanes = 0;
  /* a dilated pattern is gathered (ir/'s tfx_attn_gather): k classes of ceil(L / k) positions, each the
     smaller pattern sub (the row kernel walks its window, the tiles its kept tiles) */
  tfx_node sub;
  int64_t gk = tfx_attn_gather(n, &sub), Lc = L;
  const tfx_node *pn = n;
  if (gk >= 2) pn = &sub, Lc = (L + gk - 1) / gk;
  if (gk < 2) gk = 1;
  if (n->op == TFX_OP_ATTENTION) {
    kept_tiles(g, pn, Lc, &c->kept, &lanes);
    lanes *= (double)gk;
    c->kept *= (double)gk * (double)Lc * (double)Lc / ((double)L * (double)L);
  } else {
    c->kept = causal ? 0.5 : 1.0;
  }
  double full = causal ? (double)Lc * (double)(Lc + 1) / 2 : (double)Lc * (double)Lc;
  double row_pairs = full;
  /* the row kernel walks the window: |i - j| < w (per-call Longformer globals: plus the call's global tokens,
     unknown here) */
  if (pn->sparse.kind == TFX_SPARSE_SLIDING || (pn->sparse.kind == TFX_SPARSE_LONGFORMER && pn->sparse.global_input)) {
    int64_t w = pn->sparse.window > 0 ? pn->sparse.window : 1;
    row_pairs = 0;
    for (int64_t i = 0; i < Lc; i++)
      row_pairs += (double)((i < w - 1 ? i : w - 1) + 1 + (causal ? 0 : (Lc - 1 - i < w - 1 ? Lc - 1 - i : w - 1)));
  }
  row_pairs *= (double)gk;
  c->prefill_row_ns = (double)H * (row_pairs * (TFX_COST_ROW_A + TFX_COST_ROW_B * (double)d) +
                                   (double)L * TFX_COST_ROW_ITEM * (double)d);
  int tiled = tfx_attn_schedule_applicable(n, TFX_ATTN_SCHED_FLASH)          ? TFX_ATTN_SCHED_FLASH
              : tfx_attn_schedule_applicable(n, TFX_ATTN_SCHED_BLOCK_SPARSE) ? TFX_ATTN_SCHED_BLOCK_SPARSE
                                                                             : TFX_ATTN_SCHED_UNSET;
  c->prefill_tiled_ns =
      tiled != TFX_ATTN_SCHED_UNSET
          ? (double)H * (lanes * (TFX_COST_FLASH_A + TFX_COST_FLASH_B * (double)d) +
                         (double)gk * ceil_div((double)Lc, TFX_COST_TILE_ROWS) * TFX_COST_FLASH_ITEM * (double)d)
          : 0;
  if (g->schedule.attention == TFX_SCHED_ATTN_DENSE || tiled == TFX_ATTN_SCHED_UNSET)
    c->forward = TFX_ATTN_SCHED_ROW;
  else if (g->schedule.attention == TFX_SCHED_ATTN_FLASH)
    c->forward = tiled;
  else
    c->forward = c->prefill_tiled_ns < c->prefill_row_ns ? tiled : TFX_ATTN_SCHED_ROW;
  c->prefill_ns = c->forward == TFX_ATTN_SCHED_ROW ? c->prefill_row_ns : c->prefill_tiled_ns;
  double pairs = c->forward == TFX_ATTN_SCHED_ROW ? row_pairs : c->kept * (double)L * (double)L;
  c->prefill_flops = pairs * 4.0 * (double)H * (double)d;
  /* decode: KV bytes at L, the row and split estimates */
  c->decode_kv_bytes = n->op == TFX_OP_ATTENTION ? 2.0 * (double)L * (double)(G * d) * 4.0
                                                 : (double)L * (double)(n->rank + n->rope_dim) * 4.0;
  int forks = (double)L * 2.0 * (double)(G * d) >= TFX_COST_GRAIN;
  double P = forks ? (g->schedule.threads > 0 ? g->schedule.threads : TFX_COST_THREADS) : 1;
  c->threads = (int)P;
  c->forks = forks;
  c->decode_keys = decode_keys(g, pn, Lc);
  c->row_units = decode_row((double)H, c->decode_keys, P, forks);
  c->split = 0;
  c->split_units = c->row_units;
  for (int S = 2; S <= TFX_ATTN_MAX_SPLITS; S *= 2) {
    if (!tfx_attn_split_fits(g, n, S)) break;
    double u = decode_split((double)H, c->decode_keys, P, S, forks);
    if (u < c->split_units) c->split = S, c->split_units = u;
  }
  if (c->split && c->split_units >= TFX_COST_PAY * c->row_units) c->split = 0, c->split_units = c->row_units;
}

double tfx_attn_cost_split_units(const tfx_graph *g, const tfx_node *n, int splits) {
  tfx_attn_cost c;
  tfx_attn_cost_eval(g, n, &c);
  if (splits < 2) return c.row_units;
  int64_t H = n->heads > 0 ? n->heads : 1;
  return decode_split((double)H, c.decode_keys, c.threads, splits, c.forks);
}

int tfx_attn_cost_split_count(const tfx_graph *g, const tfx_node *n) {
  tfx_attn_cost c;
  tfx_attn_cost_eval(g, n, &c);
  int S = c.split;
  if (!S) /* decode = split without a count where the model would keep row: the largest S its parts fill */
    for (S = 8; S >= 2 && !tfx_attn_split_fits(g, n, S); S /= 2) {
    }
  return S >= 2 ? S : 0;
}
