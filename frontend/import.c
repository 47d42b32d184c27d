/* frontend/import.c — `tfxc import`: reads a checkpoint's configuration (a
 * Hugging Face config.json, or a llama GGUF file's metadata) into one
 * description of the architecture (norms, attention layout, positions, MLP,
 * residual order, tied classifier) and writes it as a readable .tfx whose
 * rename { } block binds the file's tensors as saved (views, row slices,
 * per-head interleaved layouts, expert stacks) and whose tokens { } section
 * holds the config's special ids. Families the language cannot express are
 * refused with a message naming the model_type and the reason. */
#define _GNU_SOURCE
#include "import.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf.h"
#include "json.h"
#include "weights.h"

const char *const tfx_import_families =
    "llama, mistral, qwen2, qwen3, mixtral, gemma, gemma2, olmo2, phi, phi3, gpt2, gpt_neox, bloom, falcon, bert, "
    "roberta, "
    "xlm-roberta, t5, bart (Hugging Face folders) and llama GGUF files";

enum { NORM_RMS, NORM_LAYER };
enum { POS_NONE, POS_ROPE, POS_ALIBI, POS_LEARNED };
enum { MLP_GLU, MLP_CLASSIC, MLP_MOE };
/* RES_SANDWICH (Gemma 2): x + norm(f(norm(x))) with both norms, for each sublayer */
enum { RES_SEQ, RES_PAR1, RES_PAR2, RES_POST, RES_SUBNORM, RES_SANDWICH };
enum { QK_NONE, QK_HEAD, QK_WIDTH }; /* q/k RMSNorm: none, per head (Qwen3), whole width (OLMo 2) */
enum { SEQ_NONE, SEQ_T5, SEQ_BART };

/* One architecture, as the .tfx writes it. */
typedef struct spec {
  const char *family;
  int64_t dim, layers, heads, kv_heads, head_dim, hidden, vocab, max_seq, max_pos, experts, top_k, window;
  int64_t rotary_dim;   /* 0: the whole head */
  int rope_interleaved; /* RoPE on adjacent pairs (llama.cpp's GGUF layout), else half-split (Hugging Face) */
  double eps, theta;
  int norm, pos, mlp, residual;
  int qkv_bias, o_bias, mlp_bias, norm_bias;
  const char *act;    /* silu, gelu, gelu_tanh, relu */
  int emb_norm;       /* a LayerNorm after the embedding (BLOOM) */
  int64_t type_vocab; /* BERT's type_vocab_size: > 1 a `types : i32[T]` input reads the token type
                         table; 1: type 0's row added to the embedding; 0: none */
  int key_mask;       /* a `mask : i32[T]` input, every attention's key_mask (attention_mask) */
  int64_t pos_offset; /* learned positions start at this row (RoBERTa: padding_idx + 1) */
  int pos_skip_pad;   /* RoBERTa: pad tokens are not counted (positions(..., pad = padding_idx)) */
  int emb_scale;      /* the embedding is scaled by sqrt(dim) (Gemma) */
  int gain_plus1;     /* every RMSNorm gain is applied as (1 + w) (Gemma) */
  int alt_window;     /* the sliding window only on even layers (0, 2, ...; Gemma 2), global attention on odd */
  double qscalar;     /* > 0: scores scaled by 1/sqrt(qscalar) instead of 1/sqrt(head_dim) (Gemma 2) */
  double attn_cap;    /* > 0: attention scores soft-capped, c tanh(s / c) (Gemma 2) */
  double final_cap;   /* > 0: the logits soft-capped (Gemma 2) */
  int qk_norm;        /* QK_* */
  int qk_layernorm;   /* the q/k norms are LayerNorms with biases (Phi's qk_layernorm) */
  int final_norm;     /* a norm before the classifier */
  int tied;           /* the classifier is the embedding */
  int head_bias;      /* the classifier has a bias (Phi) */
  int encoder;        /* mask = none, output: the last hidden states */
  /* an encoder-decoder (T5, BART): the source is the forward's input `src :
   * i32[max_src]` of 1..max_src rows per call; layers and hidden are the
   * encoder's */
  int seq2seq;                    /* SEQ_T5, SEQ_BART; 0: none */
  int64_t dec_layers, dec_hidden; /* the decoder's layers and FFN width */
  int64_t buckets, max_distance;  /* T5's relative position buckets */
  int gated;                      /* T5 v1.1: gated-gelu FFN (wi_0, wi_1) */
  int logits_bias;                /* BART's final_logits_bias */
  int64_t bos, eos, pad;
  FILE *rules; /* the rename { } rules, one per line */
  char *rules_text;
  size_t rules_len;
} spec;

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- config.json ---- */

typedef struct cfg {
  const char *path; /* for messages */
  const tfx_fe_json *root;
  char *err;
  size_t errlen;
  int bad;
} cfg;

static const tfx_fe_json *cfg_get(const cfg *c, const char *key) {
  const tfx_fe_json *v = tfx_fe_json_get(c->root, key);
  return v && v->kind != TFX_FE_JSON_NULL ? v : NULL;
}

/* An integer (>= min) or def when absent (def < min: required). */
static int64_t cfg_int(cfg *c, const char *key, int64_t def, int64_t min) {
  const tfx_fe_json *v = cfg_get(c, key);
  if (!v) {
    if (def >= min) return def;
    if (!c->bad) fail(c->err, c->errlen, "%s: \"%s\" is missing", c->path, key);
    c->bad = 1;
    return min;
  }
  if (v->kind != TFX_FE_JSON_NUMBER || !v->is_uint || v->uval > (uint64_t)INT32_MAX || (int64_t)v->uval < min) {
    if (!c->bad)
      fail(c->err, c->errlen, "%s: \"%s\" must be an integer from %lld to %d", c->path, key, (long long)min, INT32_MAX);
    c->bad = 1;
    return min;
  }
  return (int64_t)v->uval;
}

static double cfg_num(cfg *c, const char *key, double def) {
  const tfx_fe_json *v = cfg_get(c, key);
  if (!v) return def;
  if (v->kind != TFX_FE_JSON_NUMBER) {
    if (!c->bad) fail(c->err, c->errlen, "%s: \"%s\" must be a number", c->path, key);
    c->bad = 1;
    return def;
  }
  return v->num;
}

static int cfg_bool(cfg *c, const char *key, int def) {
  const tfx_fe_json *v = cfg_get(c, key);
  if (!v) return def;
  if (v->kind != TFX_FE_JSON_TRUE && v->kind != TFX_FE_JSON_FALSE) {
    if (!c->bad) fail(c->err, c->errlen, "%s: \"%s\" must be true or false", c->path, key);
    c->bad = 1;
    return def;
  }
  return v->kind == TFX_FE_JSON_TRUE;
}

static const char *cfg_str(cfg *c, const char *key, const char *def) {
  const tfx_fe_json *v = cfg_get(c, key);
  if (!v) return def;
  if (v->kind != TFX_FE_JSON_STRING) {
    if (!c->bad) fail(c->err, c->errlen, "%s: \"%s\" must be a string", c->path, key);
    c->bad = 1;
    return def;
  }
  return v->str;
}

/* A special id: an integer, or the first of a list; -1 when absent or not one. */
static int64_t cfg_token(const cfg *c, const char *key) {
  const tfx_fe_json *v = cfg_get(c, key);
  if (v && v->kind == TFX_FE_JSON_ARRAY && v->n > 0) v = &v->items[0];
  return v && v->kind == TFX_FE_JSON_NUMBER && v->is_uint && v->uval <= INT32_MAX ? (int64_t)v->uval : -1;
}

/* The activation of hidden_act-like keys. */
static const char *act_of(cfg *c, const char *key, const char *def) {
  const char *a = cfg_str(c, key, def);
  if (c->bad) return "silu";
  if (!strcmp(a, "silu") || !strcmp(a, "swish")) return "silu";
  if (!strcmp(a, "gelu")) return "gelu";
  if (!strcmp(a, "gelu_new") || !strcmp(a, "gelu_pytorch_tanh")) return "gelu_tanh";
  if (!strcmp(a, "relu")) return "relu";
  fail(c->err, c->errlen, "%s: %s \"%s\" is not supported (supported: silu, gelu, gelu_new, gelu_pytorch_tanh, relu)",
       c->path, key, a);
  c->bad = 1;
  return "silu";
}

#define R(...) fprintf(s->rules, __VA_ARGS__)

/* Checks what every family needs; refusals name the model_type. */
static int refuse(cfg *c, const spec *s, const char *why) {
  if (!c->bad) fail(c->err, c->errlen, "%s: model_type '%s' cannot be imported: %s", c->path, s->family, why);
  c->bad = 1;
  return -1;
}

/* A soft-capping value: def when absent, 0 (none) when null, else a number > 0. */
static double cfg_cap(cfg *c, const char *key, double def) {
  const tfx_fe_json *v = tfx_fe_json_get(c->root, key);
  if (!v) return def;
  if (v->kind == TFX_FE_JSON_NULL) return 0;
  double x = cfg_num(c, key, def);
  if (!c->bad && !(x > 0 && x < 1e30)) {
    fail(c->err, c->errlen, "%s: \"%s\" must be a number > 0 or null", c->path, key);
    c->bad = 1;
  }
  return x;
}

static void no_rope_scaling(cfg *c, spec *s) {
  if (cfg_get(c, "rope_scaling"))
    refuse(c, s, "\"rope_scaling\" is set (scaled RoPE, e.g. Llama 3.1's or YaRN, is not in the language yet)");
}

/* Llama, Mistral, Qwen2, Qwen3, Mixtral, Gemma, Gemma 2, OLMo 2: RMSNorm, GQA
 * with half-split RoPE, SwiGLU (or Mixtral's experts, Gemma's GeGLU). Qwen3
 * adds per-head q/k RMSNorms; OLMo 2 whole-width q/k norms and norms after
 * each sublayer (before its residual add) instead of before; Gemma scales the
 * embedding by sqrt(dim) and applies every RMSNorm gain as (1 + w). Gemma 2
 * adds norms after each sublayer too (four per layer: input_layernorm,
 * post_attention_layernorm, pre_feedforward_layernorm,
 * post_feedforward_layernorm), scales scores by 1/sqrt(query_pre_attn_scalar),
 * soft-caps scores and logits, and slides a window on even layers only
 * (modeling_gemma2.py: `sliding_window if not bool(layer_idx % 2)`). */
