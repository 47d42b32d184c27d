/* driver/main.c — the tfxc command line: compile a .tfx model to a shared
 * library, an object, a header or a text dump; or run a model (a .tfx through
 * the JIT, or a compiled .so) and generate tokens.
 * Exit codes: 0 success, 1 compile or run error, 2 usage error. */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../frontend/weights.h"
#include "../include/tfx/jit.h"
#include "../include/tfx/tokenizer.h"
#include "../passes/passes.h"
#include "cli.h"
#include "compile.h"
#include "import_cmd.h"
#include "outfile.h"
#include "run_inputs.h"

enum { EXIT_COMPILE = TFX_CLI_EXIT_ERROR, EXIT_USAGE = TFX_CLI_EXIT_USAGE };

/* the command being parsed: its usage follows a usage error */
static const tfx_cli_command *cur_cmd;

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "tfxc: error: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  tfx_cli_print_usage(cur_cmd, stderr);
  return EXIT_USAGE;
}

/* Checks the names of a comma-separated pass list (--passes, --print-after):
 * an unknown or empty name is a usage error (exit 2), found before any
 * compiling. */
static int check_pass_list(const char *option, const char *list) {
  for (const char *p = list; p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    int known = 0;
    for (const char *const *n = tfx_pass_names(); *n && !known; n++) known = strlen(*n) == len && !strncmp(*n, p, len);
    if (!known) {
      fprintf(stderr, "tfxc: error: %s: %s '%.*s' (passes:", option, len ? "unknown pass" : "empty pass name", (int)len,
              p);
      for (const char *const *n = tfx_pass_names(); *n; n++)
        fprintf(stderr, "%s %s", n == tfx_pass_names() ? "" : ",", *n);
      fprintf(stderr, ")\n");
      tfx_cli_print_usage(cur_cmd, stderr);
      return EXIT_USAGE;
    }
    p = e ? e + 1 : NULL;
  }
  return 0;
}

/* --quantize FMT: a usage error (exit 2) for an unknown name. */
static int check_quantize(const char *v) {
  tfx_quant_choice c;
  char msg[512];
  if (!tfx_quant_choice_parse_msg(v, 1, &c, msg, sizeof msg)) return 0;
  if (!strchr(v, '('))
    fprintf(stderr, "tfxc: error: unknown --quantize format '%s' (expected %s)\n", v, tfx_quant_choice_names(1));
  else
    fprintf(stderr, "tfxc: error: --quantize '%s': %s\n", v, msg);
  tfx_cli_print_usage(cur_cmd, stderr);
  return EXIT_USAGE;
}

/* Numeric option values (issue #17): checked right after conversion, so a
 * value out of range is a usage error (exit 2) naming the option, the value
 * and the accepted range, never a failure later on. A value is the whole
 * argument: no blanks, no sign where none is accepted, no trailing text. */
static int number_error(const char *option, const char *range, const char *v, const char *why) {
  fprintf(stderr, "tfxc: error: %s needs %s, got '%s'%s%s%s\n", option, range, v, why ? " (" : "", why ? why : "",
          why ? ")" : "");
  tfx_cli_print_usage(cur_cmd, stderr);
  return EXIT_USAGE;
}

/* An integer option in [lo, hi]; 0, or EXIT_USAGE after the message. */
static int int_option(const char *option, const char *v, long lo, long hi, long *out) {
  char range[96];
  snprintf(range, sizeof range, "a number from %ld to %ld", lo, hi);
  if (!v) return usage_error("%s needs a value", option);
  if (!*v) return number_error(option, range, v, "an empty value");
  if (!(v[0] >= '0' && v[0] <= '9') && !(v[0] == '-' && v[1] >= '0' && v[1] <= '9'))
    return number_error(option, range, v, "not an integer");
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (*end) return number_error(option, range, v, "not an integer");
  if (errno == ERANGE || x < lo || x > hi) return number_error(option, range, v, "out of range");
  *out = x;
  return 0;
}

/* A finite decimal number (strtod's syntax, without blanks); 0, or the reason. */
static const char *parse_number(const char *v, double *out) {
  if (!*v) return "an empty value";
  if (v[0] == ' ' || v[0] == '\t' || v[0] == '\n') return "not a number";
  char *end;
  double x = strtod(v, &end);
  if (*end || end == v || x != x) return "not a number";
  if (isinf(x)) return "not finite";
  *out = x;
  return NULL;
}

/* --temperature: 0 (greedy) or a positive float, finite and not rounding to
 * 0 as the float the sampler takes. */
static int temperature_option(const char *option, const char *v, double *out) {
  static const char range[] = "0 (greedy) or a number from 1.2e-38 to 3.4e38";
  if (!v) return usage_error("%s needs a value", option);
  double x = 0;
  const char *why = parse_number(v, &x);
  if (!why && x < 0) why = "negative";
  if (!why && x > 0 && !(x >= FLT_MIN && x <= FLT_MAX)) why = "out of the range of a float";
  if (why) return number_error(option, range, v, why);
  *out = x;
  return 0;
}

/* --top-p: in (0, 1], at least FLT_MIN (the sampler's float). */
static int top_p_option(const char *option, const char *v, double *out) {
  static const char range[] = "a number in (0, 1] (at least 1.2e-38)";
  if (!v) return usage_error("%s needs a value", option);
  double x = 0;
  const char *why = parse_number(v, &x);
  if (!why && !(x > 0 && x <= 1)) why = "out of range";
  if (!why && x < FLT_MIN) why = "below the smallest normal float";
  if (why) return number_error(option, range, v, why);
  *out = x;
  return 0;
}

