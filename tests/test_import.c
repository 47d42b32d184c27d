/* tests/test_import.c — `tfxc import` without an oracle: the .tfx written
 * for hand-made config.json files (the constants, positions, sliding
 * windows, biases and tokens { } each family's keys give), its errors (an
 * unknown or refused model_type named in the message, a missing or
 * mistyped key, bad JSON, scaled RoPE, a folder without weights, a GGUF of
 * another architecture), the command line, and a llama GGUF file (written
 * by the `gguf` package, tests/gguf/stories260k_gguf.py) imported from its
 * metadata and run: its greedy ids are llama2.c's. Numerics against
 * transformers are tests/test_import_families.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../frontend/import.h"
#include "../frontend/weights.h"
#include "support/testutil.h"

#ifndef TFX_PYENV_PYTHON
#define TFX_PYENV_PYTHON "python3"
#endif

static char *dir;

static void write_file(const char *name, const char *text) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int setup(void **state) {
  (void)state;
  dir = tfx_test_tmpdir();
  return dir ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  tfx_test_rmdir(dir);
  free(dir);
  return 0;
}

/* Imports dir with config (a JSON text); returns the .tfx (malloc'd) or
 * NULL with the message in err. */
static char *import_config(const char *config, int64_t max_seq, char *err, size_t errlen) {
  write_file("config.json", config);
  write_file("model.safetensors", "");
  tfx_import_options o = {.max_seq = max_seq, .weights = "model.safetensors"};
  char *text = NULL;
  err[0] = 0;
  if (tfx_import(dir, &o, &text, err, errlen)) return NULL;
  return text;
}

static void expect_in(const char *text, const char *part) {
  if (!strstr(text, part)) fprintf(stderr, "expected '%s' in:\n%s\n", part, text);
  assert_non_null(strstr(text, part));
}