static void llama_like(cfg *c, spec *s) {
  int qwen = !strcmp(s->family, "qwen2"), qwen3 = !strcmp(s->family, "qwen3");
  int mixtral = !strcmp(s->family, "mixtral"), gemma2 = !strcmp(s->family, "gemma2");
  int gemma = gemma2 || !strcmp(s->family, "gemma");
  int olmo2 = !strcmp(s->family, "olmo2");
  s->dim = cfg_int(c, "hidden_size", -1, 1);
  s->layers = cfg_int(c, "num_hidden_layers", -1, 1);
  s->heads = cfg_int(c, "num_attention_heads", -1, 1);
  s->kv_heads = cfg_int(c, "num_key_value_heads", s->heads, 1);
  /* Qwen3Config's and GemmaConfig's defaults: head_dim 128 and 256 */
  s->head_dim = cfg_int(c, "head_dim", qwen3 ? 128 : gemma ? 256 : s->heads > 0 ? s->dim / s->heads : 1, 1);
  if (olmo2) s->head_dim = s->heads > 0 ? s->dim / s->heads : 1;
  s->hidden = cfg_int(c, "intermediate_size", -1, 1);
  s->max_pos = cfg_int(c, "max_position_embeddings", 2048, 1);
  s->eps = cfg_num(c, "rms_norm_eps", olmo2 ? 1e-5 : 1e-6);
  s->theta = cfg_num(c, "rope_theta", 10000);
  s->tied = cfg_bool(c, "tie_word_embeddings", gemma);
  /* Gemma's MLP uses hidden_activation (gelu_pytorch_tanh when unset) and ignores hidden_act */
  s->act = gemma ? act_of(c, "hidden_activation", "gelu_pytorch_tanh") : act_of(c, "hidden_act", "silu");
  no_rope_scaling(c, s);
  s->norm = NORM_RMS;
  s->pos = POS_ROPE;
  s->residual = olmo2 ? RES_SUBNORM : gemma2 ? RES_SANDWICH : RES_SEQ;
  s->final_norm = 1;
  s->qkv_bias = qwen || cfg_bool(c, "attention_bias", 0);
  s->o_bias = !qwen && cfg_bool(c, "attention_bias", 0);
  s->mlp_bias = !qwen3 && !gemma && !olmo2 && cfg_bool(c, "mlp_bias", 0);
  s->qk_norm = qwen3 ? QK_HEAD : olmo2 ? QK_WIDTH : QK_NONE;
  s->emb_scale = s->gain_plus1 = gemma;
  if (!strcmp(s->family, "mistral") || mixtral || (qwen && cfg_bool(c, "use_sliding_window", 0)))
    s->window = cfg_int(c, "sliding_window", 0, 0);
  if (gemma2) { /* Gemma2Config's defaults */
    s->window = cfg_int(c, "sliding_window", 4096, 1);
    s->alt_window = 1;
    s->qscalar = cfg_num(c, "query_pre_attn_scalar", 224);
    if (!c->bad && !(s->qscalar > 0 && s->qscalar < 1e30)) refuse(c, s, "query_pre_attn_scalar is not > 0");
    s->attn_cap = cfg_cap(c, "attn_logit_softcapping", 50.0);
    s->final_cap = cfg_cap(c, "final_logit_softcapping", 30.0);
  }
  if (qwen3 && cfg_bool(c, "use_sliding_window", 0))
    refuse(c, s,
           "use_sliding_window is true (Qwen3 slides only from layer max_window_layers on: layers that differ "
           "are not one repeated block)");
  if (olmo2 && cfg_get(c, "clip_qkv")) refuse(c, s, "clip_qkv is set (clamped q, k, v are not in the language yet)");
  if (mixtral) {
    s->mlp = MLP_MOE;
    s->experts = cfg_int(c, "num_local_experts", -1, 1);
    s->top_k = cfg_int(c, "num_experts_per_tok", 2, 1);
    if (strcmp(s->act, "silu")) refuse(c, s, "its experts' hidden_act is not silu");
  } else {
    s->mlp = MLP_GLU;
  }
  R("  \"model.embed_tokens.weight\" = \"tok_embeddings\"\n");
  R("  \"model.norm.weight\" = \"norm_g\"\n");
  R("  \"lm_head.weight\" = \"%s\"\n", s->tied ? "" : "output");
  if (olmo2) {
    R("  \"model.layers.{i}.post_attention_layernorm.weight\" = \"layers.{i}.ln1_g\"\n");
    R("  \"model.layers.{i}.post_feedforward_layernorm.weight\" = \"layers.{i}.ln2_g\"\n");
  } else {
    R("  \"model.layers.{i}.input_layernorm.weight\" = \"layers.{i}.ln1_g\"\n");
    R("  \"model.layers.{i}.post_attention_layernorm.weight\" = \"layers.{i}.ln2_g\"\n");
  }
  if (gemma2) {
    R("  \"model.layers.{i}.pre_feedforward_layernorm.weight\" = \"layers.{i}.ln3_g\"\n");
    R("  \"model.layers.{i}.post_feedforward_layernorm.weight\" = \"layers.{i}.ln4_g\"\n");
  }
  if (s->qk_norm) {
    R("  \"model.layers.{i}.self_attn.q_norm.weight\" = \"layers.{i}.q_norm\"\n");
    R("  \"model.layers.{i}.self_attn.k_norm.weight\" = \"layers.{i}.k_norm\"\n");
  }
  static const char *const qkvo[] = {"q", "k", "v", "o"};
  for (int k = 0; k < 4; k++) {
    R("  \"model.layers.{i}.self_attn.%s_proj.weight\" = \"layers.{i}.w%s\"\n", qkvo[k], qkvo[k]);
    if (k < 3 ? s->qkv_bias : s->o_bias)
      R("  \"model.layers.{i}.self_attn.%s_proj.bias\" = \"layers.{i}.b%s\"\n", qkvo[k], qkvo[k]);
  }
  R("  \"model.layers.{i}.self_attn.rotary_emb.inv_freq\" = \"\"\n");
  if (mixtral) {
    R("  \"model.layers.{i}.block_sparse_moe.gate.weight\" = \"layers.{i}.gate\"\n");
    for (int k = 1; k <= 3; k++)
      R("  \"model.layers.{i}.block_sparse_moe.experts.{e}.w%d.weight\" = \"layers.{i}.w%d\"[e]\n", k, k);
  } else {
    static const char *const mlp[][2] = {{"gate", "1"}, {"up", "3"}, {"down", "2"}};
    for (int k = 0; k < 3; k++) {
      R("  \"model.layers.{i}.mlp.%s_proj.weight\" = \"layers.{i}.w%s\"\n", mlp[k][0], mlp[k][1]);
      if (s->mlp_bias) R("  \"model.layers.{i}.mlp.%s_proj.bias\" = \"layers.{i}.b%s\"\n", mlp[k][0], mlp[k][1]);
    }
  }
}

/* Phi-3: Llama's math with fused qkv_proj and gate_up_proj (row slices). */
static void phi3(cfg *c, spec *s) {
  s->dim = cfg_int(c, "hidden_size", -1, 1);
  s->layers = cfg_int(c, "num_hidden_layers", -1, 1);
  s->heads = cfg_int(c, "num_attention_heads", -1, 1);
  s->kv_heads = cfg_int(c, "num_key_value_heads", s->heads, 1);
  s->head_dim = s->heads > 0 ? s->dim / s->heads : 1;
  s->hidden = cfg_int(c, "intermediate_size", -1, 1);
  s->max_pos = cfg_int(c, "max_position_embeddings", 4096, 1);
  s->eps = cfg_num(c, "rms_norm_eps", 1e-5);
  s->theta = cfg_num(c, "rope_theta", 10000);
  s->tied = cfg_bool(c, "tie_word_embeddings", 0);
  s->act = act_of(c, "hidden_act", "silu");
  no_rope_scaling(c, s);
  if (cfg_num(c, "partial_rotary_factor", 1.0) != 1.0) refuse(c, s, "partial_rotary_factor is not 1");
  s->norm = NORM_RMS;
  s->pos = POS_ROPE;
  s->residual = RES_SEQ;
  s->final_norm = 1;
  s->mlp = MLP_GLU;
  s->window = cfg_int(c, "sliding_window", 0, 0);
  R("  \"model.embed_tokens.weight\" = \"tok_embeddings\"\n");
  R("  \"model.norm.weight\" = \"norm_g\"\n");
  R("  \"lm_head.weight\" = \"%s\"\n", s->tied ? "" : "output");
  R("  \"model.layers.{i}.input_layernorm.weight\" = \"layers.{i}.ln1_g\"\n");
  R("  \"model.layers.{i}.post_attention_layernorm.weight\" = \"layers.{i}.ln2_g\"\n");
  R("  \"model.layers.{i}.self_attn.qkv_proj.weight\"[0:heads * head_dim] = \"layers.{i}.wq\"\n");
  R("  \"model.layers.{i}.self_attn.qkv_proj.weight\"[heads * head_dim:(heads + kv_heads) * head_dim] = "
    "\"layers.{i}.wk\"\n");
  R("  \"model.layers.{i}.self_attn.qkv_proj.weight\"[(heads + kv_heads) * head_dim:] = \"layers.{i}.wv\"\n");
  R("  \"model.layers.{i}.self_attn.o_proj.weight\" = \"layers.{i}.wo\"\n");
  R("  \"model.layers.{i}.mlp.gate_up_proj.weight\"[0:hidden] = \"layers.{i}.w1\"\n");
  R("  \"model.layers.{i}.mlp.gate_up_proj.weight\"[hidden:] = \"layers.{i}.w3\"\n");
  R("  \"model.layers.{i}.mlp.down_proj.weight\" = \"layers.{i}.w2\"\n");
  R("  \"model.layers.{i}.self_attn.rotary_emb.inv_freq\" = \"\"\n");
}

/* Phi (1, 1.5, 2): LayerNorm, attention and MLP in parallel on one norm,
 * partial half-split RoPE, biases everywhere, a classifier with a bias. */
static void phi(cfg *c, spec *s) {
  s->dim = cfg_int(c, "hidden_size", -1, 1);
  s->layers = cfg_int(c, "num_hidden_layers", -1, 1);
  s->heads = cfg_int(c, "num_attention_heads", -1, 1);
  s->kv_heads = cfg_int(c, "num_key_value_heads", s->heads, 1);
  s->head_dim = s->heads > 0 ? s->dim / s->heads : 1;
  s->hidden = cfg_int(c, "intermediate_size", -1, 1);
  s->max_pos = cfg_int(c, "max_position_embeddings", 2048, 1);
  s->eps = cfg_num(c, "layer_norm_eps", 1e-5);
  s->theta = cfg_num(c, "rope_theta", 10000);
  s->tied = cfg_bool(c, "tie_word_embeddings", 0);
  s->act = act_of(c, "hidden_act", "gelu_new");
  s->rotary_dim = (int64_t)(s->head_dim * cfg_num(c, "partial_rotary_factor", 0.5));
  no_rope_scaling(c, s);
  if (cfg_bool(c, "qk_layernorm", 0)) s->qk_norm = QK_HEAD, s->qk_layernorm = 1;
  s->norm = NORM_LAYER;
  s->norm_bias = 1;
  s->pos = POS_ROPE;
  s->residual = RES_PAR1;
  s->final_norm = 1;
  s->mlp = MLP_CLASSIC;
  s->mlp_bias = s->qkv_bias = s->o_bias = 1;
  s->head_bias = !s->tied;
  R("  \"model.embed_tokens.weight\" = \"tok_embeddings\"\n");
  R("  \"model.final_layernorm.weight\" = \"norm_g\"\n");
  R("  \"model.final_layernorm.bias\" = \"norm_b\"\n");
  R("  \"lm_head.weight\" = \"%s\"\n", s->tied ? "" : "output");
  R("  \"lm_head.bias\" = \"%s\"\n", s->tied ? "" : "output_b");
  R("  \"model.layers.{i}.input_layernorm.weight\" = \"layers.{i}.ln1_g\"\n");
  R("  \"model.layers.{i}.input_layernorm.bias\" = \"layers.{i}.ln1_b\"\n");
  static const char *const qkv[][2] = {{"q_proj", "q"}, {"k_proj", "k"}, {"v_proj", "v"}, {"dense", "o"}};
  for (int k = 0; k < 4; k++) {
    R("  \"model.layers.{i}.self_attn.%s.weight\" = \"layers.{i}.w%s\"\n", qkv[k][0], qkv[k][1]);
    R("  \"model.layers.{i}.self_attn.%s.bias\" = \"layers.{i}.b%s\"\n", qkv[k][0], qkv[k][1]);
  }
  R("  \"model.layers.{i}.mlp.fc1.weight\" = \"layers.{i}.w1\"\n");
  R("  \"model.layers.{i}.mlp.fc1.bias\" = \"layers.{i}.b1\"\n");
  R("  \"model.layers.{i}.mlp.fc2.weight\" = \"layers.{i}.w2\"\n");
  R("  \"model.layers.{i}.mlp.fc2.bias\" = \"layers.{i}.b2\"\n");
  if (s->qk_layernorm) {
    static const char *const qk[] = {"q", "k"};
    for (int k = 0; k < 2; k++) {
      R("  \"model.layers.{i}.self_attn.%s_layernorm.weight\" = \"layers.{i}.%s_norm\"\n", qk[k], qk[k]);
      R("  \"model.layers.{i}.self_attn.%s_layernorm.bias\" = \"layers.{i}.%s_norm_b\"\n", qk[k], qk[k]);
    }
  }
  R("  \"model.layers.{i}.self_attn.rotary_emb.inv_freq\" = \"\"\n");
}

/* GPT-2: learned positions, Conv1D weights [in, out] (transposed), c_attn
 * fusing q, k, v by columns. */
