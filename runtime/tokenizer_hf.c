/* runtime/tokenizer_hf.c — Hugging Face tokenizer.json (stub) */
#include "tfx/tfx.h"
#include "rt_internal.h"
#include "tokenizer_internal.h"
int tok_hf_encode(const tfx_tokenizer *t, const char *text, size_t len, tok_sink *out) { (void)t; (void)text; (void)len; (void)out; return TFX_ERR_INTERNAL; }
int tok_hf_open(const char *path, const char *data, size_t size, tfx_tokenizer **out, char *err, size_t errlen) { (void)data; (void)size; (void)out; tfx_rt_error(err, errlen, 0, "%s: tokenizer.json not yet", path); return TFX_ERR_TOKENIZER; }
int tok_hf_decode_piece(const tfx_tokenizer *t, int32_t id, char *buf, size_t cap) { (void)t; (void)id; (void)buf; (void)cap; return 0; }