/* --seed: an unsigned 64-bit integer. */
static int seed_option(const char *option, const char *v, uint64_t *out) {
  static const char range[] = "an integer from 0 to 18446744073709551615";
  if (!v) return usage_error("%s needs a value", option);
  if (!*v) return number_error(option, range, v, "an empty value");
  if (!(v[0] >= '0' && v[0] <= '9')) return number_error(option, range, v, v[0] == '-' ? "negative" : "not an integer");
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (*end) return number_error(option, range, v, "not an integer");
  if (errno == ERANGE) return number_error(option, range, v, "out of range");
  *out = (uint64_t)x;
  return 0;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- tfxc FILE.tfx ... ---- */

static char *default_output(const char *input, const char *ext) {
  const char *base = strrchr(input, '/');
  base = base ? base + 1 : input;
  size_t len = strlen(base);
  if (ends_with(base, ".tfx")) len -= 4;
  char *out = malloc(len + strlen(ext) + 1);
  if (!out) return NULL;
  memcpy(out, base, len);
  strcpy(out + len, ext);
  return out;
}

/* ---- outputs (driver/outfile.c): same-file checks, temporaries ---- */

/* A file the command reads or writes, and what it is ("the source", "-o"). */
typedef struct named_file {
  const char *path, *what;
} named_file;

/* An output that is the same file as an input, or as another output: a usage
 * error naming both. Returns 0 or EXIT_USAGE. */
static int check_same_files(const named_file *outs, int n_outs, const named_file *ins, int n_ins) {
  for (int i = 0; i < n_outs; i++) {
    if (!outs[i].path) continue;
    for (int j = 0; j < n_ins; j++)
      if (ins[j].path && tfx_drv_same_file(outs[i].path, ins[j].path)) {
        fprintf(stderr, "tfxc: error: the output '%s' (%s) is the same file as the input '%s' (%s)\n", outs[i].path,
                outs[i].what, ins[j].path, ins[j].what);
        tfx_cli_print_usage(cur_cmd, stderr);
        return EXIT_USAGE;
      }
    for (int j = 0; j < i; j++)
      if (outs[j].path && tfx_drv_same_file(outs[i].path, outs[j].path)) {
        fprintf(stderr, "tfxc: error: the output '%s' (%s) is the same file as the output '%s' (%s)\n", outs[i].path,
                outs[i].what, outs[j].path, outs[j].what);
        tfx_cli_print_usage(cur_cmd, stderr);
        return EXIT_USAGE;
      }
  }
  return 0;
}

/* The weights file the frontend binds (the source's weights statement or
 * --weights), recorded to check it against the outputs. */
typedef struct weights_seen {
  char path[4096];
} weights_seen;

static void on_weights_path(void *ctx, const char *path) {
  weights_seen *w = ctx;
  snprintf(w->path, sizeof w->path, "%s", path);
}

/* Replaces every occurrence of from in s (a message) by to, within len. */
static void replace_all(char *s, size_t len, const char *from, const char *to) {
  size_t nf = strlen(from), nt = strlen(to);
  if (!nf) return;
  for (char *p = strstr(s, from); p; p = strstr(p + nt, from)) {
    size_t tail = strlen(p + nf);
    if ((size_t)(p - s) + nt + tail + 1 > len) return;
    memmove(p + nt, p + nf, tail + 1);
    memcpy(p, to, nt);
  }
}

/* A backend error about the temporaries tmp (and obj) of output dest: the
 * names the user knows, without the "backend: " prefix. */
static const char *user_message(char *err, size_t len, const char *tmp, const char *obj, const char *dest) {
  if (tmp) replace_all(err, len, tmp, dest);
  if (obj) {
    char what[4200];
    snprintf(what, sizeof what, "the object of '%s'", dest);
    replace_all(err, len, obj, what);
  }
  return strncmp(err, "backend: ", 9) ? err : err + 9;
}

/* Options that are an -O level: -O0 .. -O3 (given as -O with an attached
 * value); anything else is an unknown option, named as written. */
static int opt_level_option(const char *v, int *opt) {
  if (v && v[0] >= '0' && v[0] <= '3' && !v[1]) {
    *opt = v[0] - '0';
    return 0;
  }
  char name[64];
  snprintf(name, sizeof name, "-O%s", v ? v : "");
  return usage_error("unknown option '%s' (optimization levels: -O0, -O1, -O2, -O3)", name);
}

/* --symbol-prefix: a C identifier (the symbols are P_descriptor, ...) */
static int check_symbol_prefix(const char *v) {
  int ok = (isalpha((unsigned char)v[0]) || v[0] == '_') && strlen(v) < 100;
  for (const char *c = v; ok && *c; c++) ok = isalnum((unsigned char)*c) || *c == '_';
  if (!ok || !strcmp(v, "tfx_model"))
    return usage_error("--symbol-prefix needs a C identifier of at most 99 characters (not tfx_model), got '%s'", v);
  return 0;
}

/* -v: one line per phase on stderr */
static int verbose;
static void phase(const char *what, double seconds) {
  if (verbose) fprintf(stderr, "tfxc: %-8s %8.3f s\n", what, seconds);
}

int tfx_drv_compile_main(int argc, char **argv) {
  const char *input = NULL, *output = NULL, *weights = NULL, *emit = NULL, *header = NULL, *cpu = NULL;
  const char *passes = NULL, *print_after = NULL, *quantize = NULL, *gguf = NULL, *runtime = NULL, *prefix = NULL;
  const char *calibration = NULL, *triple = NULL, *cc = NULL, *sysroot = NULL, *tokenizer = NULL;
  int object = 0, opt = 2, stats = 0, print_all = 0, time_passes = 0, verify_passes = 0, allow_nonfinite = 0;
  cur_cmd = tfx_cli_find("compile");
  tfx_cli p;
  if (tfx_cli_begin(&p, cur_cmd, argc, argv)) return EXIT_COMPILE;
  int bad = 0;
  for (int k; !bad && (k = tfx_cli_next(&p)) != TFX_CLI_END;) {
    const char *v = p.arg;
    switch (k) {
    case TFX_CLI_FAILED: bad = EXIT_USAGE; break;
    case TFX_OPT_HELP:
      tfx_cli_print_help(cur_cmd, stdout);
      bad = -1;
      break;
    case TFX_OPT_OUTPUT: output = v; break;
    case TFX_OPT_OBJECT: object = 1; break;
    case TFX_OPT_OPT: bad = opt_level_option(v, &opt); break;
    case TFX_OPT_WEIGHTS:
      if (!*v) bad = usage_error("%s: empty weights path (expected a file, random or random:SEED)", "--weights");
      weights = v;
      break;
    case TFX_OPT_EMIT:
      if (strcmp(v, "ir") && strcmp(v, "llvm") && strcmp(v, "asm"))
        bad = usage_error("unknown --emit kind '%s' (expected ir, llvm or asm)", v);
      emit = v;
      break;
    case TFX_OPT_EMIT_HEADER: header = v; break;
    case TFX_OPT_EMIT_GGUF:
      if (!*v) bad = usage_error("%s needs a file name", p.name);
      gguf = v;
      break;
    case TFX_OPT_MCPU: cpu = v; break;
    case TFX_OPT_TARGET:
    case TFX_OPT_CC:
    case TFX_OPT_SYSROOT:
      if (!*v) bad = usage_error("%s needs a value", p.name);
      *(k == TFX_OPT_TARGET ? &triple : k == TFX_OPT_CC ? &cc : &sysroot) = v;
      break;
    case TFX_OPT_SYMBOL_PREFIX:
      if (check_symbol_prefix(v)) bad = EXIT_USAGE;
      prefix = v;
      break;
    case TFX_OPT_TOKENIZER:
      if (!*v) bad = usage_error("%s needs a file name", p.name);
      tokenizer = v;
      break;
    case TFX_OPT_STATS: stats = 1; break;
    case TFX_OPT_RUNTIME:
      if (!*v) bad = usage_error("%s needs a file name", p.name);
      runtime = v;
      break;
    case TFX_OPT_PASSES:
    case TFX_OPT_PRINT_AFTER:
      if (!*v)
        bad = usage_error("%s needs a list of passes", p.name);
      else if (check_pass_list(k == TFX_OPT_PASSES ? "--passes" : "--print-after", v))
        bad = EXIT_USAGE;
      *(k == TFX_OPT_PASSES ? &passes : &print_after) = v;
      break;
    case TFX_OPT_PRINT_AFTER_ALL: print_all = 1; break;
    case TFX_OPT_TIME_PASSES: time_passes = 1; break;
    case TFX_OPT_VERIFY_PASSES: verify_passes = 1; break;
    case TFX_OPT_ALLOW_NONFINITE: allow_nonfinite = 1; break;
    case TFX_OPT_VERBOSE: verbose = 1; break;
    case TFX_OPT_QUANTIZE:
      if (check_quantize(v)) bad = EXIT_USAGE;
      quantize = v;
      break;
    case TFX_OPT_CALIBRATION:
      if (!*v) bad = usage_error("%s needs a file", p.name);
      calibration = v;
      break;
    case TFX_CLI_POSITIONAL:
      if (input) bad = usage_error("more than one input file ('%s')", v);
      input = v;
      break;
    default: bad = usage_error("internal error: option '%s' has no handler", p.name); break;
    }
  }
  tfx_cli_end(&p);
  if (bad) return bad < 0 ? 0 : bad;
  if (!input) return usage_error("%s", "no input file");
  if (!ends_with(input, ".tfx")) return usage_error("the input '%s' is not a .tfx file", input);
  if (emit && (output || object))
    return usage_error("%s", "--emit prints to stdout; it does not combine with -o or -c");
  if (stats && (emit || output || object || header))
    return usage_error("%s", "--stats prints to stdout; it does not combine with --emit, -o, -c or --emit-header");
  if (gguf && (emit || stats))
    return usage_error("%s", "--emit-gguf writes a file; it does not combine with --emit or --stats");
  if (runtime && (object || emit || stats || (!output && (header || gguf))))
    return usage_error("%s", "--runtime applies to a shared library (-o OUT.so, without -c)");
  if (tokenizer && (emit || stats || (!output && !object && (header || gguf))))
    return usage_error("%s", "--tokenizer embeds a tokenizer in the model: it applies to -o or -c");
  if ((cc || sysroot) && (emit || stats || (!output && !object && (header || gguf))))
    return usage_error("%s", "--cc and --sysroot apply to a shared library (-o OUT.so) or, with --target, to -c");
  if (access(input, R_OK) != 0) {
    fprintf(stderr, "tfxc: error: cannot read '%s': %s\n", input, strerror(errno));
    return EXIT_COMPILE;
  }
  /* the files written (none with --emit or --stats, which print to stdout) */
  int writes = !emit && !stats;
  char *def = NULL;
  const char *out_name = NULL;
  if (writes && ((!header && !gguf) || output || object)) {
    out_name = output ? output : (def = default_output(input, object ? ".o" : ".so"));
    if (!out_name) {
      fprintf(stderr, "tfxc: error: out of memory\n");
      return EXIT_COMPILE;
    }
  }
  int is_random = weights && (!strcmp(weights, "random") || !strncmp(weights, "random:", 7));
  named_file outs[3] = {{out_name, output ? "-o" : "the default output"},
                        {writes ? header : NULL, "--emit-header"},
                        {gguf, "--emit-gguf"}};
  named_file ins[3] = {{input, "the source"}, {is_random ? NULL : weights, "--weights"}, {tokenizer, "--tokenizer"}};
  if (check_same_files(outs, 3, ins, 3)) {
    free(def);
    return EXIT_USAGE;
  }

  int only_ir = emit && strcmp(emit, "ir") == 0;
  double times[2] = {0, 0}; /* code generation, linking */
  tfx_target_options t = {.opt_level = opt,
                          .cpu = cpu,
                          .triple = triple,
                          .cc = cc,
                          .sysroot = sysroot,
                          .phase_seconds = verbose ? times : NULL};
  char err[1024] = "", rt_archive[4096];
  int host = tfx_backend_target_is_host(&t, err, sizeof err);
  if (host < 0) {
    fprintf(stderr, "tfxc: error: %s\n", strncmp(err, "backend: ", 9) ? err : err + 9);
    free(def);
    return EXIT_COMPILE;
  }
  /* the runtime a .so links, found before compiling: a missing one is an
   * error now, not after the compile */
  if (out_name && !object) {
    if (tfx_backend_find_runtime_for(runtime, host ? NULL : triple, rt_archive, sizeof rt_archive, err, sizeof err)) {
      fprintf(stderr, "tfxc: error: %s\n", strncmp(err, "backend: ", 9) ? err : err + 9);
      free(def);
      return EXIT_COMPILE;
    }
    t.runtime = rt_archive;
  }
  tfx_pack_layout layout; /* the target first: its errors (an unknown --mcpu) are tfxc's, not the source's */
  if (tfx_backend_pack_layout(&t, &layout, err, sizeof err)) {
    fprintf(stderr, "tfxc: error: %s\n", err);
    free(def);
    return EXIT_COMPILE;
  }
  /* every output starts as a temporary beside it (creating it is the check
   * that it can be written, root included); all are renamed into place at the
   * end, when all are complete, and removed on an error or a signal */
  tfx_drv_output o_out = {0}, o_hdr = {0}, o_gguf = {0};
  int rc = 0;
  FILE *gguf_fp = NULL;
  if ((out_name && tfx_drv_output_begin(&o_out, out_name, object ? ".o" : ".so", !object, err, sizeof err)) ||
      (writes && header && tfx_drv_output_begin(&o_hdr, header, ".h", 0, err, sizeof err)) ||
      (gguf && tfx_drv_output_begin(&o_gguf, gguf, ".gguf", 0, err, sizeof err))) {
    fprintf(stderr, "tfxc: error: %s\n", err);
    rc = EXIT_COMPILE;
  } else if (gguf && !(gguf_fp = fopen(o_gguf.tmp, "wb"))) {
    fprintf(stderr, "tfxc: error: cannot write '%s': %s\n", gguf, strerror(errno));
    rc = EXIT_COMPILE;
  }
  if (rc) {
    tfx_drv_output_discard(&o_out);
    tfx_drv_output_discard(&o_hdr);
    tfx_drv_output_discard(&o_gguf);
    free(def);
    return rc;
  }
  weights_seen seen = {""};
  tfx_build_options bo = {.target = &t,
                          .weights = weights,
                          .no_weights = only_ir && !weights,
                          .opt_level = opt,
                          .passes = passes,
                          .print_after = print_after,
                          .print_after_all = print_all,
                          .time_passes = time_passes,
                          .verify_passes = verify_passes,
                          .quantize = quantize,
                          .calibration = calibration,
                          .emit_gguf = gguf,
                          .emit_gguf_to = gguf_fp,
                          .on_weights_path = on_weights_path,
                          .on_weights_ctx = &seen,
                          .allow_nonfinite = allow_nonfinite};
  tfx_build b;
  memset(&b, 0, sizeof b);
  if (tfx_build_source(input, NULL, &bo, &b)) rc = EXIT_COMPILE;
  if (rc == 0) {
    phase("parse", b.parse_seconds);
    phase("passes", b.passes_seconds);
  }
  if (rc == 0 && prefix && !(b.graph->symbol_name = strdup(prefix))) {
    fprintf(stderr, "tfxc: error: out of memory\n");
    rc = EXIT_COMPILE;
  }
  /* --tokenizer, else the source's tokenizer statement, goes into a .so or .o */
  const char *tok_file = rc == 0 && out_name ? (tokenizer ? tokenizer : b.graph->tokenizer_path) : NULL;
  named_file declared_tok = {tokenizer ? NULL : tok_file, "the tokenizer"};
  if (tok_file && check_same_files(outs, 3, &declared_tok, 1))
    rc = EXIT_USAGE;
  else if (tok_file &&
           tfx_build_embed_tokenizer(&b, tokenizer ? "--tokenizer" : "tokenizer", tok_file, err, sizeof err)) {
    fprintf(stderr, "tfxc: error: %s\n", err);
    rc = EXIT_COMPILE;
  }
  if (gguf_fp && fclose(gguf_fp) != 0 && rc == 0) {
    fprintf(stderr, "tfxc: error: cannot write '%s': %s\n", gguf, strerror(errno));
    rc = EXIT_COMPILE;
  }
  named_file bound = {seen.path[0] ? seen.path : NULL, "the weights"};
  if (rc == 0 && check_same_files(outs, 3, &bound, 1)) rc = EXIT_USAGE;
  if (rc) {
    /* nothing more: the temporaries are removed below */
  } else if (only_ir) {
    tfx_print_graph(b.graph, stdout);
  } else if (stats) {
    if (tfx_print_stats(b.graph, &t, passes ? passes : tfx_pass_pipeline_of(b.graph, opt), stdout, err, sizeof err)) {
      fprintf(stderr, "tfxc: error: %s\n", err);
      rc = EXIT_COMPILE;
    }
  } else if (emit) {
    if (tfx_backend_emit_text(b.graph, &t, strcmp(emit, "llvm") == 0 ? TFX_EMIT_LLVM_IR : TFX_EMIT_ASM, stdout, err,
                              sizeof err)) {
      fprintf(stderr, "tfxc: error: %s\n", err);
      rc = EXIT_COMPILE;
    }
  } else {
    if (header) {
      FILE *h = fopen(o_hdr.tmp, "w");
      if (!h || tfx_write_header(b.graph, input, h) != 0) {
        fprintf(stderr, "tfxc: error: cannot write '%s': %s\n", header, strerror(errno));
        rc = EXIT_COMPILE;
      }
      if (h && fclose(h) != 0 && rc == 0) {
        fprintf(stderr, "tfxc: error: cannot write '%s': %s\n", header, strerror(errno));
        rc = EXIT_COMPILE;
      }
    }
    if (rc == 0 && out_name && object) {
      if (tfx_backend_write_object(b.graph, b.weights.data, b.weights.size, &t, o_out.tmp, err, sizeof err)) {
        fprintf(stderr, "tfxc: error: cannot write '%s': %s\n", out_name,
                user_message(err, sizeof err, o_out.tmp, NULL, out_name));
        rc = EXIT_COMPILE;
      }
    } else if (rc == 0 && out_name) { /* the objects, linked into the temporary beside the output */
      int wrc = tfx_backend_write_shared(b.graph, b.weights.data, b.weights.size, &t, o_out.tmp, err, sizeof err);
      if (wrc) {
        fprintf(stderr, "tfxc: error: cannot %s '%s': %s\n", wrc == -2 ? "link" : "write", out_name,
                user_message(err, sizeof err, o_out.tmp, NULL, out_name));
        rc = EXIT_COMPILE;
      }
    }
  }
  /* all complete: each renamed into place; on an error none is */
  tfx_drv_output *all[3] = {&o_gguf, &o_hdr, &o_out};
  for (int i = 0; i < 3 && rc == 0; i++)
    if (all[i]->tmp && tfx_drv_output_commit(all[i], err, sizeof err)) {
      fprintf(stderr, "tfxc: error: %s\n", err);
      rc = EXIT_COMPILE;
    }
  for (int i = 0; i < 3; i++) tfx_drv_output_discard(all[i]);
  if (rc == 0 && out_name) {
    phase("codegen", times[0]);
    phase("link", times[1]);
  }
  tfx_build_free(&b);
  free(def);
  return rc;
}

/* ---- tfxc run MODEL ... ---- */

typedef struct run_options {
  const char *model, *weights, *prompt, *dump, *quantize, *eval, *text, *tokenizer_path, *calibration;
  tfx_tokenizer *tok;    /* --tokenizer: the output is text */
  const char *dump_file; /* where --dump-logits is written: its temporary (driver/outfile.c) */
  long steps, threads;
  int opt, print_ids, allow_nonfinite;
  int no_bos;                   /* --no-bos: the prompt is fed as it is */
  int dump_prompt;              /* --dump-prompt: --dump-logits starts with the prompt's rows */
  int64_t model_bos, model_eos; /* the model's tokens { bos, eos } (its descriptor), -1 when not given */
  tfx_drv_input_arg inputs[TFX_DRV_MAX_RUN_INPUTS]; /* --input NAME=VALUES */
  int n_inputs;
  const char *source;  /* --source TEXT */
  int32_t *source_ids; /* its ids (BOS, text, EOS) */
  int n_source;
  double temperature, top_p;
  uint64_t seed;
} run_options;

/* The id fed first: none with --no-bos, else the model's (tokens { bos }),
 * the tokenizer's, or 1 (llama2.c's). -1: none. */
static int32_t run_bos(const run_options *o) {
  if (o->no_bos) return -1;
  if (o->model_bos >= 0) return (int32_t)o->model_bos;
  return o->tok && tfx_tokenizer_bos(o->tok) >= 0 ? tfx_tokenizer_bos(o->tok) : 1;
}

/* The id that ends generation: the model's (tokens { eos }), else 1 (BOS
 * ends the text, as in llama2.c). */
static int32_t run_eos(const run_options *o) { return o->model_eos >= 0 ? (int32_t)o->model_eos : 1; }

static int parse_prompt(const char *text, int32_t **ids, int *n) {
  *ids = NULL;
  *n = 0;
  if (!text) return 0;
  size_t cap = strlen(text) / 2 + 2;
  int32_t *v = malloc(cap * sizeof *v);
  if (!v) return -1;
  const char *p = text;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    if (!*p) break;
    char *end;
    errno = 0;
    long x = strtol(p, &end, 10);
    if (end == p || errno || x < 0 || x > INT32_MAX || (*end && *end != ' ' && *end != '\t' && *end != ',')) {
      free(v);
      return -1;
    }
    v[(*n)++] = (int32_t)x;
    p = end;
  }
  *ids = v;
  return 0;
}

