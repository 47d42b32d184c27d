/* driver/compile.c — the pipeline from source to a planned graph, to a JIT
 * model, and to the generated C header; the tokenizer a model embeds. */
#include "compile.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../frontend/frontend.h"
#include "../frontend/gguf.h"
#include "../frontend/weights.h"
#include "../include/tfx/tokenizer.h"
#include "../passes/passes.h"

static double seconds_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The formats the params end in, planned before binding (tfx_quantize_plan
 * with --quantize over the source's schedule) so that binding quantizes each
 * tensor as it reads it and the blob is never held in f32 (issue #17). Not
 * for w8a8(smooth), llm_int8, gptq nor sparse24(..., permute = true): SmoothQuant
 * rescales, LLM.int8() splits and permute_channels reorders the f32 weights first, GPTQ needs them whole (a weight a
 * quantize { } rule asks gptq for is not planned either: tfx_quantize_plan leaves it f32). A --quantize that does not
 * parse plans nothing (tfx_build_source reports it). */
static int plan_formats(void *ctx, tfx_graph *g, tfx_quant_target *plan, char *err, size_t errlen) {
  const tfx_build_options *o = ctx;
  tfx_quant_choice saved = g->schedule.quantize, qc;
  if (o->quantize) {
    if (tfx_quant_choice_parse(o->quantize, 1, &qc)) return 0;
    g->schedule.quantize = qc;
  }
  int rc = g->schedule.quantize.smooth_set || g->schedule.quantize.llm_int8 || g->schedule.quantize.gptq ||
                   tfx_graph_asks_permute(g)
               ? 0
               : tfx_quantize_plan(g, plan, err, errlen);
  g->schedule.quantize = saved;
  return rc;
}

int tfx_build_source(const char *path, const char *source, const tfx_build_options *o, tfx_build *out) {
  FILE *diag = o && o->diag ? o->diag : stderr;
  memset(out, 0, sizeof *out);
  double t0 = seconds_now();
  tfx_frontend_options fo;
  memset(&fo, 0, sizeof fo);
  fo.weights = o ? o->weights : NULL;
  fo.no_weights = o ? o->no_weights : 0;
  fo.allow_nonfinite = o ? o->allow_nonfinite : 0;
  fo.diag = diag;
  fo.on_weights_path = o ? o->on_weights_path : NULL;
  fo.on_weights_ctx = o ? o->on_weights_ctx : NULL;
  /* not with --allow-nonfinite: quantize_weights then refuses a non-finite
   * weight it quantizes with its own message */
  if (o && !o->quantize_after_binding && !o->allow_nonfinite) {
    fo.plan_formats = plan_formats;
    fo.plan_ctx = (void *)o;
  }
  int errors = tfx_frontend_compile(path, source, &fo, &out->graph, &out->weights);
  double t1 = seconds_now();
  out->parse_seconds = t1 - t0;
  if (errors) {
    tfx_build_free(out);
    return errors;
  }
  char err[512];
  if (o && o->quantize) { /* --quantize replaces the schedule's default */
    tfx_quant_choice qc;
    char qmsg[512];
    if (tfx_quant_choice_parse_msg(o->quantize, 1, &qc, qmsg, sizeof qmsg)) {
      if (!strchr(o->quantize, '('))
        fprintf(diag, "%s: error: unknown quantization '%s' (expected %s)\n", path ? path : "<source>", o->quantize,
                tfx_quant_choice_names(1));
      else
        fprintf(diag, "%s: error: --quantize '%s': %s\n", path ? path : "<source>", o->quantize, qmsg);
      tfx_build_free(out);
      return 1;
    }
    out->graph->schedule.quantize = qc;
  }
  if (o &&
      o->calibration) { /* --calibration FILE: for w8a8(smooth = alpha) (passes/smooth_quant.c), llm_int8 and gptq */
    tfx_calib *cal = calloc(1, sizeof *cal);
    if (!cal || tfx_calib_load(o->calibration, cal, err, sizeof err)) {
      if (cal) fprintf(diag, "%s: error: %s\n", path ? path : "<source>", err);
      free(cal);
      tfx_build_free(out);
      return 1;
    }
    out->graph->calib = cal;
  }
  /* --emit-gguf: the params as bound and quantized (quantize_weights runs
   * here first; in the pipeline it then finds every format chosen), before
   * fusion concatenates or packing permutes any of them (layouts GGUF cannot
   * express) */
  if (o && o->emit_gguf && !fo.no_weights) {
    tfx_pass_ctx qc = {out->graph, &out->weights.data, &out->weights.size, 1, 0, {1, 1}, err, sizeof err};
    if (tfx_pass_smooth_quant(&qc)) {
      fprintf(diag, "%s: error: pass smooth_quant: %s\n", path ? path : "<source>", err);
      tfx_build_free(out);
      return 1;
    }
    if (tfx_pass_permute_channels(&qc)) {
      fprintf(diag, "%s: error: pass permute_channels: %s\n", path ? path : "<source>", err);
      tfx_build_free(out);
      return 1;
    }
    if (tfx_pass_llm_int8(&qc)) {
      fprintf(diag, "%s: error: pass llm_int8: %s\n", path ? path : "<source>", err);
      tfx_build_free(out);
      return 1;
    }
    if (tfx_graph_asks_quant(out->graph) && tfx_pass_quantize_weights(&qc)) {
      fprintf(diag, "%s: error: pass quantize_weights: %s\n", path ? path : "<source>", err);
      tfx_build_free(out);
      return 1;
    }
    tfx_gguf_meta meta = {out->graph->name, path, TFX_VERSION};
    if (o->emit_gguf_to
            ? tfx_gguf_write_stream(out->graph, out->weights.data, out->weights.size, o->emit_gguf_to, o->emit_gguf,
                                    &meta, err, sizeof err)
            : tfx_gguf_write(out->graph, out->weights.data, out->weights.size, o->emit_gguf, &meta, err, sizeof err)) {
      fprintf(diag, "%s: error: %s\n", path ? path : "<source>", err);
      tfx_build_free(out);
      return 1;
    }
  }
  tfx_pass_options po;
  tfx_pass_options_init(&po, o ? o->opt_level : 2);
  if (o) {
    po.passes = o->passes;
    po.print_after = o->print_after;
    po.print_after_all = o->print_after_all;
    po.time_passes = o->time_passes;
    po.verify_each |= o->verify_passes;
    po.dump = o->dump;
  }
  /* the packed layout is the target's (its description owns the panel width) */
  if (tfx_backend_pack_layout(o ? o->target : NULL, &po.pack, err, sizeof err)) {
    fprintf(diag, "%s: error: %s\n", path ? path : "<source>", err);
    tfx_build_free(out);
    return 1;
  }
  if (!fo.no_weights) { /* weight transforms (concatenation, packing) rewrite the blob */
    po.weights = &out->weights.data;
    po.weights_size = &out->weights.size;
  }
  if (tfx_run_passes(out->graph, &po, err, sizeof err)) {
    fprintf(diag, "%s: error: %s\n", path ? path : "<source>", err);
    tfx_build_free(out);
    return 1;
  }
  if (tfx_verify(out->graph, !fo.no_weights, err, sizeof err)) {
    fprintf(diag, "%s: internal error: the planned graph does not verify: %s\n", path ? path : "<source>", err);
    tfx_build_free(out);
    return 1;
  }
  out->passes_seconds = seconds_now() - t1;
  return 0;
}

void tfx_build_free(tfx_build *b) {
  if (!b) return;
  tfx_graph_free(b->graph);
  b->graph = NULL;
  tfx_weights_free(&b->weights);
}

typedef struct jit_owner {
  tfx_jit_module *module;
  tfx_weights weights;
} jit_owner;

static void release_jit(void *arg) {
  jit_owner *o = arg;
  tfx_backend_jit_free(o->module);
  tfx_weights_free(&o->weights);
  free(o);
}

int tfx_build_embed_tokenizer(tfx_build *b, const char *what, const char *path, char *err, size_t errlen) {
  tfx_graph *g = b->graph;
  if (g->input < 0 || g->nodes[g->input].type.dtype != TFX_DT_I32)
    return tfx_errf(err, errlen, "%s %s: the model's input is not token ids", what, path);
  tfx_tokenizer *tok = NULL;
  char why[512] = "";
  int rc = tfx_tokenizer_open(path, &tok, why, sizeof why);
  if (rc != 0) return tfx_errf(err, errlen, "%s %s", what, why[0] ? why : path);
  int pieces = tfx_tokenizer_vocab_size(tok);
  tfx_tokenizer_close(tok);
  /* the model's special ids must be the tokenizer's ids */
  const int64_t ids[3] = {g->bos_id, g->eos_id, g->pad_id};
  static const char *const names[3] = {"bos", "eos", "pad"};
  for (int i = 0; i < 3; i++)
    if (ids[i] >= pieces)
      return tfx_errf(err, errlen, "%s %s: the model's tokens { %s = %lld } is not one of its %d ids", what, path,
                      names[i], (long long)ids[i], pieces);
  size_t len = 0;
  char *data = tfx_frontend_read_file(path, &len, why, sizeof why);
  if (!data) return tfx_errf(err, errlen, "%s %s: %s", what, path, why);
  rc = tfx_graph_set_tokenizer(g, data, (int64_t)len);
  free(data);
  return rc ? tfx_errf(err, errlen, "out of memory") : 0;
}

int tfx_build_jit(tfx_build *b, const tfx_target_options *t, tfx_model **out, char *err, size_t errlen) {
  *out = NULL;
  jit_owner *owner = calloc(1, sizeof *owner);
  if (!owner) {
    snprintf(err, errlen, "out of memory");
    return TFX_ERR_OUT_OF_MEMORY;
  }
  const tfx_model_desc *desc = NULL;
  if (tfx_backend_jit(b->graph, t, &owner->module, &desc, err, errlen)) {
    free(owner);
    return TFX_ERR_COMPILE;
  }
  owner->weights = b->weights;
  memset(&b->weights, 0, sizeof b->weights);
  int rc = tfx_model_from_descriptor(desc, owner->weights.data, release_jit, owner, out);
  if (rc != TFX_OK) {
    snprintf(err, errlen, "%s", tfx_error_message(rc));
    release_jit(owner);
  }
  return rc;
}

/* An identifier from the model name: letters, digits and '_' only. */
static void c_identifier(const char *name, char *buf, size_t len, int upper) {
  size_t j = 0;
  if (name && isdigit((unsigned char)name[0]) && j + 1 < len) buf[j++] = '_';
  for (size_t i = 0; name && name[i] && j + 1 < len; i++) {
    unsigned char c = (unsigned char)name[i];
    buf[j++] = (char)(isalnum(c) ? (upper ? toupper(c) : c) : '_');
  }
  buf[j] = 0;
}

/* Floats per output row as the descriptor counts them (backend/descriptor.c,
 * tfx_cg_model_shape): the columns times the rows per token. */
static int64_t output_width(const tfx_node *res) {
  int64_t per_t = 1;
  for (int i = 0; i + 1 < res->type.rank; i++)
    if (res->type.dims[i] != TFX_DIM_T) per_t *= res->type.dims[i];
  return per_t * tfx_node_cols(res);
}

/* Rounds up to TFX_BUFFER_ALIGN (runtime/session.c does the same). */
static long long align_up(int64_t v) {
  return (long long)((v + TFX_BUFFER_ALIGN - 1) & ~(int64_t)(TFX_BUFFER_ALIGN - 1));
}

/* The model's entry points as typed C functions, callable without the
 * runtime: looked up by name in the descriptor, run on the calling thread. */
static void write_typed_entries(FILE *out, const char *lw, const char *up) {
  fprintf(out,
          "/* ---- the entry points as C functions: no runtime, no libffi, no malloc ----\n"
          " * %s_entry(\"forward\" | \"decode\" | \"forward_last\") is the model's entry\n"
          " * point of that name with its exact C type (abi.h, TFX_ARG_* order), or NULL\n"
          " * when the model has none (\"forward_last\" exists when the rows after the\n"
          " * last attention are computed per row). %s_call runs one on the calling\n"
          " * thread: input is tokens (int32[n]) or activations (float[n, %s_INPUT_WIDTH]),\n"
          " * or for a model of several inputs (_N_INPUTS > 1) the array of their pointers\n"
          " * in _INPUT_<NAME>_INDEX order (each [n, width] int32 or float values);\n"
          " * output receives n rows of %s_OUTPUT_WIDTH floats (\"forward\") or the last\n"
          " * row (\"decode\", n == 1; \"forward_last\"); arena is %s_ACTIVATIONS_SIZE\n"
          " * bytes, kv %s_KV_CACHE_SIZE bytes zeroed before position 0, both\n"
          " * %s_BUFFER_ALIGN-aligned; pos is the number of positions already in kv.\n"
          " * It returns TFX_OK, TFX_ERR_INVALID_ARGUMENT (no such entry; n, pos or a\n"
          " * buffer outside the contract: nothing runs) or TFX_ERR_TOKEN_RANGE.\n"
          " * This is the code of the first --mcpu variant. */\n",
          lw, lw, up, up, up, up, up);
  fprintf(out,
          "typedef void (*%s_entry_fn)(const void *input, int64_t n, int64_t pos, float *output, void *arena, void "
          "*kv,\n"
          "                            const void *weights, tfx_exec *exec);\n\n",
          lw);
  fprintf(out,
          "static inline const tfx_entry_desc *%s_entry_desc(const char *name) {\n"
          "  const tfx_model_desc *d = &%s_descriptor;\n"
          "  for (int32_t i = 0; name && i < d->n_entries; i++) {\n"
          "    const char *a = d->entries[i].name, *b = name;\n"
          "    while (*a && *a == *b) a++, b++;\n"
          "    if (*a == *b && !(d->entries[i].flags & TFX_ENTRY_BATCH)) return &d->entries[i];\n"
          "  }\n"
          "  return 0;\n"
          "}\n\n",
          lw, lw);
  fprintf(out,
          "static inline %s_entry_fn %s_entry(const char *name) {\n"
          "  const tfx_entry_desc *e = %s_entry_desc(name);\n"
          "  union {\n"
          "    void *p;\n"
          "    %s_entry_fn f;\n"
          "  } u; /* POSIX: a function's address round-trips through void * */\n"
          "  u.p = e ? e->fn : 0;\n"
          "  return e ? u.f : 0;\n"
          "}\n\n",
          lw, lw, lw, lw);
  fprintf(out,
          "/* tfx_exec.parallel_for on the calling thread: the whole range at once. */\n"
          "static inline void %s_serial_for(tfx_exec *self, tfx_kernel_fn fn, const void *args, int64_t n) {\n"
          "  (void)self;\n"
          "  if (n > 0) fn(args, 0, n);\n"
          "}\n\n",
          lw);
  fprintf(out,
          "static inline int %s_call(const char *entry, const void *input, int64_t n, int64_t pos, float *output,\n"
          "                          void *arena, void *kv) {\n"
          "  const tfx_entry_desc *e = %s_entry_desc(entry);\n"
          "  const tfx_model_desc *d = &%s_descriptor;\n"
          "  if (!e || !input || !output || !arena || (d->kv_bytes && !kv)) return TFX_ERR_INVALID_ARGUMENT;\n"
          "  if ((uintptr_t)arena %% %s_BUFFER_ALIGN || (kv && (uintptr_t)kv %% %s_BUFFER_ALIGN))\n"
          "    return TFX_ERR_INVALID_ARGUMENT;\n"
          "  if (n < e->min_tokens || n > e->max_tokens || pos < 0) return TFX_ERR_INVALID_ARGUMENT;\n"
          "  if (d->has_kv_cache ? pos > d->max_seq - n : pos != 0) return TFX_ERR_INVALID_ARGUMENT;\n"
          "  for (int32_t k = 0; k < (d->n_inputs > 1 ? d->n_inputs : 1); k++) {\n"
          "    const int32_t *v = d->n_inputs > 1 ? (const int32_t *)((const void *const *)input)[k] : (const int32_t "
          "*)input;\n"
          "    int32_t kind = d->n_inputs > 1 ? d->inputs[k].kind : d->input_kind;\n"
          "    int32_t vocab = d->n_inputs > 1 ? d->inputs[k].vocab : d->vocab;\n"
          "    if (!v) return TFX_ERR_INVALID_ARGUMENT;\n"
          "    int64_t rows = d->n_inputs > 1 && d->inputs[k].rows > 0 ? d->inputs[k].rows : n;\n"
          "    if (kind != TFX_INPUT_F32 && vocab > 0)\n"
          "      for (int64_t i = 0; i < rows; i++)\n"
          "        if (v[i] < 0 || v[i] >= vocab) return TFX_ERR_TOKEN_RANGE;\n"
          "  }\n"
          "  tfx_exec exec;\n"
          "  exec.parallel_for = %s_serial_for;\n"
          "  exec.impl = 0;\n"
          "  %s_entry(entry)(input, n, pos, output, arena, kv ? kv : arena, d->weights, &exec);\n"
          "  return TFX_OK;\n"
          "}\n\n",
          lw, lw, lw, up, up, lw, lw);
}

int tfx_write_header(const tfx_graph *g, const char *source_name, FILE *out) {
  char lower[128], upper[128];
  c_identifier(g->symbol_name ? g->symbol_name : g->name, lower, sizeof lower, 0);
  c_identifier(g->symbol_name ? g->symbol_name : g->name, upper, sizeof upper, 1);
  const tfx_node *in = &g->nodes[g->input];
  const tfx_node *res = &g->nodes[g->output];
  int64_t vocab = 0;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_EMBEDDING && g->nodes[i].inputs[1] == g->input)
      vocab = g->nodes[g->nodes[i].inputs[0]].type.dims[0];
  int64_t width = output_width(res);
  fprintf(out,
          "/* %s.h — generated by tfxc %s from %s. Do not edit.\n"
          " *\n"
          " * Link the model's object (tfxc -c) or shared library (tfxc -o) and open it\n"
          " * with %s_open(); then use the API of <tfx/tfx.h>:\n"
          " *   tfx_model *m; tfx_session *s; float logits[%s_OUTPUT_WIDTH];\n"
          " *   %s_open(&m); tfx_session_create(m, NULL, &s);\n"
          " *   tfx_forward(s, tokens, n, logits);\n"
          " * or the model and a session in static memory (nothing allocated; the minimal\n"
          " * runtime libtfxrt_min.a has only these):\n"
          " *   static tfx_model_storage ms; %s_open_static(&ms, &m, NULL, 0);\n"
          " *   static tfx_session_storage st;\n"
          " *   static _Alignas(%s_BUFFER_ALIGN) unsigned char arena[%s_ARENA_BYTES], kv[%s_KV_BYTES];\n"
          " *   tfx_session_create_static(m, arena, sizeof arena, kv, sizeof kv, &st, &s, NULL, 0);\n"
          " * or, without the runtime, the typed entry points at the end (%s_call).\n"
          " */\n"
          "#ifndef TFX_MODEL_%s_H\n#define TFX_MODEL_%s_H\n\n#include <tfx/tfx.h>\n\n",
          lower, TFX_VERSION, source_name ? source_name : "?", lower, upper, lower, lower, upper, upper, upper, lower,
          upper, upper);
  fprintf(out, "#define %s_INPUT_IS_TOKENS %d\n", upper, in->type.dtype == TFX_DT_I32);
  fprintf(out, "#define %s_INPUT_WIDTH %lld /* values per input row (1: a token id) */\n", upper,
          (long long)(in->type.dtype == TFX_DT_I32 ? 1 : tfx_node_cols(in)));
  /* a forward of several inputs: each input's place in the pointer array
   * (tfx_forward_inputs, %s_call), kind, width and id range */
  tfx_input_desc ins[TFX_MAX_MODEL_INPUTS];
  int32_t n_ins = 0;
  char why[256];
  if (tfx_backend_model_inputs(g, ins, &n_ins, why, sizeof why)) n_ins = 0;
  fprintf(out, "#define %s_N_INPUTS %d /* the forward's inputs (tfx_forward_inputs when > 1) */\n", upper,
          n_ins ? n_ins : 1);
  for (int32_t k = 0; k < n_ins; k++) {
    char nu[128];
    if (ins[k].kind == TFX_INPUT_ROWS_MASK) { /* the sources' row mask: the caller of %s_call fills it */
      fprintf(out,
              "/* input %d: the sources' row mask, int32[%d]: 1 for the call's source rows, 0 past them (the\n"
              " * sources padded to %d rows with zeros; tfx_forward_inputs fills both) */\n",
              k, ins[k].rows, ins[k].rows);
      fprintf(out, "#define %s_ROWS_MASK_INDEX %d\n", upper, k);
      fprintf(out, "#define %s_SOURCE_ROWS %d /* a source's rows at most */\n", upper, ins[k].rows);
      fprintf(out,
              "/* the source cache: the first %s_SRC_CACHE_BYTES of the KV storage hold what the source alone\n"
              " * gives (encoder, cross-attention K and V), computed by a call when its first int32 is 0 and\n"
              " * then set to 1: a caller of %s_call zeroes it when the source or S changes and when a new\n"
              " * sequence starts (tfx_forward_inputs and tfx_session_reset do) */\n",
              upper, lower);
      fprintf(out, "#define %s_SRC_CACHE_BYTES %lldu\n", upper, (long long)g->src_cache_bytes);
      continue;
    }
    c_identifier(ins[k].name, nu, sizeof nu, 1);
    fprintf(out, "/* input %d: '%s', %s per row%s */\n", k, ins[k].name,
            ins[k].kind == TFX_INPUT_F32 ? (ins[k].width > 1 ? "floats" : "one float") : "one int32",
            ins[k].vocab > 0               ? " (ids in [0, VOCAB))"
            : ins[k].kind == TFX_INPUT_I32 ? " (a key mask: 0 drops the key)"
                                           : "");
    fprintf(out, "#define %s_INPUT_%s_INDEX %d\n", upper, nu, k);
    fprintf(out, "#define %s_INPUT_%s_WIDTH %d\n", upper, nu, ins[k].width);
    fprintf(out, "#define %s_INPUT_%s_IS_INT %d\n", upper, nu, ins[k].kind != TFX_INPUT_F32);
    fprintf(out, "#define %s_INPUT_%s_VOCAB %d\n", upper, nu, ins[k].vocab);
    fprintf(out, "#define %s_INPUT_%s_ROWS %d /* 0: the call's n; N: a source of N rows (padded) */\n", upper, nu,
            ins[k].rows);
  }
  fprintf(out, "#define %s_OUTPUT_WIDTH %lld /* floats per output row */\n", upper, (long long)width);
  fprintf(out, "#define %s_VOCAB %lld\n", upper, (long long)vocab);
  fprintf(out, "#define %s_MAX_SEQ %lld /* a session's capacity in positions */\n", upper, (long long)g->max_seq);
  /* the model's special ids (tokens { } in the .tfx), -1 when it has none */
  fprintf(out, "#define %s_BOS_ID %lld\n", upper, (long long)g->bos_id);
  fprintf(out, "#define %s_EOS_ID %lld\n", upper, (long long)g->eos_id);
  fprintf(out, "#define %s_PAD_ID %lld\n", upper, (long long)g->pad_id);
  fprintf(out, "#define %s_ACTIVATIONS_SIZE %lldu /* arena bytes for one call of up to MAX_SEQ tokens */\n", upper,
          (long long)g->arena_bytes);
  fprintf(out, "#define %s_KV_CACHE_SIZE %lldu\n", upper, (long long)g->kv_bytes);
  fprintf(out, "#define %s_WEIGHTS_SIZE %lldu\n", upper, (long long)g->weights_bytes);
  fprintf(out, "/* the buffers of a static session (tfx_session_create_static), aligned to %s_BUFFER_ALIGN */\n",
          upper);
  fprintf(out, "#define %s_BUFFER_ALIGN %d\n", upper, TFX_BUFFER_ALIGN);
  /* a model with a source also keeps its padded inputs there (tfx_session_static_sizes) */
  int32_t src_rows = n_ins >= 2 && ins[n_ins - 1].kind == TFX_INPUT_ROWS_MASK ? ins[n_ins - 1].rows : 0;
  int64_t src_bytes = src_rows > 0 ? align_up((int64_t)TFX_SOURCE_BUFFER_BYTES(n_ins, src_rows)) : 0;
  fprintf(out, "#define %s_ARENA_BYTES %lldu /* activations, then one output row%s */\n", upper,
          align_up(g->arena_bytes) + align_up(width * (int64_t)sizeof(float)) + src_bytes,
          src_bytes ? ", then the padded source inputs" : "");
  fprintf(out, "#define %s_KV_BYTES %lldu /* the KV cache (0: none; pass NULL) */\n\n", upper, (long long)g->kv_bytes);
  fprintf(out, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
  fprintf(out, "extern const tfx_model_desc %s_descriptor;\n\n", lower);
  fprintf(out,
          "static inline int %s_open(tfx_model **out) {\n"
          "  return tfx_model_from_descriptor(&%s_descriptor, NULL, NULL, NULL, out);\n}\n\n",
          lower, lower);
  fprintf(out,
          "/* the model in the caller's storage (nothing allocated; libtfxrt_min.a) */\n"
          "static inline int %s_open_static(tfx_model_storage *storage, tfx_model **out, char *err, size_t errlen) {\n"
          "  return tfx_model_from_descriptor_static(&%s_descriptor, storage, out, err, errlen);\n}\n\n",
          lower, lower);
  write_typed_entries(out, lower, upper);
  fprintf(out, "#ifdef __cplusplus\n}\n#endif\n#endif\n");
  return ferror(out) ? -1 : 0;
}
