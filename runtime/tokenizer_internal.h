/* runtime/tokenizer_internal.h — the tokenizer's shared representation:
 * pieces with scores and types, the piece -> id table, the merge table of
 * rank-based BPE, and the helpers the file readers (tokenizer.c: llama2.c
 * and SentencePiece; tokenizer_hf.c: tokenizer.json) fill it with. */
#ifndef TFX_TOKENIZER_INTERNAL_H
#define TFX_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tfx/tokenizer.h"

/* SentencePiece's piece types (sentencepiece_model.proto numbering) */
enum { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_USER = 4, TOK_UNUSED = 5, TOK_BYTE = 6 };

/* how text becomes ids */
enum {
  TOK_SPM_BPE,     /* merge the adjacent pair whose concatenation scores highest */
  TOK_SPM_UNIGRAM, /* Viterbi over the pieces' log probabilities */
  TOK_RANK_BPE     /* Hugging Face: merge the pair of lowest merge rank */
};

struct tfx_tokenizer {
  int kind;
  int n;
  char **piece; /* NUL-terminated bytes */
  int *plen;
  float *score;
  uint8_t *type;
  int32_t *ht; /* open addressing, piece -> id, -1 empty */
  size_t htcap;
  /* rank BPE: (left id, right id) -> rank and the merged id */
  uint64_t *mkey;
  int32_t *mrank, *mid;
  size_t mcap, mcount;
  int32_t byte_id[256]; /* <0xNN> pieces (byte fallback), -1 absent */
  int unk, bos, eos;
  int add_dummy_prefix, remove_extra_ws, byte_fallback;
  int byte_level; /* GPT-2: bytes mapped to printable code points, regex pre-split */
  int spm_space;  /* text spaces are U+2581 in pieces (SentencePiece, Llama-style HF) */
  int hf_flags;   /* tokenizer.json: the pre-tokenizer's and normalizer's options (tokenizer_hf.c) */
  int max_plen;
  float min_score, max_score;
  /* SentencePiece's precompiled character map (normalizer) */
  uint32_t *cm_trie;
  size_t cm_trie_n, cm_norm_n;
  char *cm_norm;
  /* Hugging Face added tokens matched literally in the text before the model */
  int n_added;
  int32_t *added;
};

/* a new empty tokenizer with room for n pieces (pieces set by tok_set_piece) */
tfx_tokenizer *tok_alloc(int n);
int tok_set_piece(tfx_tokenizer *t, int id, const char *s, size_t len, float score, int type);
/* builds the piece table once every piece is set; 0 or TFX_ERR_OUT_OF_MEMORY */
int tok_finish(tfx_tokenizer *t);
int32_t tok_lookup(const tfx_tokenizer *t, const char *s, size_t len);
int tok_add_merge(tfx_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t merged);
/* encodes one pre-split word (already normalized / byte-mapped) with the model;
 * appends ids through the sink */
typedef struct {
  int32_t *ids;
  int max, n;
} tok_sink;
void tok_emit(tok_sink *s, int32_t id);
int tok_encode_word(const tfx_tokenizer *t, const char *w, size_t len, tok_sink *out);
/* the whole text of a Hugging Face tokenizer (tokenizer_hf.c) */
int tok_hf_encode(const tfx_tokenizer *t, const char *text, size_t len, tok_sink *out);
int tok_hf_open(const char *path, const char *data, size_t size, tfx_tokenizer **out, char *err, size_t errlen);
/* hf_flags: a Split pre-tokenizer by these regexes (tok_split_regex, tokenizer_hf.c) */
enum {
  TOK_SPLIT_LLAMA3 = 256,
  TOK_SPLIT_QWEN2 = 512,
  TOK_HF = 1024 /* Hugging Face rules (tokenizer_hf.c) */,
  TOK_WS_SPLIT = 2048,
  TOK_COLLAPSE_SPACES = 4096
};
/* SentencePiece's precompiled character map (tokenizer.c) */
int tok_set_charsmap(tfx_tokenizer *t, const char *path, const unsigned char *p, size_t n, char *err, size_t errlen);
size_t tok_charsmap_match(const tfx_tokenizer *t, const unsigned char *s, size_t n, const char **rep);
extern const char *const tok_split_regex[2];
/* the vocabulary of a GGUF file (tokenizer_gguf.c) */
int tok_gguf_open(const char *path, const unsigned char *d, size_t size, tfx_tokenizer **out, char *err, size_t errlen);
int tok_hf_decode_piece(const tfx_tokenizer *t, int32_t id, char *buf, size_t cap);
/* UTF-8: the length of the character at s (1 for an invalid byte), and its code point (0xFFFD when invalid) */
int tok_utf8(const unsigned char *s, size_t n, uint32_t *cp);
/* Unicode classes of the GPT-2 pre-tokenizer regex (tokenizer_unicode.c) */
int tok_is_letter(uint32_t cp);
int tok_is_number(uint32_t cp);
int tok_is_space(uint32_t cp);

#endif