static void gpt2(cfg *c, spec *s) {
  s->dim = cfg_int(c, "n_embd", 768, 1);
  s->layers = cfg_int(c, "n_layer", 12, 1);
  s->heads = cfg_int(c, "n_head", 12, 1);
  s->kv_heads = s->heads;
  s->head_dim = s->dim / s->heads;
  s->hidden = cfg_int(c, "n_inner", 4 * s->dim, 1);
  s->max_pos = cfg_int(c, "n_positions", 1024, 1);
  s->eps = cfg_num(c, "layer_norm_epsilon", 1e-5);
  s->act = act_of(c, "activation_function", "gelu_new");
  s->tied = cfg_bool(c, "tie_word_embeddings", 1);
  if (cfg_bool(c, "scale_attn_by_inverse_layer_idx", 0) || cfg_bool(c, "reorder_and_upcast_attn", 0) ||
      !cfg_bool(c, "scale_attn_weights", 1))
    refuse(c, s, "scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn or scale_attn_weights = false is set");
  s->norm = NORM_LAYER;
  s->norm_bias = 1;
  s->pos = POS_LEARNED;
  s->residual = RES_SEQ;
  s->final_norm = 1;
  s->mlp = MLP_CLASSIC;
  s->mlp_bias = s->qkv_bias = s->o_bias = 1;
  R("  \"*wte.weight\" = \"tok_embeddings\"\n");
  R("  \"*wpe.weight\" = \"pos_embeddings\"\n");
  R("  \"*ln_f.weight\" = \"norm_g\"\n");
  R("  \"*ln_f.bias\" = \"norm_b\"\n");
  R("  \"lm_head.weight\" = \"%s\"\n", s->tied ? "" : "output");
  R("  \"*h.{i}.ln_1.weight\" = \"layers.{i}.ln1_g\"\n");
  R("  \"*h.{i}.ln_1.bias\" = \"layers.{i}.ln1_b\"\n");
  R("  \"*h.{i}.ln_2.weight\" = \"layers.{i}.ln2_g\"\n");
  R("  \"*h.{i}.ln_2.bias\" = \"layers.{i}.ln2_b\"\n");
  static const char *const qkv[] = {"q", "k", "v"};
  for (int k = 0; k < 3; k++) {
    R("  \"*h.{i}.attn.c_attn.weight\".T[%d * dim:%d * dim] = \"layers.{i}.w%s\"\n", k, k + 1, qkv[k]);
    R("  \"*h.{i}.attn.c_attn.bias\"[%d * dim:%d * dim] = \"layers.{i}.b%s\"\n", k, k + 1, qkv[k]);
  }
  R("  \"*h.{i}.attn.c_proj.weight\".T = \"layers.{i}.wo\"\n");
  R("  \"*h.{i}.attn.c_proj.bias\" = \"layers.{i}.bo\"\n");
  R("  \"*h.{i}.mlp.c_fc.weight\".T = \"layers.{i}.w1\"\n");
  R("  \"*h.{i}.mlp.c_fc.bias\" = \"layers.{i}.b1\"\n");
  R("  \"*h.{i}.mlp.c_proj.weight\".T = \"layers.{i}.w2\"\n");
  R("  \"*h.{i}.mlp.c_proj.bias\" = \"layers.{i}.b2\"\n");
  R("  \"*.attn.bias\" = \"\"\n");
  R("  \"*.attn.masked_bias\" = \"\"\n");
}

/* BLOOM: ALiBi, an embedding LayerNorm, query_key_value interleaved per head. */
static void bloom(cfg *c, spec *s) {
  s->dim = cfg_int(c, "hidden_size", 64, 1);
  s->layers = cfg_int(c, "n_layer", 2, 1);
  s->heads = cfg_int(c, "n_head", 8, 1);
  s->kv_heads = s->heads;
  s->head_dim = s->dim / s->heads;
  s->hidden = 4 * s->dim;
  s->max_pos = 0; /* ALiBi: no table */
  s->eps = cfg_num(c, "layer_norm_epsilon", 1e-5);
  s->act = "gelu_tanh";
  s->tied = cfg_bool(c, "tie_word_embeddings", 1);
  if (cfg_bool(c, "apply_residual_connection_post_layernorm", 0))
    refuse(c, s, "apply_residual_connection_post_layernorm is true");
  s->norm = NORM_LAYER;
  s->norm_bias = 1;
  s->pos = POS_ALIBI;
  s->residual = RES_SEQ;
  s->final_norm = 1;
  s->emb_norm = 1;
  s->mlp = MLP_CLASSIC;
  s->mlp_bias = s->qkv_bias = s->o_bias = 1;
  R("  \"*word_embeddings.weight\" = \"tok_embeddings\"\n");
  R("  \"*word_embeddings_layernorm.weight\" = \"emb_norm_g\"\n");
  R("  \"*word_embeddings_layernorm.bias\" = \"emb_norm_b\"\n");
  R("  \"*ln_f.weight\" = \"norm_g\"\n");
  R("  \"*ln_f.bias\" = \"norm_b\"\n");
  R("  \"lm_head.weight\" = \"%s\"\n", s->tied ? "" : "output");
  R("  \"*h.{i}.input_layernorm.weight\" = \"layers.{i}.ln1_g\"\n");
  R("  \"*h.{i}.input_layernorm.bias\" = \"layers.{i}.ln1_b\"\n");
  R("  \"*h.{i}.post_attention_layernorm.weight\" = \"layers.{i}.ln2_g\"\n");
  R("  \"*h.{i}.post_attention_layernorm.bias\" = \"layers.{i}.ln2_b\"\n");
  static const char *const qkv[] = {"q", "k", "v"};
  for (int k = 0; k < 3; k++) {
    R("  \"*h.{i}.self_attention.query_key_value.weight\".view(heads, 3, head_dim, dim)[:, %d] = "
      "\"layers.{i}.w%s\"\n",
      k, qkv[k]);
    R("  \"*h.{i}.self_attention.query_key_value.bias\".view(heads, 3, head_dim)[:, %d] = \"layers.{i}.b%s\"\n", k,
      qkv[k]);
  }
  R("  \"*h.{i}.self_attention.dense.weight\" = \"layers.{i}.wo\"\n");
  R("  \"*h.{i}.self_attention.dense.bias\" = \"layers.{i}.bo\"\n");
  R("  \"*h.{i}.mlp.dense_h_to_4h.weight\" = \"layers.{i}.w1\"\n");
  R("  \"*h.{i}.mlp.dense_h_to_4h.bias\" = \"layers.{i}.b1\"\n");
  R("  \"*h.{i}.mlp.dense_4h_to_h.weight\" = \"layers.{i}.w2\"\n");
  R("  \"*h.{i}.mlp.dense_4h_to_h.bias\" = \"layers.{i}.b2\"\n");
}

/* GPT-NeoX (Pythia): query_key_value interleaved per head, partial RoPE,
 * parallel residual with two norms (or sequential). */
static void gpt_neox(cfg *c, spec *s) {
  s->dim = cfg_int(c, "hidden_size", -1, 1);
  s->layers = cfg_int(c, "num_hidden_layers", -1, 1);
  s->heads = cfg_int(c, "num_attention_heads", -1, 1);
  s->kv_heads = s->heads;
  s->head_dim = s->heads > 0 ? s->dim / s->heads : 1;
  s->hidden = cfg_int(c, "intermediate_size", -1, 1);
  s->max_pos = cfg_int(c, "max_position_embeddings", 2048, 1);
  s->eps = cfg_num(c, "layer_norm_eps", 1e-5);
  s->theta = cfg_num(c, "rotary_emb_base", 10000);
  s->rotary_dim = (int64_t)(s->head_dim * cfg_num(c, "rotary_pct", 0.25));
  s->act = act_of(c, "hidden_act", "gelu");
  s->tied = cfg_bool(c, "tie_word_embeddings", 0);
  no_rope_scaling(c, s);
  s->norm = NORM_LAYER;
  s->norm_bias = 1;
  s->pos = POS_ROPE;
  s->residual = cfg_bool(c, "use_parallel_residual", 1) ? RES_PAR2 : RES_SEQ;
  s->final_norm = 1;
  s->mlp = MLP_CLASSIC;
  s->mlp_bias = 1;
  s->qkv_bias = s->o_bias = cfg_bool(c, "attention_bias", 1);
  R("  \"gpt_neox.embed_in.weight\" = \"tok_embeddings\"\n");
  R("  \"gpt_neox.final_layer_norm.weight\" = \"norm_g\"\n");
  R("  \"gpt_neox.final_layer_norm.bias\" = \"norm_b\"\n");
  R("  \"embed_out.weight\" = \"%s\"\n", s->tied ? "" : "output");
  R("  \"gpt_neox.layers.{i}.input_layernorm.weight\" = \"layers.{i}.ln1_g\"\n");
  R("  \"gpt_neox.layers.{i}.input_layernorm.bias\" = \"layers.{i}.ln1_b\"\n");
  R("  \"gpt_neox.layers.{i}.post_attention_layernorm.weight\" = \"layers.{i}.ln2_g\"\n");
  R("  \"gpt_neox.layers.{i}.post_attention_layernorm.bias\" = \"layers.{i}.ln2_b\"\n");
  static const char *const qkv[] = {"q", "k", "v"};
  for (int k = 0; k < 3; k++) {
    R("  \"gpt_neox.layers.{i}.attention.query_key_value.weight\".view(heads, 3, head_dim, dim)[:, %d] = "
      "\"layers.{i}.w%s\"\n",
      k, qkv[k]);
    if (s->qkv_bias)
      R("  \"gpt_neox.layers.{i}.attention.query_key_value.bias\".view(heads, 3, head_dim)[:, %d] = "
        "\"layers.{i}.b%s\"\n",
        k, qkv[k]);
  }
  R("  \"gpt_neox.layers.{i}.attention.dense.weight\" = \"layers.{i}.wo\"\n");
  if (s->o_bias) R("  \"gpt_neox.layers.{i}.attention.dense.bias\" = \"layers.{i}.bo\"\n");
  R("  \"gpt_neox.layers.{i}.mlp.dense_h_to_4h.weight\" = \"layers.{i}.w1\"\n");
  R("  \"gpt_neox.layers.{i}.mlp.dense_h_to_4h.bias\" = \"layers.{i}.b1\"\n");
  R("  \"gpt_neox.layers.{i}.mlp.dense_4h_to_h.weight\" = \"layers.{i}.w2\"\n");
  R("  \"gpt_neox.layers.{i}.mlp.dense_4h_to_h.bias\" = \"layers.{i}.b2\"\n");
  R("  \"*.attention.bias\" = \"\"\n");
  R("  \"*.attention.masked_bias\" = \"\"\n");
  R("  \"*.rotary_emb.inv_freq\" = \"\"\n");
}

/* Falcon: multi-query (one K/V head after the queries), the grouped layout
 * of the new decoder architecture, or BLOOM's interleaved one; parallel
 * attention and MLP. */
