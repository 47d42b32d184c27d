/* tests/support/small_models.h — .tfx sources of small models that several
 * tests compile with their weights statement's random weights. */
#ifndef TFX_TEST_SMALL_MODELS_H
#define TFX_TEST_SMALL_MODELS_H

/* A one-layer causal decoder whose forward takes a second per-token input,
 * `types : i32[T]` (3 type ids added through an embedding, as BERT's
 * token_type_ids): dim 16, vocab 20, max_seq 24, RoPE, random:5. */
extern const char tfx_test_typed_decoder[];

#endif