static void test_config_parsing(void **state) {
  (void)state;
  char err[1024];
  char *t = import_config("{\"model_type\": \"mistral\", \"hidden_size\": 64, \"num_hidden_layers\": 3, "
                          "\"num_attention_heads\": 8, \"num_key_value_heads\": 2, \"intermediate_size\": 96, "
                          "\"vocab_size\": 50, \"max_position_embeddings\": 1024, \"rms_norm_eps\": 1e-05, "
                          "\"rope_theta\": 1000000.0, \"sliding_window\": 16, \"bos_token_id\": 1, "
                          "\"eos_token_id\": [2, 3], \"pad_token_id\": null, \"tie_word_embeddings\": false}",
                          64, err, sizeof err);
  if (!t) fail_msg("%s", err);
  expect_in(t, "const dim = 64, layers = 3, heads = 8, kv_heads = 2, head_dim = 8\n");
  expect_in(t, "const hidden = 96, vocab = 50, max_seq = 64\n");
  expect_in(t, "const eps = 1e-05, theta = 1000000\n");
  expect_in(t, "weights \"model.safetensors\" rename {\n");
  expect_in(t, "tokens { bos = 1, eos = 2 }\n");
  expect_in(t, "position = rope(theta = theta, style = half), mask = causal, sparse = sliding(window = 16)");
  expect_in(t, "\"lm_head.weight\" = \"output\"\n");
  free(t);

  /* the window is left out when max_seq fits in it; ids outside the vocabulary too */
  t = import_config("{\"model_type\": \"qwen2\", \"hidden_size\": 32, \"num_hidden_layers\": 1, "
                    "\"num_attention_heads\": 4, \"intermediate_size\": 8, \"vocab_size\": 10, "
                    "\"bos_token_id\": 151643, \"tie_word_embeddings\": true, \"use_sliding_window\": true, "
                    "\"sliding_window\": 4096}",
                    0, err, sizeof err);
  if (!t) fail_msg("%s", err);
  expect_in(t, "max_seq = 2048\n"); /* max_position_embeddings' default, at most 4096 */
  assert_null(strstr(t, "sparse"));
  assert_null(strstr(t, "tokens {"));
  expect_in(t, "bq = bq, bk = bk, bv = bv)");
  expect_in(t, "\"lm_head.weight\" = \"\"\n");
  expect_in(t, "return linear(rmsnorm(x, norm_g, eps = eps), tok_embeddings)");
  free(t);

  /* Gemma 2: four norms per layer, the window on even layers (written out), scale and soft-capping; the
     defaults of Gemma2Config (window 4096: one repeated block when max_seq fits in it) and null caps */
  t = import_config("{\"model_type\": \"gemma2\", \"hidden_size\": 32, \"num_hidden_layers\": 3, "
                    "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": 16, "
                    "\"intermediate_size\": 48, \"vocab_size\": 50, \"sliding_window\": 8, "
                    "\"query_pre_attn_scalar\": 12, \"final_logit_softcapping\": 30.0}",
                    64, err, sizeof err);
  if (!t) fail_msg("%s", err);
  expect_in(t, "const eps = 1e-06, theta = 10000, qscalar = 12, attn_softcap = 50, final_softcap = 30\n");
  expect_in(t, "\"model.layers.{i}.pre_feedforward_layernorm.weight\" = \"layers.{i}.ln3_g\"\n");
  expect_in(t, "\"model.layers.{i}.post_feedforward_layernorm.weight\" = \"layers.{i}.ln4_g\"\n");
  expect_in(t,
            "sparse = sliding(window = 8),\n                     scale = 1 / sqrt(qscalar), softcap = attn_softcap)");
  expect_in(t, "  x = local_layer(x, prefix = \"layers.0\")\n  x = layer(x, prefix = \"layers.1\")\n"
               "  x = local_layer(x, prefix = \"layers.2\")\n");
  expect_in(t, "h = x + rmsnorm(attention(a, ");
  expect_in(t, "return h + rmsnorm(linear(glu(f, w1, w3, act = gelu_tanh), w2), 1 + ln4_g, eps = eps)");
  expect_in(t, "return softcap(linear(rmsnorm(x, 1 + norm_g, eps = eps), tok_embeddings), cap = final_softcap)");
  free(t);
  t = import_config("{\"model_type\": \"gemma2\", \"hidden_size\": 32, \"num_hidden_layers\": 2, "
                    "\"num_attention_heads\": 4, \"intermediate_size\": 48, \"vocab_size\": 50, "
                    "\"attn_logit_softcapping\": null, \"final_logit_softcapping\": null}",
                    64, err, sizeof err);
  if (!t) fail_msg("%s", err);
  expect_in(t, "x = repeat(layers) layer(x)");
  expect_in(t, "head_dim = 256");
  assert_null(strstr(t, "sparse"));
  assert_null(strstr(t, "softcap"));
  expect_in(t, "qscalar = 224");
  free(t);

  /* partial rotary dims, parallel residual */
  t = import_config("{\"model_type\": \"gpt_neox\", \"hidden_size\": 64, \"num_hidden_layers\": 2, "
                    "\"num_attention_heads\": 4, \"intermediate_size\": 256, \"vocab_size\": 100, "
                    "\"rotary_pct\": 0.25, \"use_parallel_residual\": true}",
                    16, err, sizeof err);
  if (!t) fail_msg("%s", err);
  expect_in(t, "style = half, rotary_dim = 4)");
  expect_in(t, "view(heads, 3, head_dim, dim)[:, 2] = \"layers.{i}.wv\"");
  expect_in(t, "  f = layernorm(x, ln2_g, ln2_b, eps = eps)\n");
  free(t);

  /* BERT: an encoder of hidden states; no BOS/EOS */
  t = import_config("{\"model_type\": \"bert\", \"hidden_size\": 32, \"num_hidden_layers\": 1, "
                    "\"num_attention_heads\": 4, \"intermediate_size\": 64, \"vocab_size\": 30, "
                    "\"max_position_embeddings\": 40, \"pad_token_id\": 0}",
                    0, err, sizeof err);
  if (!t) fail_msg("%s", err);
  expect_in(t, "forward(tokens : i32[T], types : i32[T], mask : i32[T]) -> f32[T, dim]");
  expect_in(t, "mask = none, key_mask = m");
  expect_in(t, "max_seq = 40, max_pos = 40, type_vocab = 2");
  expect_in(t, "+ embedding(type_embeddings, types)");
  expect_in(t, "tokens { pad = 0 }");
  free(t);
  /* type_vocab_size 1 (RoBERTa's checkpoints): type 0's row, no `types` input */
  t = import_config("{\"model_type\": \"bert\", \"hidden_size\": 32, \"num_hidden_layers\": 1, "
                    "\"num_attention_heads\": 4, \"intermediate_size\": 64, \"vocab_size\": 30, "
                    "\"type_vocab_size\": 1}",
                    0, err, sizeof err);
  if (!t) fail_msg("%s", err);
  expect_in(t, "forward(tokens : i32[T], mask : i32[T]) -> f32[T, dim]");
  expect_in(t, "\"*embeddings.token_type_embeddings.weight\"[0] = \"type_embedding\"");
  expect_in(t, "+ type_embedding\n");
  free(t);
}