/* One generated id as text, flushed at once (streaming); an id the
 * tokenizer does not have prints as [id]. */
static void put_piece(const tfx_tokenizer *tok, int32_t prev, int32_t id) {
  char small[256], *buf = small;
  int n = tfx_tokenizer_decode_piece(tok, prev, id, small, sizeof small);
  if (n > (int)sizeof small && (buf = malloc((size_t)n))) /* a long piece (runs of spaces) */
    tfx_tokenizer_decode_piece(tok, prev, id, buf, (size_t)n);
  if (n < 0)
    printf("[%d]", (int)id);
  else
    fwrite(buf ? buf : small, 1, buf ? (size_t)n : sizeof small, stdout);
  if (buf && buf != small) free(buf);
  fflush(stdout);
}

/* The run's extra inputs (--input, --source) checked against the model:
 * 0 with *plan (NULL for a model of only its tokens), else the exit status. */
static int run_plan(const tfx_model *model, const run_options *o, int n_fed, tfx_drv_inputs **plan) {
  int rc = tfx_drv_inputs_plan(model, o->model, o->inputs, o->n_inputs, o->source ? o->source_ids : NULL, o->n_source,
                               n_fed, plan);
  return rc == 2 ? EXIT_USAGE : rc ? EXIT_COMPILE : 0;
}

