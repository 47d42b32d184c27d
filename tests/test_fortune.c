/* tests/test_fortune.c — the project's demo model (examples/fortune, trained
 * by its train.py) against its oracle, `transformers` (recorded in
 * examples/fortune/reference.json when the model was trained: the f16
 * weights as saved, run in f32 with eager attention):
 *   - compiled at -O0 and -O3, each prompt's logits after prefill within
 *     LOGIT_TOL of transformers', and 48 greedy tokens decoded one by one
 *     equal to transformers' ids (a step where transformers' two best logits
 *     are closer than TIE_MARGIN may resolve either way: the comparison stops
 *     there, and the test says so);
 *   - the C tokenizer (tokenizer.json, byte-level BPE) encodes each prompt to
 *     the recorded ids and decodes prompt + generation to transformers' text;
 *   - over the training corpus (Debian's `fortunes`, the files train.py
 *     lists), decode(encode(x)) == x for every fortune, and the token count
 *     equals the count train.py logged from the `tokenizers` package. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../frontend/json.h"
#include "../include/tfx/jit.h"
#include "../include/tfx/tokenizer.h"
#include "support/testutil.h"

#define VOCAB 1024
#define LOGIT_TOL 2e-3  /* logits are ~10 in scale; f32 in other summation orders */
#define TIE_MARGIN 2e-3 /* a closer top two may swap in another summation order */

static char dir[4096];
static tfx_fe_json *ref;
static const tfx_fe_json *cases;

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "%s/examples/fortune", TFX_SOURCE_DIR);
  char path[4200];
  snprintf(path, sizeof path, "%s/reference.json", dir);
  size_t size = 0;
  char *text = tfx_test_read_file(path, &size);
  if (!text) return -1;
  char err[256];
  ref = tfx_fe_json_parse(text, size, err, sizeof err);
  free(text);
  if (!ref) {
    fprintf(stderr, "test_fortune: %s: %s\n", path, err);
    return -1;
  }
  cases = tfx_fe_json_get(ref, "cases");
  return cases && cases->kind == TFX_FE_JSON_ARRAY && cases->n > 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  tfx_fe_json_free(ref);
  return 0;
}

/* The ids of member key of case c. */
static int ids_of(const tfx_fe_json *c, const char *key, int32_t *ids, int max) {
  const tfx_fe_json *a = tfx_fe_json_get(c, key);
  assert_non_null(a);
  assert_true(a->kind == TFX_FE_JSON_ARRAY && a->n <= max);
  for (int i = 0; i < a->n; i++) ids[i] = (int32_t)a->items[i].num;
  return a->n;
}

static void check_model(int opt_level) {
  char path[4200];
  snprintf(path, sizeof path, "%s/fortune.tfx", dir);
  tfx_compile_options o;
  tfx_compile_options_init(&o);
  o.opt_level = opt_level;
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_file(path, &o, &m), 0);
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, &(tfx_session_options){.threads = 2}, &s), TFX_OK);
  float logits[VOCAB];
  for (int c = 0; c < cases->n; c++) {
    const tfx_fe_json *k = &cases->items[c];
    int32_t prompt[256], want[64];
    int np = ids_of(k, "prompt_ids", prompt, 256), ng = ids_of(k, "greedy_ids", want, 64);
    const tfx_fe_json *margins = tfx_fe_json_get(k, "margins"), *first = tfx_fe_json_get(k, "logits_after_prompt");
    assert_true(margins && margins->n == ng && first && first->n == VOCAB);
    tfx_session_reset(s);
    assert_int_equal(tfx_forward(s, prompt, np, logits), TFX_OK);
    double worst = 0;
    for (int v = 0; v < VOCAB; v++) {
      double d = logits[v] - first->items[v].num;
      if (d < 0) d = -d;
      if (d > worst) worst = d;
    }
    if (!(worst <= LOGIT_TOL)) fail_msg("-O%d case %d: logits after the prompt differ by %g", opt_level, c, worst);
    int matched = 0;
    for (int i = 0; i < ng; i++) {
      int32_t next = tfx_test_argmax(logits, VOCAB);
      if (next != want[i]) {
        if (margins->items[i].num < TIE_MARGIN) {
          print_message("-O%d case %d: step %d is a near tie in transformers (margin %g): compared %d tokens\n",
                        opt_level, c, i, margins->items[i].num, matched);
          break;
        }
        fail_msg("-O%d case %d: greedy token %d is %d, transformers %d (margin %g)", opt_level, c, i, next, want[i],
                 margins->items[i].num);
      }
      matched++;
      if (i + 1 < ng) assert_int_equal(tfx_forward(s, &next, 1, logits), TFX_OK);
    }
  }
  tfx_session_free(s);
  tfx_model_close(m);
}

static void test_model_O0(void **state) {
  (void)state;
  check_model(0);
}

static void test_model_O3(void **state) {
  (void)state;
  check_model(3);
}

static tfx_tokenizer *open_tokenizer(void) {
  char path[4200], err[512];
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  tfx_tokenizer *t = NULL;
  if (tfx_tokenizer_open(path, &t, err, sizeof err) != 0) fail_msg("%s", err);
  return t;
}

