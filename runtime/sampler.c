/* runtime/sampler.c — token sampling: greedy argmax, temperature sampling
 * and nucleus (top-p) sampling, driven by a seeded xorshift64* generator kept
 * in the sampler so a seed reproduces its tokens. Works in place over the
 * logits buffer; allocates nothing. */
#include <math.h>
#include <string.h>

#include "rt_internal.h"

#define TFX_RT_RNG_DEFAULT 0x9E3779B97F4A7C15ull

static uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

void tfx_sampler_init(tfx_sampler *s, float temperature, float top_p, uint64_t seed) {
  if (!s) return;
  s->temperature = temperature;
  s->top_p = top_p;
  s->rng_state = splitmix64(seed);
  if (s->rng_state == 0) s->rng_state = TFX_RT_RNG_DEFAULT;
}

/* xorshift64*; a uniform double in [0, 1). */
static double next_uniform(tfx_sampler *s) {
  uint64_t x = s->rng_state ? s->rng_state : TFX_RT_RNG_DEFAULT;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  s->rng_state = x;
  return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

/* Lowest index of the largest logit; NaN counts as -infinity. */
static int32_t argmax(const float *x, int32_t n) {
  int32_t best = 0;
  float bv = -INFINITY;
  int found = 0;
  for (int32_t i = 0; i < n; i++) {
    if (isnan(x[i])) continue;
    if (!found || x[i] > bv) {
      best = i;
      bv = x[i];
      found = 1;
    }
  }
  return best;
}

/* Sum of p[i] >= v (p[i] >= 0), in index order. */
static double mass_at_least(const float *p, int32_t n, float v) {
  double m = 0;
  for (int32_t i = 0; i < n; i++)
    if (p[i] >= v) m += p[i];
  return m;
}

static uint32_t float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* Nucleus sampling over unnormalized probabilities p (total `sum`): the
 * candidates sorted by probability (ties: lowest index first), the smallest
 * prefix whose mass reaches top_p * sum, sampled within. The prefix is found
 * without sorting: the cut value v (the smallest probability kept) is the
 * largest v with mass(p >= v) >= target, found by bisection over the bit
 * patterns of non-negative floats (ordered like the floats), then the ties
 * at v are taken in index order until the target is reached. */
static int32_t sample_top_p(tfx_sampler *s, const float *p, int32_t n, double sum, float top_p) {
  double target = (double)top_p * sum;
  float pmax = 0;
  for (int32_t i = 0; i < n; i++)
    if (p[i] > pmax) pmax = p[i];
  uint32_t lo = 0, hi = float_bits(pmax) + 1; /* mass(lo) >= target > mass(hi) */
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (mass_at_least(p, n, bits_float(mid)) >= target)
      lo = mid;
    else
      hi = mid;
  }
  float v = bits_float(lo);
  double kept = 0;
  for (int32_t i = 0; i < n; i++)
    if (p[i] > v) kept += p[i];
  int32_t last_tie = -1;
  for (int32_t i = 0; i < n && kept < target; i++)
    if (p[i] == v) {
      kept += p[i];
      last_tie = i;
    }
  double r = next_uniform(s) * kept, cum = 0;
  int32_t pick = -1;
  for (int32_t i = 0; i < n; i++) {
    if (!(p[i] > v || (p[i] == v && i <= last_tie))) continue;
    cum += p[i];
    pick = i;
    if (r < cum) return i;
  }
  return pick >= 0 ? pick : argmax(p, n); /* rounding: the last candidate */
}

int32_t tfx_sample(tfx_sampler *s, float *logits, int32_t n) {
  if (!s || !logits || n <= 0) return TFX_ERR_INVALID_ARGUMENT;
  float t = s->temperature, top_p = s->top_p;
  if (!(t >= 0) || isinf(t) || !(top_p > 0 && top_p <= 1)) return TFX_ERR_INVALID_ARGUMENT;
  if (t == 0) return argmax(logits, n);
  int32_t best = argmax(logits, n);
  float mx = logits[best];
  if (isnan(mx) || isinf(mx)) return best; /* all NaN/-inf, or a +inf logit dominates */
  double sum = 0;
  for (int32_t i = 0; i < n; i++) {
    float l = logits[i];
    float p = isnan(l) ? 0.0f : expf((l - mx) / t);
    logits[i] = p;
    sum += p;
  }
  if (top_p < 1) return sample_top_p(s, logits, n, sum, top_p);
  double r = next_uniform(s) * sum, cum = 0;
  int32_t last = best;
  for (int32_t i = 0; i < n; i++) {
    if (logits[i] <= 0) continue;
    cum += logits[i];
    last = i;
    if (r < cum) return i;
  }
  return last;
}