static int generate(tfx_model *model, const run_options *o, const int32_t *prompt, int n_prompt) {
  const tfx_model_desc *d = tfx_model_descriptor(model);
  if (d->input_kind != TFX_INPUT_TOKENS) {
    fprintf(stderr, "tfxc: error: '%s' takes f32 activations, not tokens; `run` generates tokens\n", o->model);
    return EXIT_COMPILE;
  }
  int vocab = d->output_width;
  tfx_session_options so = {.threads = (int32_t)o->threads};
  tfx_session *s = NULL;
  int rc = tfx_session_create(model, &so, &s);
  if (rc != TFX_OK) {
    fprintf(stderr, "tfxc: error: cannot create a session: %s\n", tfx_error_message(rc));
    return EXIT_COMPILE;
  }
  FILE *dump = NULL;
  if (o->dump && !(dump = fopen(o->dump_file, "wb"))) {
    fprintf(stderr, "tfxc: error: cannot write '%s': %s\n", o->dump, strerror(errno));
    tfx_session_free(s);
    return EXIT_COMPILE;
  }
  int32_t bos = run_bos(o);
  int n_in = n_prompt + (bos >= 0), plan_rc = 0;
  tfx_drv_inputs *plan = NULL;
  if (n_in == 0) {
    fprintf(stderr, "tfxc: error: nothing to feed: with --no-bos, give a prompt\n");
    tfx_session_free(s);
    if (dump) fclose(dump);
    return EXIT_USAGE;
  }
  int32_t *tokens = malloc((size_t)n_in * sizeof *tokens);
  float *logits = malloc((size_t)vocab * sizeof *logits);
  long max_steps = o->steps;
  int32_t *out = malloc((size_t)(max_steps > 0 ? max_steps : 1) * sizeof *out);
  if (!tokens || !logits || !out) {
    fprintf(stderr, "tfxc: error: out of memory\n");
    rc = TFX_ERR_OUT_OF_MEMORY;
    goto done;
  }
  if (bos >= 0) tokens[0] = bos;
  if (n_prompt) memcpy(tokens + (bos >= 0), prompt, (size_t)n_prompt * sizeof *tokens);
  if ((plan_rc = run_plan(model, o, n_in, &plan))) goto done;
  if (n_in > d->max_seq) {
    fprintf(stderr, "tfxc: error: the prompt (%d tokens%s) does not fit max_seq = %d\n", n_in,
            bos >= 0 ? " with BOS" : "", d->max_seq);
    rc = TFX_ERR_CONTEXT_FULL;
    goto done;
  }
  tfx_sampler sampler;
  tfx_sampler_init(&sampler, (float)o->temperature, (float)o->top_p, (uint64_t)o->seed);
  int stream = o->tok && !o->print_ids;
  if (stream) /* the prompt's text first, as llama2.c prints it */
    for (int i = bos >= 0; i < n_in; i++) put_piece(o->tok, i ? tokens[i - 1] : -1, tokens[i]);

  double t0 = now_seconds();
  if (dump && o->dump_prompt) { /* every row of the prompt; the rows but the last to the dump */
    float *rows = malloc((size_t)n_in * (size_t)vocab * sizeof *rows);
    rc = rows ? tfx_drv_inputs_forward(plan, s, tokens, n_in, 0, rows, 0) : TFX_ERR_OUT_OF_MEMORY;
    if (rc == TFX_OK) {
      memcpy(logits, rows + (size_t)(n_in - 1) * (size_t)vocab, (size_t)vocab * sizeof *logits);
      if (fwrite(rows, sizeof *rows * (size_t)vocab, (size_t)(n_in - 1), dump) != (size_t)(n_in - 1)) {
        fprintf(stderr, "tfxc: error: cannot write '%s'\n", o->dump);
        rc = TFX_ERR_INVALID_ARGUMENT;
      }
    }
    free(rows); /* a failure is reported below, as a failed decode step's */
  } else {
    rc = tfx_drv_inputs_forward(plan, s, tokens, n_in, 0, logits, 1);
  }
  double t_prefill = now_seconds() - t0, t1 = now_seconds();
  long generated = 0;
  while (rc == TFX_OK && generated < max_steps) {
    if (dump && fwrite(logits, sizeof *logits, (size_t)vocab, dump) != (size_t)vocab) {
      fprintf(stderr, "tfxc: error: cannot write '%s'\n", o->dump);
      rc = TFX_ERR_INVALID_ARGUMENT;
      break;
    }
    int32_t next = tfx_sample(&sampler, logits, vocab);
    if (next < 0) {
      rc = next;
      break;
    }
    if (next == run_eos(o)) break; /* the model's EOS, else BOS ends the text, as in llama2.c */
    out[generated++] = next;
    if (stream) put_piece(o->tok, generated > 1 ? out[generated - 2] : tokens[n_in - 1], next);
    if (o->print_ids) { /* each id as it is generated */
      printf("%s%d", generated > 1 ? " " : "", next);
      fflush(stdout);
    }
    if (generated == max_steps || tfx_session_position(s) >= d->max_seq) break;
    rc = tfx_drv_inputs_forward(plan, s, &next, 1, n_in + generated - 1, logits, 1);
  }
  double t_decode = now_seconds() - t1;
  if (rc != TFX_OK) {
    if (o->print_ids && generated > 0) printf("\n"); /* the ids streamed so far end their line */
    const char *detail = tfx_session_last_error(s);
    fprintf(stderr, "tfxc: error: forward failed: %s\n", detail[0] ? detail : tfx_error_message(rc));
  } else {
    if (stream) {
      printf("\n");
      fflush(stdout);          /* before the speed on stderr */
    } else if (o->print_ids) { /* the ids are out already */
      printf("\n");
    } else {
      printf("generated %ld token%s:", generated, generated == 1 ? "" : "s");
      for (long i = 0; i < generated; i++) printf(" %d", out[i]);
      printf("\n");
    }
    long decoded = generated > 0 ? generated - 1 : 0;
    fprintf(stderr, "tfxc: prefill %d tokens in %.3f ms (%.0f tok/s); decode %ld tokens in %.3f ms (%.0f tok/s)\n",
            n_in, t_prefill * 1e3, n_in / (t_prefill > 0 ? t_prefill : 1e-9), decoded, t_decode * 1e3,
            decoded / (t_decode > 0 ? t_decode : 1e-9));
  }
done:
  if (dump && fclose(dump) != 0 && rc == TFX_OK) {
    fprintf(stderr, "tfxc: error: cannot write '%s'\n", o->dump);
    rc = TFX_ERR_INVALID_ARGUMENT;
  }
  free(tokens);
  free(logits);
  free(out);
  tfx_drv_inputs_free(plan);
  tfx_session_free(s);
  return plan_rc ? plan_rc : rc == TFX_OK ? 0 : EXIT_COMPILE;
}