static void falcon(cfg *c, spec *s) {
  s->dim = cfg_int(c, "hidden_size", -1, 1);
  s->layers = cfg_int(c, "num_hidden_layers", -1, 1);
  s->heads = cfg_int(c, "num_attention_heads", -1, 1);
  s->head_dim = s->heads > 0 ? s->dim / s->heads : 1;
  s->hidden = cfg_int(c, "ffn_hidden_size", 4 * s->dim, 1);
  s->max_pos = cfg_int(c, "max_position_embeddings", 2048, 1);
  s->eps = cfg_num(c, "layer_norm_epsilon", 1e-5);
  s->theta = cfg_num(c, "rope_theta", 10000);
  s->act = act_of(c, "activation", "gelu");
  s->tied = cfg_bool(c, "tie_word_embeddings", 1);
  int new_arch = cfg_bool(c, "new_decoder_architecture", 0), mq = cfg_bool(c, "multi_query", 1);
  int bias = cfg_bool(c, "bias", 0), parallel = cfg_bool(c, "parallel_attn", 1);
  if (cfg_bool(c, "alibi", 0)) refuse(c, s, "alibi is true (Falcon's ALiBi variant is not supported)");
  no_rope_scaling(c, s);
  s->kv_heads = new_arch ? cfg_int(c, "num_kv_heads", s->heads, 1) : mq ? 1 : s->heads;
  int n_ln = new_arch ? (int)cfg_int(c, "num_ln_in_parallel_attn", 2, 1) : 1;
  s->norm = NORM_LAYER;
  s->norm_bias = 1;
  s->pos = POS_ROPE;
  s->residual = new_arch ? (n_ln == 2 ? RES_PAR2 : RES_PAR1) : parallel ? RES_PAR1 : RES_SEQ;
  s->final_norm = 1;
  s->mlp = MLP_CLASSIC;
  s->mlp_bias = s->qkv_bias = s->o_bias = bias;
  if (new_arch && (s->kv_heads < 1 || s->heads % s->kv_heads)) refuse(c, s, "num_kv_heads does not divide the heads");
  R("  \"transformer.word_embeddings.weight\" = \"tok_embeddings\"\n");
  R("  \"transformer.ln_f.weight\" = \"norm_g\"\n");
  R("  \"transformer.ln_f.bias\" = \"norm_b\"\n");
  R("  \"lm_head.weight\" = \"%s\"\n", s->tied ? "" : "output");
  if (n_ln == 2 && new_arch) {
    R("  \"transformer.h.{i}.ln_attn.weight\" = \"layers.{i}.ln1_g\"\n");
    R("  \"transformer.h.{i}.ln_attn.bias\" = \"layers.{i}.ln1_b\"\n");
    R("  \"transformer.h.{i}.ln_mlp.weight\" = \"layers.{i}.ln2_g\"\n");
    R("  \"transformer.h.{i}.ln_mlp.bias\" = \"layers.{i}.ln2_b\"\n");
  } else {
    R("  \"transformer.h.{i}.input_layernorm.weight\" = \"layers.{i}.ln1_g\"\n");
    R("  \"transformer.h.{i}.input_layernorm.bias\" = \"layers.{i}.ln1_b\"\n");
    if (s->residual == RES_SEQ) {
      R("  \"transformer.h.{i}.post_attention_layernorm.weight\" = \"layers.{i}.ln2_g\"\n");
      R("  \"transformer.h.{i}.post_attention_layernorm.bias\" = \"layers.{i}.ln2_b\"\n");
    }
  }
  static const char *const qkv[] = {"q", "k", "v"};
  static const char *const tensors[] = {"weight", "bias"};
  for (int b = 0; b < 1 + bias; b++) {
    const char *t = tensors[b], *w = b ? "b" : "w", *rows = b ? "" : ", dim";
    if (new_arch) {
      R("  \"transformer.h.{i}.self_attention.query_key_value.%s\".view(kv_heads, heads / kv_heads + 2, "
        "head_dim%s)[:, 0:heads / kv_heads] = \"layers.{i}.%sq\"\n",
        t, rows, w);
      R("  \"transformer.h.{i}.self_attention.query_key_value.%s\".view(kv_heads, heads / kv_heads + 2, "
        "head_dim%s)[:, heads / kv_heads] = \"layers.{i}.%sk\"\n",
        t, rows, w);
      R("  \"transformer.h.{i}.self_attention.query_key_value.%s\".view(kv_heads, heads / kv_heads + 2, "
        "head_dim%s)[:, heads / kv_heads + 1] = \"layers.{i}.%sv\"\n",
        t, rows, w);
    } else if (mq) {
      R("  \"transformer.h.{i}.self_attention.query_key_value.%s\"[0:heads * head_dim] = \"layers.{i}.%sq\"\n", t, w);
      R("  \"transformer.h.{i}.self_attention.query_key_value.%s\"[heads * head_dim:(heads + 1) * head_dim] = "
        "\"layers.{i}.%sk\"\n",
        t, w);
      R("  \"transformer.h.{i}.self_attention.query_key_value.%s\"[(heads + 1) * head_dim:] = \"layers.{i}.%sv\"\n", t,
        w);
    } else {
      for (int k = 0; k < 3; k++)
        R("  \"transformer.h.{i}.self_attention.query_key_value.%s\".view(heads, 3, head_dim%s)[:, %d] = "
          "\"layers.{i}.%s%s\"\n",
          t, rows, k, w, qkv[k]);
    }
  }
  R("  \"transformer.h.{i}.self_attention.dense.weight\" = \"layers.{i}.wo\"\n");
  R("  \"transformer.h.{i}.mlp.dense_h_to_4h.weight\" = \"layers.{i}.w1\"\n");
  R("  \"transformer.h.{i}.mlp.dense_4h_to_h.weight\" = \"layers.{i}.w2\"\n");
  if (bias) {
    R("  \"transformer.h.{i}.self_attention.dense.bias\" = \"layers.{i}.bo\"\n");
    R("  \"transformer.h.{i}.mlp.dense_h_to_4h.bias\" = \"layers.{i}.b1\"\n");
    R("  \"transformer.h.{i}.mlp.dense_4h_to_h.bias\" = \"layers.{i}.b2\"\n");
  }
}

/* BERT: an encoder (post-norm, bidirectional), learned positions, the
 * token type ids and the attention mask as inputs (`types` only with
 * type_vocab_size > 1, else type 0's row); the output is the last hidden
 * states. RoBERTa and XLM-R:
 * the same layout, positions from row padding_idx + 1 on that skip pad
 * tokens (`pad = padding_idx`), as transformers numbers them. */
static void bert(cfg *c, spec *s) {
  int roberta = strcmp(s->family, "bert") != 0;
  s->dim = cfg_int(c, "hidden_size", -1, 1);
  s->layers = cfg_int(c, "num_hidden_layers", -1, 1);
  s->heads = cfg_int(c, "num_attention_heads", -1, 1);
  s->kv_heads = s->heads;
  s->head_dim = s->heads > 0 ? s->dim / s->heads : 1;
  s->hidden = cfg_int(c, "intermediate_size", -1, 1);
  s->max_pos = cfg_int(c, "max_position_embeddings", 512, 1);
  s->eps = cfg_num(c, "layer_norm_eps", 1e-12);
  s->act = act_of(c, "hidden_act", "gelu");
  const char *pe = cfg_str(c, "position_embedding_type", "absolute");
  if (strcmp(pe, "absolute")) refuse(c, s, "position_embedding_type is not \"absolute\"");
  if (roberta) {
    int64_t pad = cfg_token(c, "pad_token_id");
    s->pos_offset = (pad >= 0 ? pad : 1) + 1; /* RobertaConfig's pad_token_id defaults to 1 */
    s->pos_skip_pad = 1;
  }
  s->norm = NORM_LAYER;
  s->norm_bias = 1;
  s->pos = POS_LEARNED;
  s->residual = RES_POST;
  s->emb_norm = 1;
  s->type_vocab = cfg_int(c, "type_vocab_size", 2, 1);
  s->key_mask = 1;
  s->encoder = 1;
  s->mlp = MLP_CLASSIC;
  s->mlp_bias = s->qkv_bias = s->o_bias = 1;
  R("  \"*embeddings.word_embeddings.weight\" = \"tok_embeddings\"\n");
  R("  \"*embeddings.position_embeddings.weight\" = \"pos_embeddings\"\n");
  if (s->type_vocab > 1)
    R("  \"*embeddings.token_type_embeddings.weight\" = \"type_embeddings\"\n");
  else
    R("  \"*embeddings.token_type_embeddings.weight\"[0] = \"type_embedding\"\n");
  R("  \"*embeddings.LayerNorm.weight\" = \"emb_norm_g\"\n");
  R("  \"*embeddings.LayerNorm.bias\" = \"emb_norm_b\"\n");
  static const char *const qkv[][2] = {{"query", "q"}, {"key", "k"}, {"value", "v"}};
  for (int k = 0; k < 3; k++) {
    R("  \"*encoder.layer.{i}.attention.self.%s.weight\" = \"layers.{i}.w%s\"\n", qkv[k][0], qkv[k][1]);
    R("  \"*encoder.layer.{i}.attention.self.%s.bias\" = \"layers.{i}.b%s\"\n", qkv[k][0], qkv[k][1]);
  }
  R("  \"*encoder.layer.{i}.attention.output.dense.weight\" = \"layers.{i}.wo\"\n");
  R("  \"*encoder.layer.{i}.attention.output.dense.bias\" = \"layers.{i}.bo\"\n");
  R("  \"*encoder.layer.{i}.attention.output.LayerNorm.weight\" = \"layers.{i}.ln1_g\"\n");
  R("  \"*encoder.layer.{i}.attention.output.LayerNorm.bias\" = \"layers.{i}.ln1_b\"\n");
  R("  \"*encoder.layer.{i}.intermediate.dense.weight\" = \"layers.{i}.w1\"\n");
  R("  \"*encoder.layer.{i}.intermediate.dense.bias\" = \"layers.{i}.b1\"\n");
  R("  \"*encoder.layer.{i}.output.dense.weight\" = \"layers.{i}.w2\"\n");
  R("  \"*encoder.layer.{i}.output.dense.bias\" = \"layers.{i}.b2\"\n");
  R("  \"*encoder.layer.{i}.output.LayerNorm.weight\" = \"layers.{i}.ln2_g\"\n");
  R("  \"*encoder.layer.{i}.output.LayerNorm.bias\" = \"layers.{i}.ln2_b\"\n");
  R("  \"*embeddings.position_ids\" = \"\"\n");
  R("  \"*pooler.*\" = \"\"\n");
  R("  \"cls.*\" = \"\"\n");
  if (roberta) R("  \"lm_head.*\" = \"\"\n");
}

/* T5 (T5ForConditionalGeneration): pre-norm RMSNorm layers (no bias), no
 * score scaling, relative position bias tables in layer 0 of each stack
 * shared by its layers (bidirectional in the encoder), ReLU (v1.0) or
 * gated-gelu (v1.1) FFN, cross-attention without position bias, the
 * classifier tied to `shared` with the d_model^-0.5 rescale (folded into the
 * final norm's gain) or an untied lm_head. */
static void t5(cfg *c, spec *s) {
  s->seq2seq = SEQ_T5;
  s->dim = cfg_int(c, "d_model", 512, 1);
  s->layers = cfg_int(c, "num_layers", 6, 1);
  s->dec_layers = cfg_int(c, "num_decoder_layers", s->layers, 1);
  s->heads = s->kv_heads = cfg_int(c, "num_heads", 8, 1);
  s->head_dim = cfg_int(c, "d_kv", 64, 1);
  s->hidden = s->dec_hidden = cfg_int(c, "d_ff", 2048, 1);
  s->eps = cfg_num(c, "layer_norm_epsilon", 1e-6);
  s->buckets = cfg_int(c, "relative_attention_num_buckets", 32, 1);
  s->max_distance = cfg_int(c, "relative_attention_max_distance", 128, 1);
  s->max_pos = cfg_int(c, "n_positions", 512, 1); /* relative positions: the default context */
  s->tied = cfg_bool(c, "tie_word_embeddings", 1);
  const char *ff = cfg_str(c, "feed_forward_proj", "relu");
  if (!ff || (strcmp(ff, "relu") && strcmp(ff, "gated-gelu")))
    refuse(c, s, "feed_forward_proj is not \"relu\" or \"gated-gelu\"");
  s->gated = ff && !strcmp(ff, "gated-gelu");
  s->act = s->gated ? "gelu_tanh" : "relu";
  s->norm = NORM_RMS;
  s->pos = POS_NONE;
  R("  \"shared.weight\" = \"shared\"\n");
  R("  \"encoder.embed_tokens.weight\" = \"\"\n");
  R("  \"decoder.embed_tokens.weight\" = \"\"\n");
  R("  \"lm_head.weight\" = \"%s\"\n", s->tied ? "" : "output");
  R("  \"encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight\" = \"enc_rel\"\n");
  R("  \"decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight\" = \"dec_rel\"\n");
  R("  \"encoder.final_layer_norm.weight\" = \"enc_norm\"\n");
  R("  \"decoder.final_layer_norm.weight\" = \"dec_norm\"\n");
  static const char *const st[2] = {"encoder", "decoder"};
  for (int k = 0; k < 2; k++) {
    const char *w = st[k];
    int ffl = k ? 2 : 1; /* the FFN's sublayer */
    R("  \"%s.block.{i}.layer.0.layer_norm.weight\" = \"%s.{i}.sa_norm\"\n", w, w);
    for (const char *q = "qkvo"; *q; q++)
      R("  \"%s.block.{i}.layer.0.SelfAttention.%c.weight\" = \"%s.{i}.w%c\"\n", w, *q, w, *q);
    if (k) {
      R("  \"%s.block.{i}.layer.1.layer_norm.weight\" = \"%s.{i}.ca_norm\"\n", w, w);
      for (const char *q = "qkvo"; *q; q++)
        R("  \"%s.block.{i}.layer.1.EncDecAttention.%c.weight\" = \"%s.{i}.cw%c\"\n", w, *q, w, *q);
    }
    R("  \"%s.block.{i}.layer.%d.layer_norm.weight\" = \"%s.{i}.ff_norm\"\n", w, ffl, w);
    if (s->gated) {
      R("  \"%s.block.{i}.layer.%d.DenseReluDense.wi_0.weight\" = \"%s.{i}.w1\"\n", w, ffl, w);
      R("  \"%s.block.{i}.layer.%d.DenseReluDense.wi_1.weight\" = \"%s.{i}.w3\"\n", w, ffl, w);
    } else {
      R("  \"%s.block.{i}.layer.%d.DenseReluDense.wi.weight\" = \"%s.{i}.w1\"\n", w, ffl, w);
    }
    R("  \"%s.block.{i}.layer.%d.DenseReluDense.wo.weight\" = \"%s.{i}.w2\"\n", w, ffl, w);
  }
}