static void expect_error(const char *config, int64_t max_seq, const char *message) {
  char err[1024];
  char *t = import_config(config, max_seq, err, sizeof err);
  if (t || !strstr(err, message)) fprintf(stderr, "got '%s', expected '%s'\n", t ? t : err, message);
  assert_null(t);
  assert_non_null(strstr(err, message));
}

static void test_errors(void **state) {
  (void)state;
  expect_error("{\"model_type\": \"mamba\"}", 0, "config.json: unknown model_type 'mamba' (import knows llama, ");
  expect_error("{\"model_type\": \"gemma2\", \"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 1, "
               "\"num_attention_heads\": 2, \"intermediate_size\": 8, \"attn_logit_softcapping\": -1}",
               0, "config.json: \"attn_logit_softcapping\" must be a number > 0 or null");
  expect_error("{\"model_type\": \"longformer\"}", 0,
               "model_type 'longformer' cannot be imported: import does not write it yet");
  expect_error("{\"model_type\": \"t5\", \"vocab_size\": 10, \"feed_forward_proj\": \"gated-silu\"}", 0,
               "model_type 't5' cannot be imported: feed_forward_proj is not \"relu\" or \"gated-gelu\"");
  expect_error("{\"model_type\": \"bart\", \"vocab_size\": 10, \"normalize_before\": true}", 0,
               "model_type 'bart' cannot be imported: normalize_before / add_final_layer_norm (mBART's");
  expect_error("{\"model_type\": \"bart\", \"vocab_size\": 10, \"max_position_embeddings\": 8}", 9,
               "--max-seq 9 is more than the 10 learned positions after the first 2");
  expect_error("{\"hidden_size\": 4}", 0, "config.json: no \"model_type\"");
  expect_error("{\"model_type\": \"llama\",}", 0, "config.json: not valid JSON");
  expect_error("[1]", 0, "config.json: not a JSON object");
  expect_error("{\"model_type\": \"llama\", \"vocab_size\": 10}", 0, "config.json: \"hidden_size\" is missing");
  expect_error("{\"model_type\": \"llama\", \"vocab_size\": 10, \"hidden_size\": \"big\"}", 0,
               "\"hidden_size\" must be an integer");
  expect_error("{\"model_type\": \"llama\", \"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 1, "
               "\"num_attention_heads\": 2, \"intermediate_size\": 8, \"rope_scaling\": {\"type\": \"llama3\"}}",
               0, "model_type 'llama' cannot be imported: \"rope_scaling\" is set");
  expect_error("{\"model_type\": \"llama\", \"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 1, "
               "\"num_attention_heads\": 4, \"num_key_value_heads\": 3, \"intermediate_size\": 8}",
               0, "3 key/value heads do not divide 4 heads");
  expect_error("{\"model_type\": \"qwen3\", \"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 1, "
               "\"num_attention_heads\": 2, \"intermediate_size\": 8, \"use_sliding_window\": true}",
               0, "model_type 'qwen3' cannot be imported: use_sliding_window is true");
  expect_error("{\"model_type\": \"olmo2\", \"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 1, "
               "\"num_attention_heads\": 2, \"intermediate_size\": 8, \"clip_qkv\": 8}",
               0, "model_type 'olmo2' cannot be imported: clip_qkv is set");
  expect_error("{\"model_type\": \"roberta\", \"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 1, "
               "\"num_attention_heads\": 2, \"intermediate_size\": 8, \"max_position_embeddings\": 34, "
               "\"pad_token_id\": 1}",
               33, "--max-seq 33 is more than the 34 learned positions after the first 2");
  expect_error("{\"model_type\": \"gpt2\", \"vocab_size\": 10, \"n_embd\": 8, \"n_layer\": 1, \"n_head\": 2, "
               "\"n_positions\": 16}",
               32, "--max-seq 32 is more than the 16 learned positions");
  expect_error("{\"model_type\": \"llama\", \"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 1, "
               "\"num_attention_heads\": 2, \"intermediate_size\": 8, \"hidden_act\": \"mish\"}",
               0, "hidden_act \"mish\" is not supported");

  /* a folder without weights, a file that is neither */
  char sub[1024], err[512], *t = NULL;
  snprintf(sub, sizeof sub, "%s/empty", dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  assert_int_equal(tfx_import(sub, NULL, &t, err, sizeof err), -1);
  assert_non_null(strstr(err, "no model.safetensors or model.safetensors.index.json in the folder"));
  rmdir(sub);
  snprintf(sub, sizeof sub, "%s/config.json", dir);
  assert_int_equal(tfx_import(sub, NULL, &t, err, sizeof err), -1);
  assert_non_null(strstr(err, "expected a Hugging Face folder"));

  /* a GGUF of another architecture: header, one string key, no tensors */
  snprintf(sub, sizeof sub, "%s/gpt2.gguf", dir);
  FILE *f = fopen(sub, "wb");
  assert_non_null(f);
  uint32_t version = 3, vt = 8;
  uint64_t zero = 0, one = 1, kl = 20, vl = 4;
  fwrite("GGUF", 1, 4, f);
  fwrite(&version, 4, 1, f);
  fwrite(&zero, 8, 1, f);
  fwrite(&one, 8, 1, f);
  fwrite(&kl, 8, 1, f);
  fwrite("general.architecture", 1, 20, f);
  fwrite(&vt, 4, 1, f);
  fwrite(&vl, 8, 1, f);
  fwrite("gpt2", 1, 4, f);
  fclose(f);
  assert_int_equal(tfx_import(sub, NULL, &t, err, sizeof err), -1);
  assert_non_null(strstr(err, "GGUF architecture 'gpt2' cannot be imported (supported: llama)"));
  /* truncated */
  f = fopen(sub, "wb");
  fwrite("GGUF", 1, 4, f);
  fwrite(&version, 4, 1, f);
  fclose(f);
  assert_int_equal(tfx_import(sub, NULL, &t, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a GGUF file"));
  remove(sub);
}

static void expect_cli(char *const argv[], int code, const char *in_stderr) {
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(argv, &out, &err);
  if (rc != code || (in_stderr && !strstr(err, in_stderr)))
    fprintf(stderr, "rc %d (expected %d)\nstdout: %s\nstderr: %s\n", rc, code, out, err);
  assert_int_equal(rc, code);
  if (in_stderr) assert_non_null(strstr(err, in_stderr));
  free(out);
  free(err);
}

static void test_command_line(void **state) {
  (void)state;
  expect_cli((char *[]){TFXC_PATH, "import", "--help", NULL}, 0, NULL);
  expect_cli((char *[]){TFXC_PATH, "import", NULL}, 2, "import needs a checkpoint");
  expect_cli((char *[]){TFXC_PATH, "import", dir, "--max-seq", "0", NULL}, 2, "--max-seq needs a number");
  expect_cli((char *[]){TFXC_PATH, "import", dir, "--bogus", NULL}, 2, "unknown option '--bogus'");
  expect_cli((char *[]){TFXC_PATH, "import", "/nonexistent/x", NULL}, 1, "no such file or folder");
  write_file("config.json", "{\"model_type\": \"longformer\"}");
  char out[1024];
  snprintf(out, sizeof out, "%s/out.tfx", dir);
  expect_cli((char *[]){TFXC_PATH, "import", dir, "-o", out, NULL}, 1, "model_type 'longformer' cannot be imported");
  struct stat st;
  assert_int_equal(stat(out, &st), -1); /* nothing written */

  /* the folder's tokenizer.json, when the runtime reads it, becomes the
   * tokenizer statement (named as the .tfx beside it sees it) */
  write_file("config.json", "{\"model_type\": \"llama\", \"hidden_size\": 16, \"num_hidden_layers\": 1, "
                            "\"num_attention_heads\": 2, \"intermediate_size\": 32, \"vocab_size\": 1024}");
  write_file("model.safetensors", "");
  char tok_src[1024], tok_dst[1024];
  snprintf(tok_src, sizeof tok_src, "%s/examples/fortune/tokenizer.json", TFX_SOURCE_DIR);
  snprintf(tok_dst, sizeof tok_dst, "%s/tokenizer.json", dir);
  size_t n = 0;
  char *json = tfx_test_read_file(tok_src, &n);
  assert_non_null(json);
  FILE *f = fopen(tok_dst, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(json, 1, n, f), n);
  fclose(f);
  free(json);
  expect_cli((char *[]){TFXC_PATH, "import", dir, "-o", out, NULL}, 0, NULL);
  char *tfx = tfx_test_read_file(out, &n);
  assert_non_null(tfx);
  expect_in(tfx, "\ntokenizer \"tokenizer.json\"\n");
  free(tfx);
  /* one it cannot read: a note, and no statement */
  write_file("tokenizer.json", "{\"model\": {\"type\": \"WordPiece\"}}");
  expect_cli((char *[]){TFXC_PATH, "import", dir, "-o", out, NULL}, 0, "note: no tokenizer statement");
  tfx = tfx_test_read_file(out, &n);
  assert_non_null(tfx);
  assert_null(strstr(tfx, "\ntokenizer "));
  free(tfx);
  remove(tok_dst);
  remove(out);
}

/* A safetensors file of one F32 tensor [2]. */
static void write_st(const char *name, const char *tensor) {
  char header[256], path[1024];
  int n = snprintf(header, sizeof header, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", tensor);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  uint64_t len = (uint64_t)n;
  float data[2] = {1, 2};
  fwrite(&len, 8, 1, f);
  fwrite(header, 1, (size_t)n, f);
  fwrite(data, 4, 2, f);
  fclose(f);
}

static void expect_index(const char *index, const char *message) {
  write_file("m.safetensors.index.json", index);
  char path[1024], err[1024] = "";
  snprintf(path, sizeof path, "%s/m.safetensors.index.json", dir);
  tfx_wfile f;
  int rc = tfx_wfile_open_sharded(path, &f, err, sizeof err);
  if (message && (rc == 0 || !strstr(err, message))) fprintf(stderr, "got '%s', expected '%s'\n", err, message);
  if (!message) {
    if (rc) fail_msg("%s", err);
    assert_int_equal(f.n_tensors, 2);
    assert_int_equal(f.n_shards, 2);
    assert_string_equal(f.tensors[0].name, "a");
    assert_int_equal(f.tensors[0].shard, 0);
    assert_string_equal(f.tensors[1].name, "b");
    assert_int_equal(f.tensors[1].shard, 1);
    tfx_wfile_close(&f);
    return;
  }
  assert_int_equal(rc, -1);
  assert_non_null(strstr(err, message));
}

/* sharded checkpoints: the index's errors */
static void test_shard_index(void **state) {
  (void)state;
  write_st("s1.safetensors", "a");
  write_st("s2.safetensors", "b");
  expect_index("{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\"}}", NULL);
  expect_index("{\"weight_map\": {\"a\": \"s2.safetensors\", \"b\": \"s2.safetensors\"}}",
               "tensor 'a' is not in its shard 's2.safetensors'");
  expect_index("{\"weight_map\": {\"a\": \"../s1.safetensors\"}}", "tensor 'a' has no shard file name");
  expect_index("{\"metadata\": {}}", "no \"weight_map\" object");
  expect_index("{\"weight_map\": {\"a\": \"missing.safetensors\"}}", "missing.safetensors");
  write_st("s3.safetensors", "a");
  expect_index("{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s3.safetensors\"}}",
               "tensor 'a' is in two shards");
}

/* A llama GGUF as llama.cpp's converter writes it (stories260K, interleaved
 * RoPE, tied classifier): import reads its metadata; the compiled .tfx
 * generates llama2.c's greedy ids. */
static void test_gguf_llama(void **state) {
  (void)state;
  char bin[1024], tfx[1024];
  int32_t want[16];
  if (tfx_test_stories260k("test_import", bin, sizeof bin, tfx, sizeof tfx, want, 16)) fail();
  char script[1024], models[1024], gguf[1024], out[1024];
  snprintf(script, sizeof script, "%s/tests/gguf/stories260k_gguf.py", TFX_SOURCE_DIR);
  snprintf(models, sizeof models, "%s", bin);
  *strrchr(models, '/') = 0;
  char *so = NULL, *se = NULL;
  char *py[] = {TFX_PYENV_PYTHON, script, dir, models, NULL};
  int rc = tfx_test_run(py, &so, &se);
  if (rc) fail_msg("%s failed: %s", script, se);
  free(so);
  free(se);
  snprintf(gguf, sizeof gguf, "%s/stories260K.f32.gguf", dir);
  snprintf(out, sizeof out, "%s/s.tfx", dir);
  expect_cli((char *[]){TFXC_PATH, "import", gguf, "-o", out, NULL}, 0, NULL);
  char *text = tfx_test_read_file(out, NULL);
  assert_non_null(text);
  expect_in(text, "weights \"stories260K.f32.gguf\" rename {"); /* beside it: by its name */
  expect_in(text, "style = interleaved");
  expect_in(text, "const dim = 64, layers = 5, heads = 8, kv_heads = 4, head_dim = 8\n");
  free(text);
  char *run[] = {TFXC_PATH, "run", out, "-n", "16", "--temperature", "0", "--print-ids", NULL};
  assert_int_equal(tfx_test_run(run, &so, &se), 0);
  char expect[512];
  size_t k = 0;
  for (int i = 0; i < 16; i++) k += (size_t)snprintf(expect + k, sizeof expect - k, "%s%d", i ? " " : "", want[i]);
  if (strncmp(so, expect, k)) fprintf(stderr, "got  %s\nwant %s\n", so, expect);
  assert_memory_equal(so, expect, k);
  free(so);
  free(se);
  static const char *const fmts[] = {"f32", "f16", "q8_0", "q4_0", "q5_0"};
  for (int i = 0; i < 5; i++) {
    char p[1024];
    snprintf(p, sizeof p, "%s/stories260K.%s.gguf", dir, fmts[i]);
    remove(p);
    snprintf(p, sizeof p, "%s/ref.%s.f32", dir, fmts[i]);
    remove(p);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_parsing), cmocka_unit_test(test_errors),     cmocka_unit_test(test_command_line),
      cmocka_unit_test(test_shard_index),    cmocka_unit_test(test_gguf_llama),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