/* Reads the ids of --eval-ids: a text file of non-negative integers separated
 * by blanks, commas or newlines (what --print-ids writes). */
static int read_ids_file(const char *path, int32_t **ids, int *n) {
  char *text;
  if (tfx_drv_read_text_file("--eval-ids", path, &text)) return -1;
  int rc = parse_prompt(text, ids, n);
  free(text);
  if (rc || *n == 0) {
    fprintf(stderr, "tfxc: error: '%s': %s\n", path,
            rc ? "not a list of token ids (non-negative integers separated by blanks)" : "no token ids");
    if (!rc) free(*ids);
    *ids = NULL;
    return -1;
  }
  return 0;
}

/* --eval-ids: one forward call on BOS + ids with every row's logits (teacher
 * forcing, what llama-perplexity measures); prints the mean negative
 * log-likelihood of ids[i] under row i and writes the rows to --dump-logits. */
static int evaluate(tfx_model *model, const run_options *o, const int32_t *ids, int n_ids) {
  const tfx_model_desc *d = tfx_model_descriptor(model);
  if (d->input_kind != TFX_INPUT_TOKENS) {
    fprintf(stderr, "tfxc: error: '%s' takes f32 activations, not tokens; --eval-ids feeds tokens\n", o->model);
    return EXIT_COMPILE;
  }
  int32_t bos = run_bos(o);
  int vocab = d->output_width, n_in = n_ids + (bos >= 0);
  if (n_in > d->max_seq) {
    fprintf(stderr, "tfxc: error: '%s' has %d ids: %sthey do not fit max_seq = %d\n", o->eval, n_ids,
            bos >= 0 ? "with BOS " : "", d->max_seq);
    return EXIT_COMPILE;
  }
  for (int i = 0; i < n_ids; i++)
    if (ids[i] >= vocab) {
      fprintf(stderr, "tfxc: error: '%s': id %d (number %d) is not below the vocabulary size %d\n", o->eval, ids[i],
              i + 1, vocab);
      return EXIT_COMPILE;
    }
  tfx_session_options so = {.threads = (int32_t)o->threads};
  tfx_session *s = NULL;
  int rc = tfx_session_create(model, &so, &s);
  if (rc != TFX_OK) {
    fprintf(stderr, "tfxc: error: cannot create a session: %s\n", tfx_error_message(rc));
    return EXIT_COMPILE;
  }
  int32_t *tokens = malloc((size_t)n_in * sizeof *tokens);
  float *logits = malloc((size_t)n_in * (size_t)vocab * sizeof *logits);
  tfx_drv_inputs *plan = NULL;
  int plan_rc = run_plan(model, o, n_in, &plan);
  if (plan_rc) goto done;
  if (!tokens || !logits) {
    fprintf(stderr, "tfxc: error: out of memory\n");
    rc = TFX_ERR_OUT_OF_MEMORY;
    goto done;
  }
  if (bos >= 0) tokens[0] = bos;
  memcpy(tokens + (bos >= 0), ids, (size_t)n_ids * sizeof *tokens);
  double t0 = now_seconds();
  rc = tfx_drv_inputs_forward(plan, s, tokens, n_in, 0, logits, 0);
  double t = now_seconds() - t0;
  if (rc != TFX_OK) {
    const char *detail = tfx_session_last_error(s);
    fprintf(stderr, "tfxc: error: forward failed: %s\n", detail[0] ? detail : tfx_error_message(rc));
    goto done;
  }
  double nll = 0;
  int n_eval = n_in - 1;             /* row i predicts tokens[i + 1] */
  for (int i = 0; i < n_eval; i++) { /* log-softmax of row i at tokens[i + 1], in double */
    const float *r = logits + (size_t)i * vocab;
    double mx = r[0], z = 0;
    for (int j = 1; j < vocab; j++) mx = r[j] > mx ? r[j] : mx;
    for (int j = 0; j < vocab; j++) z += exp(r[j] - mx);
    nll += mx + log(z) - r[tokens[i + 1]];
  }
  nll /= n_eval > 0 ? n_eval : 1;
  printf("evaluated %d tokens: mean nll %.6f, perplexity %.4f\n", n_eval, nll, exp(nll));
  fprintf(stderr, "tfxc: %d tokens%s in one call: %.3f ms (%.0f tok/s)\n", n_in, bos >= 0 ? " (with BOS)" : "", t * 1e3,
          n_in / (t > 0 ? t : 1e-9));
  if (o->dump) {
    FILE *f = fopen(o->dump_file, "wb");
    size_t cnt = (size_t)n_in * (size_t)vocab;
    if (!f || fwrite(logits, sizeof *logits, cnt, f) != cnt || fclose(f) != 0) {
      fprintf(stderr, "tfxc: error: cannot write '%s'\n", o->dump);
      rc = TFX_ERR_INVALID_ARGUMENT;
    }
  }
done:
  free(tokens);
  free(logits);
  tfx_drv_inputs_free(plan);
  tfx_session_free(s);
  return plan_rc ? plan_rc : rc == TFX_OK ? 0 : EXIT_COMPILE;
}

static int run_with(int argc, char **argv, tfx_tokenizer **tokp);

/* tfxc run: run_with, then the tokenizer it opened is closed here */
int tfx_drv_run_main(int argc, char **argv) {
  tfx_tokenizer *tok = NULL;
  int rc = run_with(argc, argv, &tok);
  tfx_tokenizer_close(tok);
  return rc;
}