/* BART (BartForConditionalGeneration): learned positions from row 2 on,
 * layernorm_embedding, post-norm layers with biases, gelu, the embedding
 * scaled by sqrt(d_model) with scale_embedding, final_logits_bias, the
 * classifier tied to `shared` (or an untied lm_head). */
static void bart(cfg *c, spec *s) {
  s->seq2seq = SEQ_BART;
  s->dim = cfg_int(c, "d_model", 1024, 1);
  s->layers = cfg_int(c, "encoder_layers", 12, 1);
  s->dec_layers = cfg_int(c, "decoder_layers", 12, 1);
  s->heads = s->kv_heads = cfg_int(c, "encoder_attention_heads", 16, 1);
  if (cfg_int(c, "decoder_attention_heads", s->heads, 1) != s->heads)
    refuse(c, s, "the decoder's attention heads differ from the encoder's");
  s->head_dim = s->heads > 0 ? s->dim / s->heads : 1;
  s->hidden = cfg_int(c, "encoder_ffn_dim", 4096, 1);
  s->dec_hidden = cfg_int(c, "decoder_ffn_dim", 4096, 1);
  s->max_pos = cfg_int(c, "max_position_embeddings", 1024, 1) + 2;
  s->pos_offset = 2;
  s->eps = 1e-5; /* torch.nn.LayerNorm's */
  s->act = act_of(c, "activation_function", "gelu");
  s->emb_scale = cfg_bool(c, "scale_embedding", 0);
  s->tied = cfg_bool(c, "tie_word_embeddings", 1);
  if (cfg_bool(c, "normalize_before", 0) || cfg_bool(c, "add_final_layer_norm", 0))
    refuse(c, s, "normalize_before / add_final_layer_norm (mBART's pre-norm layout) is not written");
  s->norm = NORM_LAYER;
  s->norm_bias = 1;
  s->pos = POS_LEARNED;
  s->logits_bias = 1;
  R("  \"model.shared.weight\" = \"shared\"\n");
  R("  \"model.encoder.embed_tokens.weight\" = \"\"\n");
  R("  \"model.decoder.embed_tokens.weight\" = \"\"\n");
  R("  \"lm_head.weight\" = \"%s\"\n", s->tied ? "" : "output");
  R("  \"final_logits_bias\"[0] = \"final_logits_bias\"\n");
  R("  \"model.encoder.embed_positions.weight\"[2:2 + max_src] = \"enc_pos\"\n");
  R("  \"model.decoder.embed_positions.weight\" = \"dec_pos\"\n");
  static const char *const st[2] = {"encoder", "decoder"};
  for (int k = 0; k < 2; k++) {
    const char *w = st[k];
    R("  \"model.%s.layernorm_embedding.weight\" = \"%s_ln_g\"\n", w, w);
    R("  \"model.%s.layernorm_embedding.bias\" = \"%s_ln_b\"\n", w, w);
    static const char *const att[2][2] = {{"self_attn", ""}, {"encoder_attn", "c"}};
    for (int a = 0; a < 1 + k; a++) {
      static const char *const pr[4][2] = {{"q_proj", "q"}, {"k_proj", "k"}, {"v_proj", "v"}, {"out_proj", "o"}};
      for (int q = 0; q < 4; q++) {
        R("  \"model.%s.layers.{i}.%s.%s.weight\" = \"%s.{i}.%sw%s\"\n", w, att[a][0], pr[q][0], w, att[a][1],
          pr[q][1]);
        R("  \"model.%s.layers.{i}.%s.%s.bias\" = \"%s.{i}.%sb%s\"\n", w, att[a][0], pr[q][0], w, att[a][1], pr[q][1]);
      }
      R("  \"model.%s.layers.{i}.%s_layer_norm.weight\" = \"%s.{i}.%sln_g\"\n", w, att[a][0], w, a ? "c" : "s");
      R("  \"model.%s.layers.{i}.%s_layer_norm.bias\" = \"%s.{i}.%sln_b\"\n", w, att[a][0], w, a ? "c" : "s");
    }
    R("  \"model.%s.layers.{i}.fc1.weight\" = \"%s.{i}.w1\"\n", w, w);
    R("  \"model.%s.layers.{i}.fc1.bias\" = \"%s.{i}.b1\"\n", w, w);
    R("  \"model.%s.layers.{i}.fc2.weight\" = \"%s.{i}.w2\"\n", w, w);
    R("  \"model.%s.layers.{i}.fc2.bias\" = \"%s.{i}.b2\"\n", w, w);
    R("  \"model.%s.layers.{i}.final_layer_norm.weight\" = \"%s.{i}.fln_g\"\n", w, w);
    R("  \"model.%s.layers.{i}.final_layer_norm.bias\" = \"%s.{i}.fln_b\"\n", w, w);
  }
}

typedef struct family {
  const char *name;
  void (*fill)(cfg *c, spec *s);
} family;

static const family families[] = {
    {"llama", llama_like},  {"mistral", llama_like}, {"qwen2", llama_like},
    {"qwen3", llama_like},  {"mixtral", llama_like}, {"gemma", llama_like},
    {"gemma2", llama_like}, {"olmo2", llama_like},   {"phi3", phi3},
    {"phi", phi},           {"gpt2", gpt2},          {"bloom", bloom},
    {"gpt_neox", gpt_neox}, {"falcon", falcon},      {"bert", bert},
    {"roberta", bert},      {"xlm-roberta", bert},   {"t5", t5},
    {"bart", bart},
};

/* model types people will try, with why they are refused */
static const char *const refused[][2] = {
    {"longformer", "import does not write it yet (write the .tfx by hand: examples/longformer/longformer_call.tfx "
                   "binds a LongformerModel checkpoint as saved, per-call global tokens included)"},
};

/* ---- writing the .tfx ---- */

static const char *norm_call(const spec *s, const char *x, const char *g, char *buf, size_t len) {
  if (s->norm == NORM_RMS)
    snprintf(buf, len, "rmsnorm(%s, %s%s_g, eps = eps)", x, s->gain_plus1 ? "1 + " : "", g);
  else
    snprintf(buf, len, "layernorm(%s, %s_g, %s_b, eps = eps)", x, g, g);
  return buf;
}

static void write_mlp(FILE *o, const spec *s, const char *f) {
  if (s->mlp == MLP_MOE) {
    fprintf(o, "moe(%s, gate, w1, w2, w3, experts = experts, top_k = top_k, act = silu, gate = softmax_topk)", f);
  } else if (s->mlp == MLP_GLU) {
    fprintf(o, "linear(glu(%s, w1, w3, act = %s%s), w2%s)", f, s->act, s->mlp_bias ? ", b1 = b1, b3 = b3" : "",
            s->mlp_bias ? ", b2" : "");
  } else {
    const char *open = !strcmp(s->act, "gelu_tanh") ? "gelu" : s->act;
    const char *close = !strcmp(s->act, "gelu_tanh") ? ", approximate = tanh)" : ")";
    fprintf(o, "linear(%s(linear(%s, w1%s)%s, w2%s)", open, f, s->mlp_bias ? ", b1" : "", close,
            s->mlp_bias ? ", b2" : "");
  }
}

/* window: the layer's sliding window (0: none) */
static void write_attention(FILE *o, const spec *s, const char *a, int64_t window) {
  fprintf(o, "attention(%s, wq, wk, wv, wo, heads = heads, kv_heads = kv_heads,\n                     ", a);
  if (s->pos == POS_ROPE) {
    fprintf(o, "position = rope(theta = theta, style = %s", s->rope_interleaved ? "interleaved" : "half");
    if (s->rotary_dim && s->rotary_dim != s->head_dim) fprintf(o, ", rotary_dim = %lld", (long long)s->rotary_dim);
    fprintf(o, "), ");
  } else if (s->pos == POS_ALIBI) {
    fprintf(o, "position = alibi, ");
  }
  fprintf(o, "mask = %s", s->encoder ? "none" : "causal");
  if (s->key_mask) fprintf(o, ", key_mask = m");
  if (window > 0 && window < s->max_seq) fprintf(o, ", sparse = sliding(window = %lld)", (long long)window);
  if (s->qscalar > 0 || s->attn_cap > 0) fprintf(o, ",\n                     ");
  if (s->qscalar > 0) fprintf(o, "scale = 1 / sqrt(qscalar)%s", s->attn_cap > 0 ? ", " : "");
  if (s->attn_cap > 0) fprintf(o, "softcap = attn_softcap");
  if (s->qk_layernorm)
    fprintf(o, ",\n                     qk_norm = layernorm, q_norm = q_norm, k_norm = k_norm, q_norm_b = q_norm_b, "
               "k_norm_b = k_norm_b, norm_eps = eps");
  else if (s->qk_norm)
    fprintf(o, ",\n                     q_norm = q_norm, k_norm = k_norm, norm_eps = eps");
  if (s->qkv_bias) fprintf(o, ",\n                     bq = bq, bk = bk, bv = bv");
  if (s->o_bias) fprintf(o, ", bo = bo");
  fprintf(o, ")");
}

/* A path as a .tfx string's contents (quotes, backslashes, tabs and line
 * ends escaped), or in a comment (control characters as '?'). */
static void put_path(FILE *o, const char *p, int in_string) {
  for (; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (in_string && (c == '"' || c == '\\'))
      fprintf(o, "\\%c", c);
    else if (in_string && (c == '\n' || c == '\t'))
      fprintf(o, "\\%c", c == '\n' ? 'n' : 't');
    else
      fputc(c < ' ' || c == 0x7f ? '?' : c, o);
  }
}