static void test_tokenizer_prompts(void **state) {
  (void)state;
  tfx_tokenizer *t = open_tokenizer();
  assert_int_equal(tfx_tokenizer_vocab_size(t), VOCAB);
  assert_int_equal(tfx_tokenizer_bos(t), 0);
  assert_int_equal(tfx_tokenizer_eos(t), 1);
  for (int c = 0; c < cases->n; c++) {
    const tfx_fe_json *k = &cases->items[c];
    int32_t want[320], got[320];
    int np = ids_of(k, "prompt_ids", want, 256);
    const char *prompt = tfx_fe_json_get(k, "prompt")->str;
    int n = tfx_tokenizer_encode(t, prompt, strlen(prompt), TFX_TOKENIZE_BOS, got, 320);
    assert_int_equal(n, np);
    assert_memory_equal(got, want, (size_t)np * sizeof *got);
    int ng = ids_of(k, "greedy_ids", want + np, 64);
    char text[8192];
    int len = tfx_tokenizer_decode(t, want, np + ng, text, sizeof text);
    assert_true(len >= 0 && (size_t)len < sizeof text);
    assert_string_equal(text, tfx_fe_json_get(k, "text")->str);
  }
  tfx_tokenizer_close(t);
}

/* train.py's corpus: the same files, entries and length limit. */
static const char *const corpus_files[] = {
    "art",        "computers",  "cookie",  "debian",     "definitions", "education",     "food",
    "fortunes",   "goedel",     "humorists", "kids",     "law",         "linux",         "linuxcookie",
    "literature", "love",       "magic",   "miscellaneous", "news",     "paradoxum",     "people",
    "perl",       "pets",       "platitudes", "pratchett", "riddles",   "science",       "songs-poems",
    "sports",     "startrek",   "tao",     "wisdom",     "work",        "zippy"};
#define MAX_CHARS 600

/* The token count train.py logged ("tokens: N"), or -1. */
static long logged_tokens(void) {
  char path[4200];
  snprintf(path, sizeof path, "%s/train.log", dir);
  char *log = tfx_test_read_file(path, NULL);
  const char *at = log ? strstr(log, "\ntokens: ") : NULL;
  long n = at ? strtol(at + 9, NULL, 10) : -1;
  free(log);
  return n;
}

/* Python's len() of UTF-8 text: code points. */
static size_t code_points(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xc0) != 0x80;
  return c;
}

static void test_tokenizer_corpus(void **state) {
  (void)state;
  const char *root = "/usr/share/games/fortunes";
  char path[4200];
  snprintf(path, sizeof path, "%s/cookie", root);
  if (access(path, R_OK) != 0) {
    /* scripts/install-deps.sh test installs Debian's `fortunes` */
    fail_msg("the corpus is missing: %s (apt-get install fortunes)", path);
  }
  tfx_tokenizer *t = open_tokenizer();
  long tokens = 0, docs = 0;
  int32_t *ids = malloc(8192 * sizeof *ids);
  char *back = malloc(16384);
  assert_true(ids && back);
  for (size_t f = 0; f < sizeof corpus_files / sizeof corpus_files[0]; f++) {
    snprintf(path, sizeof path, "%s/%s", root, corpus_files[f]);
    size_t size = 0;
    char *text = tfx_test_read_file(path, &size);
    assert_non_null(text);
    /* entries are separated by "\n%\n"; each is stripped of newlines
     * around it and of trailing white space (train.py's strip("\n").rstrip()) */
    for (size_t at = 0; at <= size;) {
      const char *sep = NULL;
      for (size_t i = at; i + 3 <= size; i++)
        if (text[i] == '\n' && text[i + 1] == '%' && text[i + 2] == '\n') {
          sep = text + i;
          break;
        }
      size_t end = sep ? (size_t)(sep - text) : size, b = at, e = end;
      at = sep ? end + 3 : size + 1;
      while (b < e && text[b] == '\n') b++;
      while (e > b && text[e - 1] == '\n') e--;
      while (e > b && strchr(" \t\n\r\v\f", text[e - 1])) e--;
      if (e == b || (e - b == 1 && text[b] == '%') || code_points(text + b, e - b) > MAX_CHARS) continue;
      int n = tfx_tokenizer_encode(t, text + b, e - b, TFX_TOKENIZE_BOS, ids, 8192);
      assert_true(n > 0 && n <= 8192);
      int len = tfx_tokenizer_decode(t, ids, n, back, 16384);
      if (len != (int)(e - b) || memcmp(back, text + b, e - b))
        fail_msg("%s: fortune %ld does not round-trip:\n%.*s\n---\n%.*s", corpus_files[f], docs, (int)(e - b),
                 text + b, len > 0 ? len : 0, back);
      tokens += n + 1; /* + </s>, as train.py's stream */
      docs++;
    }
    free(text);
  }
  free(ids);
  free(back);
  tfx_tokenizer_close(t);
  long want = logged_tokens();
  print_message("corpus: %ld fortunes, %ld tokens (train.py logged %ld)\n", docs, tokens, want);
  assert_int_equal(tokens, want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tokenizer_prompts),
      cmocka_unit_test(test_tokenizer_corpus),
      cmocka_unit_test(test_model_O0),
      cmocka_unit_test(test_model_O3),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