/* Parses run's arguments into o; 0, -1 after --help, or the exit code. */
static int parse_run_args(int argc, char **argv, run_options *o) {
  cur_cmd = tfx_cli_find("run");
  tfx_cli p;
  if (tfx_cli_begin(&p, cur_cmd, argc, argv)) return EXIT_COMPILE;
  int bad = 0;
  for (int k; !bad && (k = tfx_cli_next(&p)) != TFX_CLI_END;) {
    const char *v = p.arg;
    switch (k) {
    case TFX_CLI_FAILED: bad = EXIT_USAGE; break;
    case TFX_OPT_HELP:
      tfx_cli_print_help(cur_cmd, stdout);
      bad = -1;
      break;
    case TFX_OPT_OPT: bad = opt_level_option(v, &o->opt); break;
    case TFX_OPT_STEPS:
      if (int_option(p.name, v, 0, 1L << 30, &o->steps)) bad = EXIT_USAGE;
      break;
    case TFX_OPT_WEIGHTS:
      if (!*v) bad = usage_error("%s: empty weights path (expected a file, random or random:SEED)", "--weights");
      o->weights = v;
      break;
    case TFX_OPT_PROMPT_IDS: o->prompt = v; break;
    case TFX_OPT_PROMPT: o->text = v; break;
    case TFX_OPT_TOKENIZER:
      if (!*v) bad = usage_error("%s needs a file name", "--tokenizer");
      o->tokenizer_path = v;
      break;
    case TFX_OPT_TEMPERATURE:
      if (temperature_option(p.name, v, &o->temperature)) bad = EXIT_USAGE;
      break;
    case TFX_OPT_TOP_P:
      if (top_p_option(p.name, v, &o->top_p)) bad = EXIT_USAGE;
      break;
    case TFX_OPT_SEED:
      if (seed_option(p.name, v, &o->seed)) bad = EXIT_USAGE;
      break;
    case TFX_OPT_THREADS:
      if (int_option(p.name, v, 1, 64, &o->threads)) bad = EXIT_USAGE;
      break;
    case TFX_OPT_PRINT_IDS: o->print_ids = 1; break;
    case TFX_OPT_NO_BOS: o->no_bos = 1; break;
    case TFX_OPT_ALLOW_NONFINITE: o->allow_nonfinite = 1; break;
    case TFX_OPT_DUMP_LOGITS: o->dump = v; break;
    case TFX_OPT_DUMP_PROMPT: o->dump_prompt = 1; break;
    case TFX_OPT_QUANTIZE:
      if (check_quantize(v)) bad = EXIT_USAGE;
      o->quantize = v;
      break;
    case TFX_OPT_EVAL_IDS: o->eval = v; break;
    case TFX_OPT_INPUT:
      if (o->n_inputs == TFX_DRV_MAX_RUN_INPUTS)
        bad = usage_error("more than %s --input options", "8");
      else
        o->inputs[o->n_inputs++].text = v;
      break;
    case TFX_OPT_SOURCE: o->source = v; break;
    case TFX_OPT_CALIBRATION:
      if (!*v) bad = usage_error("%s needs a file", p.name);
      o->calibration = v;
      break;
    case TFX_OPT_VERBOSE: verbose = 1; break;
    case TFX_CLI_POSITIONAL:
      if (o->model) bad = usage_error("more than one model ('%s')", v);
      o->model = v;
      break;
    default: bad = usage_error("internal error: option '%s' has no handler", p.name); break;
    }
  }
  tfx_cli_end(&p);
  return bad;
}

/* Opens the tokenizer file path (given by `what`) into *tokp and o->tok: 0,
 * or -1 after printing why. */
static int open_tokenizer(const char *what, const char *path, run_options *o, tfx_tokenizer **tokp) {
  char terr[1024] = "";
  int trc = tfx_tokenizer_open(path, tokp, terr, sizeof terr);
  o->tok = *tokp;
  if (trc) fprintf(stderr, "tfxc: error: %s %s\n", what, terr[0] ? terr : tfx_error_message(trc));
  return trc ? -1 : 0;
}

/* Encodes -p's text (if any) with o->tok into *prompt: 0 or the exit status. */
static int use_tokenizer(run_options *o, int32_t **prompt, int *n_prompt) {
  if (!o->text) return 0;
  if (!o->tok)
    return usage_error("-p needs --tokenizer PATH to encode the text ('%s' has no tokenizer statement)", o->model);
  size_t len = strlen(o->text);
  int n = tfx_tokenizer_encode(o->tok, o->text, len, 0, NULL, 0);
  int32_t *ids = n > 0 ? malloc((size_t)n * sizeof *ids) : NULL;
  if (n < 0 || (n > 0 && (!ids || tfx_tokenizer_encode(o->tok, o->text, len, 0, ids, n) != n))) {
    fprintf(stderr, "tfxc: error: cannot encode the prompt\n");
    free(ids);
    return EXIT_COMPILE;
  }
  *prompt = ids;
  *n_prompt = n;
  return 0;
}

/* Encodes --source's text into o->source_ids as Hugging Face's tokenizers
 * add the special tokens of an encoder's input: the tokenizer's BOS when it
 * has one (BART's <s>; T5 has none), the text, then EOS (the model's tokens
 * { eos }, else the tokenizer's). 0 or the exit status. */
static int encode_source(run_options *o) {
  if (!o->tok)
    return usage_error("--source needs --tokenizer PATH to encode the text ('%s' has no tokenizer)", o->model);
  size_t len = strlen(o->source);
  int n = tfx_tokenizer_encode(o->tok, o->source, len, TFX_TOKENIZE_BOS, NULL, 0);
  int32_t eos = o->model_eos >= 0 ? (int32_t)o->model_eos : tfx_tokenizer_eos(o->tok);
  int32_t *ids = n >= 0 ? malloc((size_t)(n + 1) * sizeof *ids) : NULL;
  if (!ids || tfx_tokenizer_encode(o->tok, o->source, len, TFX_TOKENIZE_BOS, ids, n) != n) {
    fprintf(stderr, "tfxc: error: cannot encode the source\n");
    free(ids);
    return EXIT_COMPILE;
  }
  if (eos >= 0) ids[n++] = eos;
  o->source_ids = ids;
  o->n_source = n;
  if (verbose) { /* -v: the ids the source became */
    fprintf(stderr, "tfxc: source: %d ids:", n);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", (int)ids[i]);
    fprintf(stderr, "\n");
  }
  return 0;
}

/* A compiled model's own tokenizer (tfxc --tokenizer when it was compiled),
 * when run without --tokenizer: it encodes -p and decodes the output. */
static int embedded_tokenizer(const tfx_model *model, run_options *o, tfx_tokenizer **tokp, int32_t **prompt,
                              int *n_prompt) {
  char err[1024] = "";
  int rc = tfx_model_tokenizer(model, tokp, err, sizeof err);
  if (rc != TFX_OK) {
    fprintf(stderr, "tfxc: error: '%s': %s\n", o->model, err[0] ? err : tfx_error_message(rc));
    return EXIT_COMPILE;
  }
  o->tok = *tokp;
  if (o->text && !o->tok)
    return usage_error("-p needs --tokenizer PATH to encode the text ('%s' embeds no tokenizer)", o->model);
  return use_tokenizer(o, prompt, n_prompt);
}