/* One layer block: `name`, attention with the sliding window `window` (0: none). */
static void write_layer(FILE *o, const spec *s, const char *name, int64_t window) {
  char b1[128], b2[128];
  fprintf(o, "\nblock %s(x : f32[T, dim]%s) -> f32[T, dim] {\n", name, s->key_mask ? ", m : i32[T]" : "");
  int n_norms = s->residual == RES_PAR1 ? 1 : s->residual == RES_SANDWICH ? 4 : 2;
  for (int k = 1; k <= n_norms; k++) {
    fprintf(o, "  param ln%d_g : f32[dim]\n", k);
    if (s->norm_bias) fprintf(o, "  param ln%d_b : f32[dim]\n", k);
  }
  fprintf(o, "  param wq : f32[heads * head_dim, dim]\n  param wk : f32[kv_heads * head_dim, dim]\n");
  fprintf(o, "  param wv : f32[kv_heads * head_dim, dim]\n  param wo : f32[dim, heads * head_dim]\n");
  if (s->qkv_bias)
    fprintf(o, "  param bq : f32[heads * head_dim]\n  param bk : f32[kv_heads * head_dim]\n"
               "  param bv : f32[kv_heads * head_dim]\n");
  if (s->o_bias) fprintf(o, "  param bo : f32[dim]\n");
  if (s->qk_norm == QK_HEAD) fprintf(o, "  param q_norm : f32[head_dim]\n  param k_norm : f32[head_dim]\n");
  if (s->qk_layernorm) fprintf(o, "  param q_norm_b : f32[head_dim]\n  param k_norm_b : f32[head_dim]\n");
  if (s->qk_norm == QK_WIDTH)
    fprintf(o, "  param q_norm : f32[heads * head_dim]\n  param k_norm : f32[kv_heads * head_dim]\n");
  if (s->mlp == MLP_MOE) {
    fprintf(o, "  param gate : f32[experts, dim]\n  param w1 : f32[experts, hidden, dim]\n"
               "  param w2 : f32[experts, dim, hidden]\n  param w3 : f32[experts, hidden, dim]\n");
  } else {
    fprintf(o, "  param w1 : f32[hidden, dim]\n");
    if (s->mlp == MLP_GLU) fprintf(o, "  param w3 : f32[hidden, dim]\n");
    fprintf(o, "  param w2 : f32[dim, hidden]\n");
    if (s->mlp_bias) {
      fprintf(o, "  param b1 : f32[hidden]\n");
      if (s->mlp == MLP_GLU) fprintf(o, "  param b3 : f32[hidden]\n");
      fprintf(o, "  param b2 : f32[dim]\n");
    }
  }
  fprintf(o, "\n");
  switch (s->residual) {
  case RES_SEQ:
    fprintf(o, "  a = %s\n  h = x + ", norm_call(s, "x", "ln1", b1, sizeof b1));
    write_attention(o, s, "a", window);
    fprintf(o, "\n  f = %s\n  return h + ", norm_call(s, "h", "ln2", b2, sizeof b2));
    write_mlp(o, s, "f");
    break;
  case RES_PAR1:
    fprintf(o, "  a = %s\n  return x + ", norm_call(s, "x", "ln1", b1, sizeof b1));
    write_attention(o, s, "a", window);
    fprintf(o, " +\n         ");
    write_mlp(o, s, "a");
    break;
  case RES_PAR2:
    fprintf(o, "  a = %s\n  f = %s\n  return x + ", norm_call(s, "x", "ln1", b1, sizeof b1),
            norm_call(s, "x", "ln2", b2, sizeof b2));
    write_attention(o, s, "a", window);
    fprintf(o, " +\n         ");
    write_mlp(o, s, "f");
    break;
  case RES_SUBNORM: /* OLMo 2: x + norm(f(x)) */
    fprintf(o, "  h = x + rmsnorm(");
    write_attention(o, s, "x", window);
    fprintf(o, ", %sln1_g, eps = eps)\n  return h + rmsnorm(", s->gain_plus1 ? "1 + " : "");
    write_mlp(o, s, "h");
    fprintf(o, ", %sln2_g, eps = eps)", s->gain_plus1 ? "1 + " : "");
    break;
  case RES_SANDWICH: /* Gemma 2: x + norm(f(norm(x))) around each sublayer */
    fprintf(o, "  a = %s\n  h = x + rmsnorm(", norm_call(s, "x", "ln1", b1, sizeof b1));
    write_attention(o, s, "a", window);
    fprintf(o, ", 1 + ln2_g, eps = eps)\n  f = %s\n  return h + rmsnorm(", norm_call(s, "h", "ln3", b2, sizeof b2));
    write_mlp(o, s, "f");
    fprintf(o, ", 1 + ln4_g, eps = eps)");
    break;
  default: /* RES_POST: BERT's norm(x + f(x)) */
    fprintf(o, "  h = layernorm(x + ");
    write_attention(o, s, "x", window);
    fprintf(o, ", ln1_g, ln1_b, eps = eps)\n  return layernorm(h + ");
    write_mlp(o, s, "h");
    fprintf(o, ", ln2_g, ln2_b, eps = eps)");
    break;
  }
  fprintf(o, "\n}\n");
}

/* An encoder-decoder's params, blocks and forward (T5, BART). */
static void write_seq2seq(FILE *o, const spec *s) {
  int t5 = s->seq2seq == SEQ_T5;
  const char *ffn =
      t5 ? (s->gated ? "linear(glu(f, w1, w3, act = gelu_tanh), w2)" : "linear(relu(linear(f, w1)), w2)") : NULL;
  const char *act = !strcmp(s->act, "gelu_tanh") ? "gelu" : s->act;
  const char *act_close = !strcmp(s->act, "gelu_tanh") ? ", approximate = tanh)" : ")";
  fprintf(o, "\nparam shared : f32[vocab, dim]\n");
  if (!s->tied) fprintf(o, "param output : f32[vocab, dim]\n");
  if (t5) {
    fprintf(o, "param enc_rel : f32[buckets, heads]  # layer 0's, shared by the stack\n"
               "param dec_rel : f32[buckets, heads]\nparam enc_norm : f32[dim]\nparam dec_norm : f32[dim]\n");
  } else {
    fprintf(o, "param enc_pos : f32[max_src, dim]   # rows 2.. of the encoder's positions\n"
               "param dec_pos : f32[max_pos, dim]\nparam encoder_ln_g : f32[dim]\nparam encoder_ln_b : f32[dim]\n"
               "param decoder_ln_g : f32[dim]\nparam decoder_ln_b : f32[dim]\nparam final_logits_bias : f32[vocab]\n");
  }
  for (int k = 0; k < 2; k++) {
    const char *x = k ? "T" : "max_src";
    if (k)
      fprintf(o, "\nblock dec_layer(x : f32[T, dim], enc : f32[max_src, dim]) -> f32[T, dim] {\n");
    else
      fprintf(o, "\nblock enc_layer(x : f32[max_src, dim]) -> f32[max_src, dim] {\n");
    (void)x;
    const char *hid = k ? "dec_hidden" : "hidden";
    for (int a = 0; a < 1 + k; a++) {
      const char *p = a ? "c" : "";
      fprintf(o, "  param %swq : f32[heads * head_dim, dim]\n  param %swk : f32[heads * head_dim, dim]\n", p, p);
      fprintf(o, "  param %swv : f32[heads * head_dim, dim]\n  param %swo : f32[dim, heads * head_dim]\n", p, p);
      if (!t5)
        fprintf(o,
                "  param %sbq : f32[dim]\n  param %sbk : f32[dim]\n  param %sbv : f32[dim]\n  param %sbo : f32[dim]\n",
                p, p, p, p);
      if (t5)
        fprintf(o, "  param %s_norm : f32[dim]\n", a ? "ca" : "sa");
      else
        fprintf(o, "  param %sln_g : f32[dim]\n  param %sln_b : f32[dim]\n", a ? "c" : "s", a ? "c" : "s");
    }
    fprintf(o, "  param w1 : f32[%s, dim]\n", hid);
    if (t5 && s->gated) fprintf(o, "  param w3 : f32[%s, dim]\n", hid);
    fprintf(o, "  param w2 : f32[dim, %s]\n", hid);
    if (t5)
      fprintf(o, "  param ff_norm : f32[dim]\n\n");
    else
      fprintf(o, "  param b1 : f32[%s]\n  param b2 : f32[dim]\n  param fln_g : f32[dim]\n  param fln_b : f32[dim]\n\n",
              hid);
    if (t5) {
      fprintf(o,
              "  h = x + attention(rmsnorm(x, sa_norm, eps = eps), wq, wk, wv, wo, heads = heads, mask = %s, scale = "
              "none,\n"
              "                    position = t5(%s, buckets = buckets, max_distance = max_distance, bidirectional = "
              "%s))\n",
              k ? "causal" : "none", k ? "dec_rel" : "enc_rel", k ? "false" : "true");
      if (k)
        fprintf(o,
                "  h = h + attention(rmsnorm(h, ca_norm, eps = eps), cwq, cwk, cwv, cwo, heads = heads, memory = enc,\n"
                "                    mask = none, scale = none)\n");
      fprintf(o, "  f = rmsnorm(h, ff_norm, eps = eps)\n  return h + %s\n}\n", ffn);
    } else {
      fprintf(o,
              "  h = layernorm(x + attention(x, wq, wk, wv, wo, heads = heads, mask = %s, bq = bq, bk = bk, bv = bv, "
              "bo = bo),\n                sln_g, sln_b, eps = eps)\n",
              k ? "causal" : "none");
      if (k)
        fprintf(o,
                "  h = layernorm(h + attention(h, cwq, cwk, cwv, cwo, heads = heads, memory = enc, mask = none,\n"
                "                                bq = cbq, bk = cbk, bv = cbv, bo = cbo), cln_g, cln_b, eps = eps)\n");
      fprintf(o, "  return layernorm(h + linear(%s(linear(h, w1, b1)%s, w2, b2), fln_g, fln_b, eps = eps)\n}\n", act,
              act_close);
    }
  }
  fprintf(o, "\nforward(tokens : i32[T], src : i32[max_src]) -> f32[T, vocab] {\n");
  if (t5) {
    fprintf(
        o,
        "  e = rmsnorm(repeat(layers, prefix = \"encoder\") enc_layer(embedding(shared, src)), enc_norm, eps = eps)\n"
        "  x = repeat(dec_layers, prefix = \"decoder\") dec_layer(embedding(shared, tokens), e)\n");
    if (s->tied)
      fprintf(o, "  # the tied classifier's d_model^-0.5, folded into the final norm's gain at compile time\n"
                 "  return linear(rmsnorm(x, dec_norm * (1 / sqrt(dim)), eps = eps), shared)\n}\n");
    else
      fprintf(o, "  return linear(rmsnorm(x, dec_norm, eps = eps), output)\n}\n");
  } else {
    const char *sc = s->emb_scale ? " * sqrt(dim)" : "";
    fprintf(o,
            "  e = layernorm(embedding(shared, src)%s + enc_pos, encoder_ln_g, encoder_ln_b, eps = eps)\n"
            "  e = repeat(layers, prefix = \"encoder\") enc_layer(e)\n"
            "  x = embedding(shared, tokens)%s + positions(dec_pos, tokens, offset = 2)\n"
            "  x = layernorm(x, decoder_ln_g, decoder_ln_b, eps = eps)\n"
            "  x = repeat(dec_layers, prefix = \"decoder\") dec_layer(x, e)\n"
            "  return linear(x, %s, final_logits_bias)\n}\n",
            sc, sc, s->tied ? "shared" : "output");
  }
}

