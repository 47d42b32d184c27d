/* tfx/tokenizer.h — text to token ids and back, in C, for the runtime
 * (libtfxrt.a): llama2.c `tokenizer.bin`, SentencePiece `.model` (BPE and
 * Unigram), Hugging Face `tokenizer.json` (BPE: GPT-2 byte level and the
 * Llama-style SentencePiece-like one with byte fallback; Unigram) and the vocabulary
 * of a GGUF file (llama.cpp's "llama" and "gpt2" tokenizer models). Functions return a
 * negative tfx_status on failure and never abort or exit; a tokenizer is
 * immutable once opened, so one may be shared by threads. See
 * docs/tokenizers.md. */
#ifndef TFX_TOKENIZER_H
#define TFX_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tfx_tokenizer tfx_tokenizer;

/* The status of a file that is not a tokenizer this runtime reads (bad
 * magic, truncated, malformed, an unsupported option); the message written
 * by tfx_tokenizer_open says which. Same numbering as tfx_status. */
#define TFX_ERR_TOKENIZER (-20)

/* Opens a tokenizer file; its kind is detected from the content (a JSON
 * object: tokenizer.json; the GGUF magic: a GGUF file's vocabulary; a
 * protobuf whose first field is a piece: SentencePiece .model; else
 * llama2.c tokenizer.bin). On failure returns a
 * negative status (TFX_ERR_OPEN, TFX_ERR_TOKENIZER, TFX_ERR_OUT_OF_MEMORY,
 * TFX_ERR_INVALID_ARGUMENT) and, when err is non-NULL, writes a one-line
 * message ("PATH: ...") into err (errlen bytes, NUL-terminated). */
int tfx_tokenizer_open(const char *path, tfx_tokenizer **out, char *err, size_t errlen);
/* The same from bytes in memory (e.g. a tokenizer an application embeds);
 * name is used in messages (NULL: "(memory)"). The bytes may be freed after
 * the call: the tokenizer keeps copies. */
int tfx_tokenizer_open_memory(const void *data, size_t size, const char *name, tfx_tokenizer **out, char *err,
                              size_t errlen);
void tfx_tokenizer_close(tfx_tokenizer *tok);

/* The tokenizer embedded in a compiled model (tfxc --tokenizer PATH when it
 * was compiled): TFX_OK with *out set (close it with tfx_tokenizer_close; it
 * does not depend on the model staying open), TFX_OK with *out NULL when the
 * model embeds none, or a negative status as tfx_tokenizer_open_memory. */
typedef struct tfx_model tfx_model;
int tfx_model_tokenizer(const tfx_model *model, tfx_tokenizer **out, char *err, size_t errlen);

/* The number of ids (pieces), and the special ids (-1 when there is none). */
int tfx_tokenizer_vocab_size(const tfx_tokenizer *tok);
int tfx_tokenizer_bos(const tfx_tokenizer *tok);
int tfx_tokenizer_eos(const tfx_tokenizer *tok);

/* Encodes len bytes of text (UTF-8; invalid bytes are encoded as U+FFFD as
 * SentencePiece does, or as their bytes by a byte-level tokenizer), with the
 * BOS id first when TFX_TOKENIZE_BOS is set and the tokenizer has one.
 * Writes at most max_ids ids and returns how many the whole text needs (so
 * a call with max_ids = 0 sizes the buffer), or a negative status. */
#define TFX_TOKENIZE_BOS 1
#define TFX_TOKENIZE_MAX_BYTES ((size_t)1 << 28) /* longer texts: TFX_ERR_INVALID_ARGUMENT; encode in parts */
int tfx_tokenizer_encode(const tfx_tokenizer *tok, const char *text, size_t len, int flags, int32_t *ids, int max_ids);

/* The bytes of one id as generated text, for streaming: prev is the id
 * before it (-1 at the start); the space a SentencePiece-style tokenizer
 * puts before the first word is dropped after BOS or at the start, byte
 * pieces give their byte, control ids give nothing. Writes at most cap bytes
 * (not NUL-terminated) and returns how many the piece has, or a negative
 * status (TFX_ERR_TOKEN_RANGE for an id outside the vocabulary). */
int tfx_tokenizer_decode_piece(const tfx_tokenizer *tok, int32_t prev, int32_t id, char *buf, size_t cap);

/* The text of n ids (decode_piece over the sequence), NUL-terminated when
 * it fits in cap; returns its length in bytes (without the NUL), or a
 * negative status. */
int tfx_tokenizer_decode(const tfx_tokenizer *tok, const int32_t *ids, int n, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