static int run_with(int argc, char **argv, tfx_tokenizer **tokp) {
  run_options o = {
      .steps = 256, .opt = 2, .temperature = 1.0, .top_p = 0.9, .seed = 42, .model_bos = -1, .model_eos = -1};
  int bad = parse_run_args(argc, argv, &o);
  if (bad) return bad < 0 ? 0 : bad;
  if (!o.model) return usage_error("%s", "run needs a model (.tfx or .so)");
  int is_so = ends_with(o.model, ".so");
  if (!is_so && !ends_with(o.model, ".tfx")) return usage_error("the model '%s' is neither a .tfx nor a .so", o.model);
  if (is_so && o.weights) return usage_error("%s", "--weights applies to a .tfx; a compiled .so carries its weights");
  if (is_so && o.quantize) return usage_error("%s", "--quantize applies to a .tfx; a compiled .so carries its weights");
  if (is_so && o.allow_nonfinite)
    return usage_error("%s", "--allow-nonfinite applies to a .tfx; a compiled .so carries its weights");
  if (o.eval && o.prompt)
    return usage_error("%s", "--eval-ids and --prompt-ids do not combine (the ids file holds the text)");
  if (o.text && o.prompt) return usage_error("%s", "-p (text) and --prompt-ids do not combine");
  if (o.text && o.eval) return usage_error("%s", "--eval-ids and -p do not combine (the ids file holds the text)");
  if (o.dump_prompt && !o.dump) return usage_error("%s", "--dump-prompt needs --dump-logits FILE");
  if (o.dump_prompt && o.eval)
    return usage_error("%s", "--dump-prompt and --eval-ids do not combine (--eval-ids dumps every row already)");
  int32_t *prompt = NULL;
  int n_prompt = 0;
  if (parse_prompt(o.prompt, &prompt, &n_prompt))
    return usage_error("bad --prompt-ids '%s': expected token ids from 0 to 2147483647 separated by blanks or commas",
                       o.prompt);
  if (o.tokenizer_path && open_tokenizer("--tokenizer", o.tokenizer_path, &o, tokp)) {
    free(prompt);
    return EXIT_COMPILE;
  }
  int is_random = o.weights && (!strcmp(o.weights, "random") || !strncmp(o.weights, "random:", 7));
  named_file dump_out = {o.dump, "--dump-logits"};
  named_file ins[3] = {{o.model, "the model"}, {is_random ? NULL : o.weights, "--weights"}, {o.eval, "--eval-ids"}};
  if (check_same_files(&dump_out, 1, ins, 3)) {
    free(prompt);
    return EXIT_USAGE;
  }
  if (o.eval && read_ids_file(o.eval, &prompt, &n_prompt)) return EXIT_COMPILE;
  /* the dump is written to a temporary beside it, renamed into place only
   * after a successful run: a failed run leaves an existing dump as it was */
  tfx_drv_output o_dump = {0};
  char oerr[1024] = "";
  if (o.dump && tfx_drv_output_begin(&o_dump, o.dump, ".bin", 0, oerr, sizeof oerr)) {
    fprintf(stderr, "tfxc: error: %s\n", oerr);
    free(prompt);
    return EXIT_COMPILE;
  }
  o.dump_file = o_dump.tmp;

  tfx_model *model = NULL;
  int rc;
  weights_seen seen = {""};
  int same = 0;
  if (is_so) {
    char err[1024] = "";
    rc = tfx_model_open_ex(o.model, &model, err, sizeof err);
    if (rc != TFX_OK)
      fprintf(stderr, "tfxc: error: cannot open '%s': %s\n", o.model, err[0] ? err : tfx_error_message(rc));
  } else {
    tfx_compile_options co;
    tfx_compile_options_init(&co);
    co.opt_level = o.opt;
    co.weights = o.weights;
    co.quantize = o.quantize;
    /* tfx_jit_compile_file's steps, with the weights file recorded */
    tfx_target_options t = {.opt_level = co.opt_level, .cpu = co.cpu};
    tfx_build_options bo = {.weights = co.weights,
                            .opt_level = co.opt_level,
                            .target = &t,
                            .quantize = co.quantize,
                            .calibration = o.calibration,
                            .on_weights_path = on_weights_path,
                            .on_weights_ctx = &seen,
                            .allow_nonfinite = o.allow_nonfinite};
    tfx_build b;
    rc = TFX_ERR_COMPILE;
    named_file bound = {NULL, "the weights"};
    if (tfx_build_source(o.model, NULL, &bo, &b) == 0) {
      phase("parse", b.parse_seconds);
      phase("passes", b.passes_seconds);
      bound.path = seen.path[0] ? seen.path : NULL;
      double tj = now_seconds();
      if (check_same_files(&dump_out, 1, &bound, 1))
        same = 1;
      else if (!o.tok && b.graph->tokenizer_path && open_tokenizer("tokenizer", b.graph->tokenizer_path, &o, tokp))
        rc = TFX_ERR_TOKENIZER; /* printed */
      else if ((rc = tfx_build_jit(&b, &t, &model, oerr, sizeof oerr)) != TFX_OK)
        fprintf(stderr, "%s: error: %s\n", o.model, oerr);
      else
        phase("codegen", now_seconds() - tj);
      tfx_build_free(&b);
    }
  }
  if (rc != TFX_OK) {
    tfx_drv_output_discard(&o_dump);
    free(prompt);
    return same ? EXIT_USAGE : EXIT_COMPILE;
  }
  const tfx_model_desc *d = tfx_model_descriptor(model);
  /* what the model records: its tokens { } and (a .so) the tokenizer it embeds */
  o.model_bos = d->bos_id;
  o.model_eos = d->eos_id;
  rc =
      o.tok || !is_so ? use_tokenizer(&o, &prompt, &n_prompt) : embedded_tokenizer(model, &o, tokp, &prompt, &n_prompt);
  if (!rc && o.source) rc = encode_source(&o);
  if (rc) {
    tfx_drv_output_discard(&o_dump);
    tfx_model_close(model);
    free(prompt);
    free(o.source_ids);
    return rc;
  }
  if (o.steps > d->max_seq) o.steps = d->max_seq;
  if (o.tok && d->vocab > 0 && tfx_tokenizer_vocab_size(o.tok) != d->vocab)
    fprintf(stderr, "tfxc: warning: the tokenizer has %d pieces, the model's vocabulary %d: is it the model's?\n",
            tfx_tokenizer_vocab_size(o.tok), (int)d->vocab);
  rc = o.eval ? evaluate(model, &o, prompt, n_prompt) : generate(model, &o, prompt, n_prompt);
  if (rc == 0 && o.dump && tfx_drv_output_commit(&o_dump, oerr, sizeof oerr)) {
    fprintf(stderr, "tfxc: error: %s\n", oerr);
    rc = EXIT_COMPILE;
  }
  tfx_drv_output_discard(&o_dump);
  tfx_model_close(model);
  free(prompt);
  free(o.source_ids);
  return rc;
}

/* tfxc verify FILE.so: opens the model with TFX_OPEN_VERIFY (the file
 * checks, then the descriptor's and the weights' checksums). */
/* The arguments of a command that takes one model file and no option but
 * --help (verify, seal): 0 with *path set, else the exit status (0 after
 * the help). */
static int one_model_file(const char *command, int argc, char **argv, const char **path) {
  cur_cmd = tfx_cli_find(command);
  tfx_cli p;
  if (tfx_cli_begin(&p, cur_cmd, argc, argv)) return EXIT_COMPILE;
  *path = NULL;
  int bad = 0;
  for (int k; !bad && (k = tfx_cli_next(&p)) != TFX_CLI_END;) {
    if (k == TFX_CLI_FAILED)
      bad = EXIT_USAGE;
    else if (k == TFX_OPT_HELP) {
      tfx_cli_print_help(cur_cmd, stdout);
      bad = -1;
    } else if (*path || !*p.arg)
      bad = usage_error("%s needs one model file (FILE.so)", command);
    else
      *path = p.arg;
  }
  tfx_cli_end(&p);
  if (bad) return bad < 0 ? 0 : bad;
  if (!*path) return usage_error("%s needs one model file (FILE.so)", command);
  return 0;
}

int tfx_drv_verify_main(int argc, char **argv) {
  const char *path = NULL;
  int rc = one_model_file("verify", argc, argv, &path);
  if (rc || !path) return rc;
  tfx_model *model = NULL;
  char err[1024] = "";
  rc = tfx_model_open_flags(path, TFX_OPEN_VERIFY, &model, err, sizeof err);
  if (rc != TFX_OK) {
    fprintf(stderr, "tfxc: error: %s: %s\n", path, err[0] ? err : tfx_error_message(rc));
    return EXIT_COMPILE;
  }
  const tfx_model_desc *d = tfx_model_descriptor(model);
  int ok = printf("%s: ok (model '%s', %llu weight bytes, checksums %016llx %016llx)\n", path, d->name,
                  (unsigned long long)d->weights_bytes, (unsigned long long)d->desc_checksum,
                  (unsigned long long)d->weights_checksum) > 0 &&
           fflush(stdout) == 0;
  tfx_model_close(model);
  if (!ok) {
    fprintf(stderr, "tfxc: error: writing to stdout failed: %s\n", strerror(errno));
    return EXIT_COMPILE;
  }
  return 0;
}

/* ---- tfxc seal FILE.so ---- */

int tfx_drv_seal_main(int argc, char **argv) {
  const char *path = NULL;
  int rc = one_model_file("seal", argc, argv, &path);
  if (rc || !path) return rc;
  char err[1024] = "";
  if (tfx_backend_seal(path, err, sizeof err) != 0) {
    fprintf(stderr, "tfxc: error: %s\n", err);
    return EXIT_COMPILE;
  }
  return 0;
}

/* ---- tfxc bench MODEL ---- */