static void write_tfx(FILE *o, const spec *s, const char *name, const char *source, const char *weights,
                      const char *tokenizer) {
  char b1[128];
  fprintf(o, "# %s.tfx — written by `tfxc import` from ", name);
  put_path(o, source, 0);
  fprintf(o,
          " (model_type %s).\n"
          "# The rename block binds the checkpoint's tensors as they are saved.\n",
          s->family);
  if (s->pos_skip_pad)
    fprintf(o,
            "# Positions start at row %lld (padding_idx + 1) and skip pad tokens (id %lld), which read row\n"
            "# %lld, as transformers numbers them.\n",
            (long long)s->pos_offset, (long long)s->pos_offset - 1, (long long)s->pos_offset - 1);
  fprintf(o, "model %s\n\n", name);
  fprintf(o, "const dim = %lld, layers = %lld, heads = %lld, kv_heads = %lld, head_dim = %lld\n", (long long)s->dim,
          (long long)s->layers, (long long)s->heads, (long long)s->kv_heads, (long long)s->head_dim);
  fprintf(o, "const hidden = %lld, vocab = %lld, max_seq = %lld", (long long)s->hidden, (long long)s->vocab,
          (long long)s->max_seq);
  if (s->pos == POS_LEARNED) fprintf(o, ", max_pos = %lld", (long long)s->max_pos);
  if (s->type_vocab > 1) fprintf(o, ", type_vocab = %lld", (long long)s->type_vocab);
  if (s->mlp == MLP_MOE) fprintf(o, ", experts = %lld, top_k = %lld", (long long)s->experts, (long long)s->top_k);
  fprintf(o, "\nconst eps = %.9g", s->eps);
  if (s->pos == POS_ROPE) fprintf(o, ", theta = %.9g", s->theta);
  if (s->qscalar > 0) fprintf(o, ", qscalar = %.9g", s->qscalar);
  if (s->attn_cap > 0) fprintf(o, ", attn_softcap = %.9g", s->attn_cap);
  if (s->final_cap > 0) fprintf(o, ", final_softcap = %.9g", s->final_cap);
  if (s->seq2seq) {
    fprintf(o, "\n# the decoder; the source's rows at most (each call gives 1..max_src of them)\n");
    fprintf(o, "const dec_layers = %lld, dec_hidden = %lld, max_src = %lld", (long long)s->dec_layers,
            (long long)s->dec_hidden, (long long)s->max_seq);
    if (s->seq2seq == SEQ_T5)
      fprintf(o, ", buckets = %lld, max_distance = %lld", (long long)s->buckets, (long long)s->max_distance);
  }
  fprintf(o, "\n\nweights \"");
  put_path(o, weights, 1);
  fprintf(o, "\" rename {\n%s}\n", s->rules_text);
  if (tokenizer) {
    fprintf(o, "tokenizer \"");
    put_path(o, tokenizer, 1);
    fprintf(o, "\"\n");
  }
  if (s->bos >= 0 || s->eos >= 0 || s->pad >= 0) {
    fprintf(o, "\ntokens {");
    const char *sep = " ";
    if (s->bos >= 0) fprintf(o, "%sbos = %lld", sep, (long long)s->bos), sep = ", ";
    if (s->eos >= 0) fprintf(o, "%seos = %lld", sep, (long long)s->eos), sep = ", ";
    if (s->pad >= 0) fprintf(o, "%spad = %lld", sep, (long long)s->pad);
    fprintf(o, " }\n");
  }
  if (s->seq2seq) {
    write_seq2seq(o, s);
    return;
  }
  fprintf(o, "\nparam tok_embeddings : f32[vocab, dim]\n");
  if (s->pos == POS_LEARNED) fprintf(o, "param pos_embeddings : f32[max_pos, dim]\n");
  if (s->type_vocab > 1)
    fprintf(o, "param type_embeddings : f32[type_vocab, dim]\n");
  else if (s->type_vocab)
    fprintf(o, "param type_embedding : f32[dim]\n");
  if (s->emb_norm) fprintf(o, "param emb_norm_g : f32[dim]\nparam emb_norm_b : f32[dim]\n");
  if (s->final_norm) {
    fprintf(o, "param norm_g : f32[dim]\n");
    if (s->norm_bias) fprintf(o, "param norm_b : f32[dim]\n");
  }
  if (!s->encoder && !s->tied) fprintf(o, "param output : f32[vocab, dim]\n");
  if (s->head_bias) fprintf(o, "param output_b : f32[vocab]\n");

  /* Gemma 2 slides on even layers only: two blocks, the layers written out */
  int alternate = s->alt_window && s->window > 0 && s->window < s->max_seq;
  write_layer(o, s, "layer", alternate ? 0 : s->window);
  if (alternate) write_layer(o, s, "local_layer", s->window);

  if (s->key_mask)
    fprintf(o,
            "\n# Hugging Face's inputs: input_ids, %sattention_mask (a key whose mask is 0 is\n"
            "# dropped from every query's softmax; its own row is still computed).\n",
            s->type_vocab > 1 ? "token_type_ids, " : "");
  fprintf(o, "%sforward(tokens : i32[T]%s%s) -> f32[T, %s] {\n  x = embedding(tok_embeddings, tokens)",
          s->key_mask ? "" : "\n", s->type_vocab > 1 ? ", types : i32[T]" : "", s->key_mask ? ", mask : i32[T]" : "",
          s->encoder ? "dim" : "vocab");
  if (s->emb_scale) fprintf(o, " * sqrt(dim)");
  if (s->pos == POS_LEARNED && s->pos_skip_pad)
    fprintf(o, " + positions(pos_embeddings, tokens, offset = %lld, pad = %lld)", (long long)s->pos_offset,
            (long long)s->pos_offset - 1);
  else if (s->pos == POS_LEARNED && s->pos_offset)
    fprintf(o, " + positions(pos_embeddings, tokens, offset = %lld)", (long long)s->pos_offset);
  else if (s->pos == POS_LEARNED)
    fprintf(o, " + positions(pos_embeddings, tokens)");
  if (s->type_vocab > 1)
    fprintf(o, " + embedding(type_embeddings, types)");
  else if (s->type_vocab)
    fprintf(o, " + type_embedding");
  fprintf(o, "\n");
  if (s->emb_norm) fprintf(o, "  x = layernorm(x, emb_norm_g, emb_norm_b, eps = eps)\n");
  if (alternate)
    for (int64_t i = 0; i < s->layers; i++)
      fprintf(o, "  x = %s(x, prefix = \"layers.%lld\")\n", i % 2 ? "layer" : "local_layer", (long long)i);
  else
    fprintf(o, "  x = repeat(layers) layer(x%s)\n", s->key_mask ? ", mask" : "");
  if (s->encoder)
    fprintf(o, "  return x\n}\n");
  else
    fprintf(o, "  return %slinear(%s, %s%s)%s\n}\n", s->final_cap > 0 ? "softcap(" : "",
            norm_call(s, "x", "norm", b1, sizeof b1), s->tied ? "tok_embeddings" : "output",
            s->head_bias ? ", output_b" : "", s->final_cap > 0 ? ", cap = final_softcap)" : "");
}

/* ---- GGUF metadata (llama) ---- */

typedef struct gmeta {
  FILE *f;
  uint64_t size;
  int bad;
  char arch[64];
  int64_t dim, layers, heads, kv_heads, hidden, ctx, vocab, bos, eos, pad, rope_dims, emb_rows;
  double eps, theta;
  int has_output;
} gmeta;

static int rd(gmeta *g, void *p, size_t n) {
  if (g->bad || fread(p, 1, n, g->f) != n) g->bad = 1;
  return g->bad ? -1 : 0;
}

static uint64_t rd_u64(gmeta *g) {
  uint64_t v = 0;
  rd(g, &v, 8);
  return v;
}

static uint32_t rd_u32(gmeta *g) {
  uint32_t v = 0;
  rd(g, &v, 4);
  return v;
}

/* A GGUF string into buf (truncated), the rest skipped. */
static void rd_str(gmeta *g, char *buf, size_t len) {
  uint64_t n = rd_u64(g);
  if (g->bad || n > g->size) {
    g->bad = 1;
    return;
  }
  size_t keep = n < len - 1 ? (size_t)n : len - 1;
  rd(g, buf, keep);
  buf[g->bad ? 0 : keep] = 0;
  if (n > keep && fseek(g->f, (long)(n - keep), SEEK_CUR)) g->bad = 1;
}

/* Skips a value of type t (arrays: *count gets the element count). */
static void skip_value(gmeta *g, uint32_t t, int depth, uint64_t *count) {
  if (g->bad) return;
  int sz = tfx_gguf_value_size(t);
  if (sz > 0) {
    if (fseek(g->f, sz, SEEK_CUR)) g->bad = 1;
  } else if (t == TFX_GGUF_STRING) {
    uint64_t n = rd_u64(g);
    if (n > g->size || fseek(g->f, (long)n, SEEK_CUR)) g->bad = 1;
  } else if (t == TFX_GGUF_ARRAY && depth < TFX_GGUF_MAX_DEPTH) {
    uint32_t et = rd_u32(g);
    uint64_t n = rd_u64(g);
    if (count) *count = n;
    if (n > g->size) g->bad = 1;
    int esz = tfx_gguf_value_size(et);
    if (esz > 0) {
      if (!g->bad && (n > g->size / (uint64_t)esz || fseek(g->f, (long)(n * (uint64_t)esz), SEEK_CUR))) g->bad = 1;
    } else {
      for (uint64_t i = 0; i < n && !g->bad; i++) skip_value(g, et, depth + 1, NULL);
    }
  } else {
    g->bad = 1;
  }
}

/* A numeric scalar as a double (NAN-free: integers and floats). */
static int rd_number(gmeta *g, uint32_t t, double *out) {
  union {
    uint8_t u8;
    int8_t i8;
    uint16_t u16;
    int16_t i16;
    uint32_t u32;
    int32_t i32;
    float f32;
    uint64_t u64;
    int64_t i64;
    double f64;
  } v;
  int sz = tfx_gguf_value_size(t);
  if (sz <= 0 || t == TFX_GGUF_BOOL) {
    skip_value(g, t, 0, NULL);
    return -1;
  }
  if (rd(g, &v, (size_t)sz)) return -1;
  switch (t) {
  case TFX_GGUF_UINT8: *out = v.u8; break;
  case TFX_GGUF_INT8: *out = v.i8; break;
  case TFX_GGUF_UINT16: *out = v.u16; break;
  case TFX_GGUF_INT16: *out = v.i16; break;
  case TFX_GGUF_UINT32: *out = v.u32; break;
  case TFX_GGUF_INT32: *out = v.i32; break;
  case TFX_GGUF_FLOAT32: *out = v.f32; break;
  case TFX_GGUF_UINT64: *out = (double)v.u64; break;
  case TFX_GGUF_INT64: *out = (double)v.i64; break;
  default: *out = v.f64; break;
  }
  return 0;
}

static int64_t as_count(double v) { return v >= 0 && v <= INT32_MAX && v == (double)(int64_t)v ? (int64_t)v : -1; }

static int read_gguf_meta(const char *path, gmeta *g, char *err, size_t errlen) {
  char oerr[512];
  memset(g, 0, sizeof *g);
  g->dim = g->layers = g->heads = g->kv_heads = g->hidden = g->ctx = g->vocab = -1;
  g->bos = g->eos = g->pad = g->rope_dims = g->emb_rows = -1;
  g->eps = 1e-5;
  g->theta = 10000;
  g->f = tfx_wfile_fopen(path, &g->size, oerr, sizeof oerr);
  if (!g->f) return fail(err, errlen, "%s", oerr);
  char magic[4];
  rd(g, magic, 4);
  uint32_t version = rd_u32(g);
  uint64_t n_tensors = rd_u64(g), n_kv = rd_u64(g);
  if (g->bad || memcmp(magic, TFX_GGUF_MAGIC, 4) || version < 2 || version > 3 || n_kv > g->size ||
      n_tensors > g->size) {
    fclose(g->f);
    return fail(err, errlen, "%s: not a GGUF file of version 2 or 3", path);
  }
  for (uint64_t i = 0; i < n_kv && !g->bad; i++) {
    char key[256];
    rd_str(g, key, sizeof key);
    uint32_t t = rd_u32(g);
    if (g->bad) break;
    if (!strcmp(key, "general.architecture") && t == TFX_GGUF_STRING) {
      rd_str(g, g->arch, sizeof g->arch);
      continue;
    }
    if (!strcmp(key, "tokenizer.ggml.tokens") && t == TFX_GGUF_ARRAY) {
      uint64_t n = 0;
      skip_value(g, t, 0, &n);
      g->vocab = n <= INT32_MAX ? (int64_t)n : -1;
      continue;
    }
    static const struct {
      const char *suffix;
      size_t off;
      int is_double;
    } keys[] = {
        {".embedding_length", offsetof(gmeta, dim), 0},
        {".block_count", offsetof(gmeta, layers), 0},
        {".attention.head_count", offsetof(gmeta, heads), 0},
        {".attention.head_count_kv", offsetof(gmeta, kv_heads), 0},
        {".feed_forward_length", offsetof(gmeta, hidden), 0},
        {".context_length", offsetof(gmeta, ctx), 0},
        {".rope.dimension_count", offsetof(gmeta, rope_dims), 0},
        {".attention.layer_norm_rms_epsilon", offsetof(gmeta, eps), 1},
        {".rope.freq_base", offsetof(gmeta, theta), 1},
        {"tokenizer.ggml.bos_token_id", offsetof(gmeta, bos), 0},
        {"tokenizer.ggml.eos_token_id", offsetof(gmeta, eos), 0},
        {"tokenizer.ggml.padding_token_id", offsetof(gmeta, pad), 0},
    };
    int done = 0;
    size_t kl = strlen(key), al = strlen(g->arch);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0] && !done; k++) {
      const char *sfx = keys[k].suffix;
      int match = sfx[0] == '.'
                      ? al > 0 && kl == al + strlen(sfx) && !strncmp(key, g->arch, al) && !strcmp(key + al, sfx)
                      : !strcmp(key, sfx);
      if (!match) continue;
      double v;
      done = 1;
      if (rd_number(g, t, &v)) break;
      if (keys[k].is_double)
        *(double *)((char *)g + keys[k].off) = v;
      else
        *(int64_t *)((char *)g + keys[k].off) = as_count(v);
    }
    if (!done) skip_value(g, t, 0, NULL);
  }
  for (uint64_t i = 0; i < n_tensors && !g->bad; i++) {
    char name[TFX_GGUF_MAX_NAME + 1];
    rd_str(g, name, sizeof name);
    uint32_t nd = rd_u32(g);
    if (nd < 1 || nd > TFX_GGUF_MAX_DIMS) g->bad = 1;
    uint64_t ne[TFX_GGUF_MAX_DIMS] = {0};
    for (uint32_t d = 0; d < nd && !g->bad; d++) ne[d] = rd_u64(g);
    rd_u32(g);
    rd_u64(g);
    if (!strcmp(name, "output.weight")) g->has_output = 1;
    if (!strcmp(name, "token_embd.weight") && nd == 2 && ne[1] <= INT32_MAX) g->emb_rows = (int64_t)ne[1];
  }
  fclose(g->f);
  if (g->bad) return fail(err, errlen, "%s: truncated or malformed GGUF header", path);
  return 0;
}

