/* ir/interp_attention.h — the reference interpreter's attention kernels
 * (interp_attention.c), called by interp.c for ATTENTION and MLA_ATTENTION.
 * Private to ir/. */
#ifndef TFX_INTERP_ATTENTION_H
#define TFX_INTERP_ATTENTION_H

#include "ir.h"

/* ATTENTION: q [q_rows, H*d], k and v [k_rows, G*d]. Causal: k, v rows are
 * first stored at positions pos.. of kc / vc ([max_seq, G*d] each) and query t
 * (position pos + t) attends the cached keys 0..pos+t; otherwise query row t
 * attends the k_rows keys of this call. Mask, ALiBi and sparse pattern as in
 * ir/attention.c; a row with no allowed key gives zeros. relb: T5's relative
 * bias table [n_buckets, H] (the 4th operand) or NULL. */
/* A key mask (ATTENTION's key_mask operand, one value per key: 0 drops the
 * key), held as f32 or, for an i32 forward input, as int32; data NULL: none.
 * seg: the segment ids (ATTENTION's segments operand, one per row; query i
 * keeps only the keys of its segment, tfx_segment_bounds) or NULL. */
typedef struct {
  const void *data;
  int is_i32;
  const int32_t *seg;
  const int32_t *gmask; /* a longformer pattern's per-call global tokens (nonzero = global), else NULL */
} tfx_interp_key_mask;

int tfx_interp_attention(const tfx_node *n, const float *q, const float *k, const float *v, const float *relb,
                         int64_t n_buckets, tfx_interp_key_mask km, float *kc, float *vc, float *y, int64_t q_rows,
                         int64_t k_rows, int64_t pos, int64_t max_seq, char *err, size_t errlen);

/* MLA_ATTENTION (causal) in its plain, non-absorbed form: K and V of every
 * head are rebuilt from the cached latent. cache: [max_seq, r + dr]; g the
 * kv_norm gain or NULL. */
int tfx_interp_mla(const tfx_node *n, const float *q, const float *ckv, const float *wkv_b, const float *g,
                   float *cache, float *y, int64_t rows, int64_t pos, int64_t max_seq, char *err, size_t errlen);

#endif