/* A model from a .so (loaded) or a .tfx (built and JIT-compiled). */
static int load_model(const char *path, int opt, const char *weights, const char *quantize, tfx_model **model) {
  if (ends_with(path, ".so")) {
    char err[1024] = "";
    double t0 = now_seconds();
    int rc = tfx_model_open_ex(path, model, err, sizeof err);
    if (rc != TFX_OK) {
      fprintf(stderr, "tfxc: error: cannot open '%s': %s\n", path, err[0] ? err : tfx_error_message(rc));
      return EXIT_COMPILE;
    }
    phase("open", now_seconds() - t0);
    return 0;
  }
  tfx_target_options t = {.opt_level = opt};
  tfx_build_options bo = {.weights = weights, .opt_level = opt, .target = &t, .quantize = quantize};
  tfx_build b;
  if (tfx_build_source(path, NULL, &bo, &b)) return EXIT_COMPILE;
  phase("parse", b.parse_seconds);
  phase("passes", b.passes_seconds);
  char err[1024] = "";
  double t0 = now_seconds();
  int rc = tfx_build_jit(&b, &t, model, err, sizeof err);
  tfx_build_free(&b);
  if (rc != TFX_OK) {
    fprintf(stderr, "%s: error: %s\n", path, err);
    return EXIT_COMPILE;
  }
  phase("codegen", now_seconds() - t0);
  return 0;
}

/* One run of a test: prefill (n_prompt tokens in one call) or decode
 * (n_gen tokens one at a time after the prompt, untimed); its tokens/s. */
static int bench_once(tfx_session *s, const int32_t *ids, int n_prompt, int n_gen, float *logits, double *tps) {
  tfx_session_reset(s);
  int rc = TFX_OK;
  double t0 = now_seconds();
  if (n_gen == 0) {
    rc = tfx_forward(s, ids, n_prompt, logits);
    *tps = n_prompt / fmax(now_seconds() - t0, 1e-9);
    return rc;
  }
  if (n_prompt > 0) rc = tfx_forward(s, ids, n_prompt, logits);
  t0 = now_seconds();
  for (int i = 0; rc == TFX_OK && i < n_gen; i++) rc = tfx_forward(s, ids + n_prompt + i, 1, logits);
  *tps = n_gen / fmax(now_seconds() - t0, 1e-9);
  return rc;
}

int tfx_drv_bench_main(int argc, char **argv) {
  cur_cmd = tfx_cli_find("bench");
  const char *path = NULL, *weights = NULL, *quantize = NULL;
  long n_prompt = 128, n_gen = 64, reps = 5, threads = 0;
  int opt = 2, bad = 0;
  tfx_cli p;
  if (tfx_cli_begin(&p, cur_cmd, argc, argv)) return EXIT_COMPILE;
  for (int k; !bad && (k = tfx_cli_next(&p)) != TFX_CLI_END;) {
    const char *v = p.arg;
    switch (k) {
    case TFX_CLI_FAILED: bad = EXIT_USAGE; break;
    case TFX_OPT_HELP:
      tfx_cli_print_help(cur_cmd, stdout);
      bad = -1;
      break;
    case TFX_OPT_PROMPT: bad = int_option(p.name, v, 0, 1L << 20, &n_prompt); break;
    case TFX_OPT_STEPS: bad = int_option(p.name, v, 0, 1L << 20, &n_gen); break;
    case TFX_OPT_REPS: bad = int_option(p.name, v, 1, 1000, &reps); break;
    case TFX_OPT_THREADS: bad = int_option(p.name, v, 1, 64, &threads); break;
    case TFX_OPT_OPT: bad = opt_level_option(v, &opt); break;
    case TFX_OPT_WEIGHTS:
      if (!*v) bad = usage_error("%s: empty weights path (expected a file, random or random:SEED)", "--weights");
      weights = v;
      break;
    case TFX_OPT_QUANTIZE:
      if (check_quantize(v)) bad = EXIT_USAGE;
      quantize = v;
      break;
    case TFX_OPT_VERBOSE: verbose = 1; break;
    case TFX_CLI_POSITIONAL:
      if (path) bad = usage_error("more than one model ('%s')", v);
      path = v;
      break;
    default: bad = usage_error("internal error: option '%s' has no handler", p.name); break;
    }
  }
  tfx_cli_end(&p);
  if (bad) return bad < 0 ? 0 : bad;
  if (!path) return usage_error("%s", "bench needs a model (.so or .tfx)");
  int is_so = ends_with(path, ".so");
  if (!is_so && !ends_with(path, ".tfx")) return usage_error("the model '%s' is neither a .tfx nor a .so", path);
  if (is_so && (weights || quantize))
    return usage_error("%s", "--weights and --quantize apply to a .tfx; a compiled .so carries its weights");
  if (n_prompt == 0 && n_gen == 0) return usage_error("%s", "nothing to measure: -p 0 and -n 0");
  tfx_model *model = NULL;
  int rc = load_model(path, opt, weights, quantize, &model);
  if (rc) return rc;
  const tfx_model_desc *d = tfx_model_descriptor(model);
  tfx_session *s = NULL;
  int32_t *ids = NULL;
  float *logits = NULL;
  double *tps = NULL;
  rc = EXIT_COMPILE;
  if (d->input_kind != TFX_INPUT_TOKENS) {
    fprintf(stderr, "tfxc: error: '%s' takes f32 activations, not tokens; bench feeds tokens\n", path);
    goto done;
  }
  if (n_prompt + n_gen > d->max_seq) {
    fprintf(stderr, "tfxc: error: -p %ld and -n %ld need %ld positions; the model has max_seq = %d\n", n_prompt, n_gen,
            n_prompt + n_gen, d->max_seq);
    goto done;
  }
  tfx_session_options so = {.threads = (int32_t)threads};
  int src = tfx_session_create(model, &so, &s);
  if (src != TFX_OK) {
    fprintf(stderr, "tfxc: error: cannot create a session: %s\n", tfx_error_message(src));
    goto done;
  }
  ids = malloc((size_t)(n_prompt + n_gen) * sizeof *ids);
  logits = malloc((size_t)d->output_width * sizeof *logits);
  tps = malloc((size_t)reps * sizeof *tps);
  if (!ids || !logits || !tps) {
    fprintf(stderr, "tfxc: error: out of memory\n");
    goto done;
  }
  uint64_t x = 0x9e3779b97f4a7c15ull; /* fixed pseudo-random ids (xorshift64) */
  for (long i = 0; i < n_prompt + n_gen; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    ids[i] = i == 0 ? 1 : (int32_t)(x % (uint64_t)d->vocab);
  }
  printf("| %-20s | %10s | %7s | %-6s | %20s |\n", "model", "size", "threads", "test", "t/s");
  printf("| %.20s | %.10s | %.7s | %.6s | %.20s |\n", "--------------------", "----------", "-------", "------",
         "--------------------");
  for (int test = 0; test < 2; test++) {
    int np = (int)n_prompt, ng = test ? (int)n_gen : 0;
    if ((test == 0 && n_prompt == 0) || (test == 1 && n_gen == 0)) continue;
    double w;
    int frc = bench_once(s, ids, np, ng, logits, &w); /* untimed warm-up */
    for (long r = 0; frc == TFX_OK && r < reps; r++) frc = bench_once(s, ids, np, ng, logits, &tps[r]);
    if (frc != TFX_OK) {
      const char *detail = tfx_session_last_error(s);
      fprintf(stderr, "tfxc: error: forward failed: %s\n", detail[0] ? detail : tfx_error_message(frc));
      goto done;
    }
    double mean = 0, var = 0;
    for (long r = 0; r < reps; r++) mean += tps[r] / reps;
    for (long r = 0; r < reps; r++) var += (tps[r] - mean) * (tps[r] - mean) / (reps > 1 ? reps - 1 : 1);
    char size[32], name[32], val[48];
    snprintf(size, sizeof size, "%.2f MiB", d->weights_bytes / 1048576.0);
    snprintf(name, sizeof name, "%s%ld", test ? "tg" : "pp", test ? n_gen : n_prompt);
    snprintf(val, sizeof val, "%.2f ± %.2f", mean, sqrt(var));
    printf("| %-20.20s | %10s | %7d | %-6s | %21s |\n", d->name, size, (int)tfx_session_threads(s), name, val);
    fflush(stdout);
  }
  rc = 0;
done:
  free(ids);
  free(logits);
  free(tps);
  tfx_session_free(s);
  tfx_model_close(model);
  return rc;
}

int main(int argc, char **argv) { return tfx_cli_main(argc, argv); }