static int gguf_spec(const char *path, spec *s, char *err, size_t errlen) {
  gmeta g;
  if (read_gguf_meta(path, &g, err, errlen)) return -1;
  if (strcmp(g.arch, "llama"))
    return fail(err, errlen, "%s: GGUF architecture '%s' cannot be imported (supported: llama)", path,
                g.arch[0] ? g.arch : "(none)");
  static const char *const need[] = {"embedding_length", "block_count", "attention.head_count", "feed_forward_length"};
  int64_t *vals[] = {&g.dim, &g.layers, &g.heads, &g.hidden};
  for (int k = 0; k < 4; k++)
    if (*vals[k] < 1) return fail(err, errlen, "%s: llama.%s is missing or not a positive integer", path, need[k]);
  s->family = "llama";
  s->dim = g.dim;
  s->layers = g.layers;
  s->heads = g.heads;
  s->kv_heads = g.kv_heads > 0 ? g.kv_heads : g.heads;
  s->head_dim = g.dim / g.heads;
  s->hidden = g.hidden;
  s->vocab = g.emb_rows > 0 ? g.emb_rows : g.vocab;
  s->max_pos = g.ctx > 0 ? g.ctx : 2048;
  char num[64]; /* GGUF stores f32: its shortest decimal form */
  snprintf(num, sizeof num, "%.7g", (double)(float)g.eps);
  s->eps = strtod(num, NULL);
  snprintf(num, sizeof num, "%.7g", (double)(float)g.theta);
  s->theta = strtod(num, NULL);
  s->rope_interleaved = 1;
  s->rotary_dim = g.rope_dims > 0 ? g.rope_dims : 0;
  s->bos = g.bos;
  s->eos = g.eos;
  s->pad = g.pad;
  s->tied = !g.has_output;
  s->norm = NORM_RMS;
  s->pos = POS_ROPE;
  s->mlp = MLP_GLU;
  s->act = "silu";
  s->residual = RES_SEQ;
  s->final_norm = 1;
  if (s->vocab < 1) return fail(err, errlen, "%s: no token_embd.weight tensor (the vocabulary size)", path);
  return 0;
}

/* llama.cpp's names; its converter stores q and k in the interleaved RoPE order */
static void gguf_rules(spec *s) {
  R("  \"token_embd.weight\" = \"tok_embeddings\"\n");
  R("  \"output_norm.weight\" = \"norm_g\"\n");
  if (!s->tied) R("  \"output.weight\" = \"output\"\n");
  R("  \"blk.{i}.attn_norm.weight\" = \"layers.{i}.ln1_g\"\n");
  R("  \"blk.{i}.attn_q.weight\" = \"layers.{i}.wq\"\n");
  R("  \"blk.{i}.attn_k.weight\" = \"layers.{i}.wk\"\n");
  R("  \"blk.{i}.attn_v.weight\" = \"layers.{i}.wv\"\n");
  R("  \"blk.{i}.attn_output.weight\" = \"layers.{i}.wo\"\n");
  R("  \"blk.{i}.ffn_norm.weight\" = \"layers.{i}.ln2_g\"\n");
  R("  \"blk.{i}.ffn_gate.weight\" = \"layers.{i}.w1\"\n");
  R("  \"blk.{i}.ffn_down.weight\" = \"layers.{i}.w2\"\n");
  R("  \"blk.{i}.ffn_up.weight\" = \"layers.{i}.w3\"\n");
  R("  \"rope_freqs.weight\" = \"\"\n");
}

/* ---- entry ---- */

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int tfx_import_weights_path(const char *path, char *buf, size_t len, char *err, size_t errlen) {
  if (!is_dir(path)) {
    if (!is_file(path)) return fail(err, errlen, "%s: no such file or folder", path);
    if (!ends_with(path, ".gguf") && !tfx_wfile_looks_gguf(path))
      return fail(err, errlen, "%s: expected a Hugging Face folder (config.json + model.safetensors) or a .gguf file",
                  path);
    if ((size_t)snprintf(buf, len, "%s", path) >= len) return fail(err, errlen, "%s: path too long", path);
    return 0;
  }
  static const char *const names[] = {"model.safetensors", "model.safetensors.index.json"};
  for (int k = 0; k < 2; k++) {
    if ((size_t)snprintf(buf, len, "%s/%s", path, names[k]) >= len) return fail(err, errlen, "%s: path too long", path);
    if (is_file(buf)) return 0;
  }
  return fail(err, errlen, "%s: no model.safetensors or model.safetensors.index.json in the folder", path);
}

/* The model's name: the last path component without its extension, made
 * an identifier. */
static void model_name(const char *path, const char *given, char *buf, size_t len) {
  const char *src = given;
  char tmp[256];
  if (!src) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    size_t k = n - b < sizeof tmp - 1 ? n - b : sizeof tmp - 1;
    memcpy(tmp, path + b, k);
    tmp[k] = 0;
    char *dot = strchr(tmp, '.');
    if (dot && dot != tmp) *dot = 0;
    src = tmp;
  }
  size_t j = 0;
  if (!isalpha((unsigned char)src[0]) && src[0] != '_' && len > 2) buf[j++] = 'm', buf[j++] = '_';
  for (size_t i = 0; src[i] && j + 1 < len; i++) buf[j++] = isalnum((unsigned char)src[i]) ? src[i] : '_';
  buf[j] = 0;
  if (!j || !strcmp(buf, "m_")) snprintf(buf, len, "model");
}

static char *read_text(const char *path, size_t *size, char *err, size_t errlen) {
  uint64_t fsize;
  char oerr[512];
  FILE *f = tfx_wfile_fopen(path, &fsize, oerr, sizeof oerr);
  if (!f) {
    fail(err, errlen, "%s", oerr);
    return NULL;
  }
  if (fsize > (64u << 20)) {
    fclose(f);
    fail(err, errlen, "%s: too large for a config (%llu bytes)", path, (unsigned long long)fsize);
    return NULL;
  }
  char *text = malloc((size_t)fsize + 1);
  if (!text || fread(text, 1, (size_t)fsize, f) != (size_t)fsize) {
    fclose(f);
    free(text);
    fail(err, errlen, "%s: cannot read it", path);
    return NULL;
  }
  fclose(f);
  text[fsize] = 0;
  *size = (size_t)fsize;
  return text;
}

/* Reads DIR/config.json into s (the family's rules written to s->rules). */
static int hf_spec(const char *dir, spec *s, char *err, size_t errlen) {
  char path[4096];
  if ((size_t)snprintf(path, sizeof path, "%s/config.json", dir) >= sizeof path)
    return fail(err, errlen, "%s: path too long", dir);
  size_t size;
  char *text = read_text(path, &size, err, errlen);
  if (!text) return -1;
  char jerr[256];
  tfx_fe_json *root = tfx_fe_json_parse(text, size, jerr, sizeof jerr);
  free(text);
  if (!root) return fail(err, errlen, "%s: not valid JSON: %s", path, jerr);
  int rc = 0;
  cfg c = {path, root, err, errlen, 0};
  if (root->kind != TFX_FE_JSON_OBJECT) {
    rc = fail(err, errlen, "%s: not a JSON object", path);
    goto done;
  }
  const char *mt = cfg_str(&c, "model_type", NULL);
  if (c.bad || !mt) {
    rc = c.bad ? -1 : fail(err, errlen, "%s: no \"model_type\"", path);
    goto done;
  }
  const family *fam = NULL;
  for (size_t k = 0; k < sizeof families / sizeof families[0]; k++)
    if (!strcmp(families[k].name, mt)) fam = &families[k];
  if (!fam) {
    for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++)
      if (!strcmp(refused[k][0], mt)) {
        rc = fail(err, errlen, "%s: model_type '%s' cannot be imported: %s", path, mt, refused[k][1]);
        goto done;
      }
    rc = fail(err, errlen, "%s: unknown model_type '%s' (import knows %s)", path, mt, tfx_import_families);
    goto done;
  }
  s->family = fam->name;
  s->vocab = cfg_int(&c, "vocab_size", -1, 1);
  fam->fill(&c, s);
  s->bos = cfg_token(&c, "bos_token_id");
  s->eos = cfg_token(&c, "eos_token_id");
  s->pad = cfg_token(&c, "pad_token_id");
  if (s->encoder) s->bos = s->eos = -1;                             /* an encoder generates nothing */
  if (s->seq2seq) s->bos = cfg_token(&c, "decoder_start_token_id"); /* the decoder's first token */
  if (!c.bad && (s->heads % s->kv_heads || s->head_dim < 1))
    rc = fail(err, errlen, "%s: %lld key/value heads do not divide %lld heads", path, (long long)s->kv_heads,
              (long long)s->heads);
  if (!c.bad && !rc && s->pos != POS_ALIBI && s->dim != s->heads * s->head_dim && s->family != NULL &&
      strcmp(s->family, "llama") && strcmp(s->family, "mistral") && strcmp(s->family, "qwen2") &&
      strcmp(s->family, "mixtral") && strcmp(s->family, "qwen3") && strcmp(s->family, "gemma") &&
      strcmp(s->family, "gemma2") && strcmp(s->family, "t5"))
    rc = fail(err, errlen, "%s: hidden_size %lld is not a multiple of the %lld heads", path, (long long)s->dim,
              (long long)s->heads);
  if (c.bad) rc = -1;
done:
  tfx_fe_json_free(root);
  return rc;
}

int tfx_import(const char *path, const tfx_import_options *o, char **text, char *err, size_t errlen) {
  *text = NULL;
  char wpath[4096];
  if (tfx_import_weights_path(path, wpath, sizeof wpath, err, errlen)) return -1;
  spec s;
  memset(&s, 0, sizeof s);
  s.rules = open_memstream(&s.rules_text, &s.rules_len);
  if (!s.rules) return fail(err, errlen, "out of memory");
  int gguf = !is_dir(path);
  int rc = gguf ? gguf_spec(path, &s, err, errlen) : hf_spec(path, &s, err, errlen);
  if (!rc && gguf) gguf_rules(&s);
  fclose(s.rules);
  if (rc) {
    free(s.rules_text);
    return -1;
  }
  int64_t ctx = s.pos == POS_ALIBI ? 4096 : s.pos == POS_LEARNED ? s.max_pos - s.pos_offset : s.max_pos;
  s.max_seq = o && o->max_seq > 0 ? o->max_seq : ctx < 4096 ? ctx : 4096;
  if (s.pos == POS_LEARNED && (s.max_seq > ctx || ctx < 1)) {
    free(s.rules_text);
    if (s.pos_offset)
      return fail(err, errlen, "%s: --max-seq %lld is more than the %lld learned positions after the first %lld", path,
                  (long long)s.max_seq, (long long)s.max_pos, (long long)s.pos_offset);
    return fail(err, errlen, "%s: --max-seq %lld is more than the %lld learned positions", path, (long long)s.max_seq,
                (long long)s.max_pos);
  }
  if (s.bos >= s.vocab) s.bos = -1; /* ids outside the vocabulary (tiny test configs) are left out */
  if (s.eos >= s.vocab) s.eos = -1;
  if (s.pad >= s.vocab) s.pad = -1;
  char name[128];
  model_name(path, o ? o->name : NULL, name, sizeof name);
  char *abs = NULL;
  const char *weights = o && o->weights ? o->weights : (abs = realpath(wpath, NULL)) ? abs : wpath;
  size_t len = 0;
  FILE *out = open_memstream(text, &len);
  if (!out) {
    free(abs);
    free(s.rules_text);
    return fail(err, errlen, "out of memory");
  }
  write_tfx(out, &s, name, path, weights, o ? o->tokenizer : NULL);
  fclose(out);
  free(abs);
  free(s.rules_text);
  return 0;
}
