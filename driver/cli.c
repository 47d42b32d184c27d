/* driver/cli.c — tfxc's command table: each command's options (one table per
 * command, the source of both the getopt_long parse and the generated help),
 * the parser over getopt_long (operands in place, no abbreviations, clear
 * errors with a hint), the usage and help printers, and tfxc's main
 * dispatch (`tfxc [CMD] ...`, `tfxc help CMD`, `tfxc CMD --help`). */
#include "cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "import_cmd.h"
#include "outfile.h"

/* ---- the options ---- */

#define OPT_HELP                                                                                                       \
  { TFX_OPT_HELP, "help", 0, NULL, NULL, "print this help and exit" }

#define OPT_O(what)                                                                                                    \
  {                                                                                                                    \
    TFX_OPT_OPT, NULL, 2, "-O0 .. -O3", NULL,                                                                          \
        "optimization level (default -O2): the graph pipeline (-O2 and -O3 run\n"                                      \
        "the same one) and LLVM's level" what                                                                          \
  }
#define OPT_WEIGHTS(what)                                                                                              \
  {                                                                                                                    \
    TFX_OPT_WEIGHTS, "weights", 1, "W", "a value",                                                                     \
        "a weights file, or random / random:SEED (default: the model's `weights`\nstatement)" what                     \
  }
#define OPT_QUANTIZE(what)                                                                                             \
  {                                                                                                                    \
    TFX_OPT_QUANTIZE, "quantize", 1, "FMT", "a format",                                                                \
        "the weights' format: f16, bf16, q8_0, q4_0, q5_0, q3_k, q4_k, q6_k, tq2_0,\n"                                 \
        "ternary (BitNet b1.58: tq2_t, the tensor's mean |w|), sparse24(f32),\n"                                       \
        "sparse24(q8_0) (2:4), q4_k_m\n"                                                                               \
        "(llama.cpp's Q4_K_M mix), w8a8 (int8 weights per channel, int8\n"                                             \
        "activations per token), w8a8(smooth = ALPHA) (SmoothQuant, needs\n"                                           \
        "--calibration), llm_int8(threshold = T) (LLM.int8(): outlier input\n"                                         \
        "channels f32, needs --calibration), gptq(bits = 4, group = 32|64|128,\n"                                      \
        "damp = D, act_order = B) (GPTQ into q4_0; bits = 3: into q3_k; needs\n"                                       \
        "--calibration) or none\n"                                                                                     \
        "(as bound); replaces the schedule's\n"                                                                        \
        "quantize, the source's quantize { } rules still apply" what                                                   \
  }
#define OPT_CALIBRATION                                                                                                \
  {                                                                                                                    \
    TFX_OPT_CALIBRATION, "calibration", 1, "FILE", "a file",                                                           \
        "calibration data from `tfxc calibrate` (for w8a8(smooth), llm_int8, gptq)"                                    \
  }
#define OPT_NONFINITE                                                                                                  \
  {                                                                                                                    \
    TFX_OPT_ALLOW_NONFINITE, "allow-nonfinite", 0, NULL, NULL,                                                         \
        "accept NaN and inf weights (default: an error naming the tensor and\nthe first element)"                      \
  }
#define OPT_VERBOSE                                                                                                    \
  {                                                                                                                    \
    TFX_OPT_VERBOSE, "verbose", 0, NULL, NULL,                                                                         \
        "print each phase (parse, passes, codegen, link) with its time to stderr"                                      \
  }
#define OPT_THREADS                                                                                                    \
  { TFX_OPT_THREADS, "threads", 1, "N", "a value", "worker threads, 1 to 64 (default: TFX_NUM_THREADS or all cores)" }

static const tfx_cli_option compile_options[] = {
    {TFX_OPT_OUTPUT, NULL, 1, "OUT", "a file name", "output file (default: FILE's base name + .so, or .o with -c)"},
    {TFX_OPT_OBJECT, NULL, 0, NULL, NULL,
     "write a relocatable object (code, descriptor and weights; link it\nwith the runtime, libtfxrt.a)"},
    OPT_O(""),
    OPT_WEIGHTS(""),
    {TFX_OPT_RUNTIME, "runtime", 1, "PATH", "a file name",
     "the runtime archive a .so is linked with (default: the installed\n"
     "../lib/libtfxrt.a beside tfxc's bin/, or the build tree's;\nTFX_RUNTIME_ARCHIVE is the same); "
     "`minimal`: libtfxrt_min.a\nbeside it (the static API only: no libffi, threads or malloc)"},
    {TFX_OPT_EMIT, "emit", 1, "KIND", "a value",
     "ir: print the planned graph IR to stdout; llvm, asm: the optimized\nLLVM IR or assembly (no output file)"},
    {TFX_OPT_EMIT_HEADER, "emit-header", 1, "OUT.h", "a file name",
     "write the model's C header (alone, or next to -o / -c)"},
    {TFX_OPT_EMIT_GGUF, "emit-gguf", 1, "OUT", "a file name",
     "write the model's weights as a GGUF v3 file, each param in its stored\n"
     "format under its own name (alone, or next to -o / -c / --emit-header)"},
    {TFX_OPT_MCPU, "mcpu", 1, "NAME", "a value",
     "target CPU: x86-64, x86-64-v2/v3/v4, native (the host, the default)\n"
     "or an LLVM CPU such as skylake-avx512; A,B puts one code variant per\n"
     "CPU in the file (docs/portability.md)"},
    {TFX_OPT_MCPU, "cpu", 1, "NAME", "a value", "the same as --mcpu"},
    {TFX_OPT_TARGET, "target", 1, "TRIPLE", "a value",
     "compile for another machine: aarch64-linux-gnu (NEON; --mcpu names\n"
     "its CPU, e.g. cortex-a72, default generic) or riscv64-linux-gnu\n"
     "(rv64gcv); the .so links with that machine's runtime archive\n(docs/portability.md)"},
    {TFX_OPT_CC, "cc", 1, "CC", "a program",
     "the C compiler that links the .so (default: cc, or TRIPLE-gcc with\n--target; with -c and --target it also "
     "combines the object)"},
    {TFX_OPT_SYSROOT, "sysroot", 1, "DIR", "a directory", "--sysroot for that link"},
    {TFX_OPT_TOKENIZER, "tokenizer", 1, "PATH", "a file name",
     "embed this tokenizer (llama2.c tokenizer.bin, SentencePiece .model or\n"
     "Hugging Face tokenizer.json) in the model: `tfxc run` and\n"
     "tfx_model_tokenizer use it (-o or -c)"},
    {TFX_OPT_SYMBOL_PREFIX, "symbol-prefix", 1, "P", "a value",
     "name the model's exported symbols P_descriptor and P_weights_blob\n"
     "instead of <name>_...: models of the same name link into one program\n"
     "(a C identifier; -c or -o)"},
    {TFX_OPT_STATS, "stats", 0, NULL, NULL,
     "print the plan's costs to stdout (kernels per call, arena, KV cache and\n"
     "weight bytes, FLOPs and bytes per token, the fused linears, the\n"
     "weights' formats and fallbacks); no output file"},
    OPT_QUANTIZE(""),
    OPT_CALIBRATION,
    OPT_NONFINITE,
    OPT_VERBOSE,
    {TFX_OPT_PASSES, "passes", 1, "P,Q,..", "a list of passes",
     "run these passes instead of the -O pipeline (fold_weights and\n"
     "plan_memory are added at the end when needed; docs/passes.md)"},
    {TFX_OPT_PRINT_AFTER, "print-after", 1, "P,..", "a list of passes",
     "print the graph IR to stderr after each named pass"},
    {TFX_OPT_PRINT_AFTER_ALL, "print-after-all", 0, NULL, NULL, "print the graph IR to stderr after every pass"},
    {TFX_OPT_TIME_PASSES, "time-passes", 0, NULL, NULL, "print each pass's time and node counts to stderr"},
    {TFX_OPT_VERIFY_PASSES, "verify-passes", 0, NULL, NULL, "run the IR verifier after every pass"},
    OPT_HELP,
    {0}};

static const tfx_cli_option run_options[] = {
    {TFX_OPT_STEPS, "steps", 1, "N", "a value", "generate up to N tokens (default 256, at most max_seq)"},
    {TFX_OPT_PROMPT, "prompt", 1, "TEXT", "a text",
     "the prompt as text, encoded by --tokenizer (with its BOS); the prompt\n"
     "and the generated text stream to stdout"},
    {TFX_OPT_PROMPT_IDS, "prompt-ids", 1, "\"I J ..\"", "a value", "token ids fed after BOS"},
    {TFX_OPT_NO_BOS, "no-bos", 0, NULL, NULL, "feed the prompt without BOS first"},
    {TFX_OPT_TOKENIZER, "tokenizer", 1, "PATH", "a file name",
     "llama2.c tokenizer.bin, SentencePiece .model or Hugging Face\n"
     "tokenizer.json (docs/tokenizers.md); with it the output is text\nunless --print-ids"},
    {TFX_OPT_TEMPERATURE, "temperature", 1, "T", "a value", "0 = greedy (default 1.0)"},
    {TFX_OPT_TOP_P, "top-p", 1, "P", "a value", "nucleus sampling threshold in (0, 1] (default 0.9)"},
    {TFX_OPT_SEED, "seed", 1, "S", "a value", "random seed for sampling (default 42)"},
    OPT_THREADS,
    {TFX_OPT_PRINT_IDS, "print-ids", 0, NULL, NULL,
     "print the generated ids, space-separated, on one line, each as it\nis generated"},
    {TFX_OPT_DUMP_LOGITS, "dump-logits", 1, "FILE", "a file name",
     "write each step's float32 logits, [steps, vocab], raw LE"},
    {TFX_OPT_DUMP_PROMPT, "dump-prompt", 0, NULL, NULL,
     "with --dump-logits, first the rows of the prompt's positions but\n"
     "its last (BOS included when fed): [prompt - 1 + steps, vocab], row i\n"
     "the distribution of the id after position i"},
    {TFX_OPT_EVAL_IDS, "eval-ids", 1, "FILE", "a file name",
     "teacher forcing instead of generation: feed BOS and the ids of FILE\n"
     "(text, as --print-ids writes them) in one call, print the sequence's\n"
     "perplexity, and with --dump-logits write the logits of every\n"
     "position, [1 + ids, vocab] (row i predicts the id after position i)"},
    {TFX_OPT_INPUT, "input", 1, "NAME=VALUES", "a value",
     "another input of the model's forward (repeatable): numbers separated\n"
     "by blanks or commas, or @FILE. A per-token input gives one row (for\n"
     "every row) or a row per fed token (BOS included; generated tokens\n"
     "repeat the last); a source (`src : i32[N]`) gives its 1..N ids"},
    {TFX_OPT_SOURCE, "source", 1, "TEXT", "a text",
     "an encoder-decoder's source sentence, encoded by the tokenizer:\n"
     "its BOS (when it has one), the text, then EOS (the model's, else\n"
     "the tokenizer's), as Hugging Face's tokenizers add them"},
    OPT_O(" (a .tfx)"),
    OPT_WEIGHTS(" (a .tfx)"),
    OPT_QUANTIZE(" (a .tfx)"),
    OPT_CALIBRATION,
    OPT_NONFINITE,
    OPT_VERBOSE,
    OPT_HELP,
    {0}};

static const tfx_cli_option bench_options[] = {
    {TFX_OPT_PROMPT, "prompt-tokens", 1, "N", "a value",
     "the prefill test: N tokens in one call (default 128; 0: none)"},
    {TFX_OPT_STEPS, "tokens", 1, "N", "a value",
     "the decode test: N tokens one at a time after the prompt (default 64;\n0: none)"},
    {TFX_OPT_REPS, "repetitions", 1, "N", "a value", "runs of each test, 1 to 1000 (default 5)"},
    OPT_THREADS,
    OPT_O(" (a .tfx)"),
    OPT_WEIGHTS(" (a .tfx)"),
    OPT_QUANTIZE(" (a .tfx)"),
    OPT_VERBOSE,
    OPT_HELP,
    {0}};

static const tfx_cli_option verify_options[] = {OPT_HELP, {0}};
static const tfx_cli_option help_options[] = {OPT_HELP, {0}};

static int help_main(int argc, char **argv);
/* calibrate's main takes argv[0] = "calibrate" (driver/calibrate.c) */
static int calibrate_cmd(int argc, char **argv) { return tfx_drv_calibrate_main(argc - 1, argv + 1); }

const tfx_cli_command tfx_cli_commands[] = {
    {"compile",
     "[compile] FILE.tfx [-o OUT.so] [-c] [-O0..-O3] [--weights PATH|random[:SEED]]\n"
     "       [--emit=ir|llvm|asm] [--emit-header OUT.h] [--emit-gguf OUT.gguf] [--mcpu NAME]\n"
     "       [--target TRIPLE] [--cc CC] [--sysroot DIR]\n"
     "       [--symbol-prefix P] [--stats] [--runtime LIBTFXRT.a] [--quantize FMT] [--calibration FILE]\n"
     "       [--allow-nonfinite] [-v] [--passes=P,Q,..] [--print-after=P,..]\n"
     "       [--print-after-all] [--time-passes] [--verify-passes]",
     "compile a .tfx model to a shared library, an object, a header or a text dump (the default)", compile_options,
     NULL, tfx_drv_compile_main, 0},
    {"run",
     "run (FILE.tfx|FILE.so) [-n N] [-p TEXT --tokenizer PATH] [--prompt-ids \"I J ..\"]\n"
     "       [--temperature T] [--top-p P] [--seed S] [--threads N] [--print-ids] [--no-bos]\n"
     "       [--dump-logits FILE [--dump-prompt]] [--eval-ids FILE] [--input NAME=VALUES] [--source TEXT]\n"
     "       [-O0..-O3] [--weights W] [--quantize FMT] [--calibration FILE]\n"
     "       [--allow-nonfinite] [-v]",
     "generate tokens with a model (a .tfx through the JIT, a compiled .so loaded)", run_options,
     "Generation starts from BOS (the model's tokens { bos }, else the tokenizer's,\n"
     "else id 1) and the prompt, and stops early when EOS is generated (the model's\n"
     "tokens { eos }, else id 1). Speed is reported on stderr.\n",
     tfx_drv_run_main, 0},
    {"bench", "bench (FILE.so|FILE.tfx) [-p N] [-n N] [-r N] [--threads N] [-O0..-O3] [--weights W] [-v]",
     "measure a model's prefill and decode speed (tokens/s), as a table", bench_options,
     "Each test runs once untimed, then -r times in a new session state, on\n"
     "fixed pseudo-random token ids; the table gives the mean tokens/s and the\n"
     "standard deviation over the runs (like llama-bench). The decode test\n"
     "starts after a prompt of -p tokens (untimed).\n",
     tfx_drv_bench_main, 0},
    {"verify", "verify FILE.so", "check a compiled model against the checksums the compiler recorded", verify_options,
     "Checks the descriptor and every weight byte against the checksums the\n"
     "compiler recorded: prints ok, or what differs and exits 1.\n",
     tfx_drv_verify_main, 0},
    {"seal", "seal FILE.so", "seal a model .so linked by other means (or changed by strip/objcopy) for tfx_model_open",
     verify_options,
     "tfx_model_open refuses a model .so without the seal tfxc appends when it\n"
     "links one (a checksum of the file but its weights, against truncated or\n"
     "corrupted copies). This appends it to a model linked from a -c object, or\n"
     "replaces it after a tool rewrote the file. It checks nothing: seal only\n"
     "what you built (docs/embedding.md).\n",
     tfx_drv_seal_main, 0},
    {"import", "import (DIR|FILE.gguf) [-o OUT.tfx] [--max-seq N] [--name NAME]",
     "write a .tfx for a Hugging Face checkpoint or a llama GGUF file, as saved (docs/import.md)", NULL, NULL,
     tfx_drv_import_main, 1},
    {"calibrate", "calibrate FILE.tfx [--weights PATH] --tokens FILE... -o OUT.calib",
     "record each linear's input channel ranges and H = sum x x^T on token sequences, for --quantize "
     "w8a8(smooth), llm_int8 or gptq",
     NULL,
     "Runs the model (bound, unquantized, -O0) in the reference interpreter on each\n"
     "--tokens file (whitespace-separated ids, fed after the model's tokens { bos },\n"
     "else 1) and writes the largest |x| of every input channel of each linear and\n"
     "GPTQ's H = sum x x^T of its inputs (TFXCALIB v2) to OUT.calib, which\n"
     "--calibration reads (docs/quantization.md, \"Calibration\", \"GPTQ\").\n",
     calibrate_cmd, 0},
    {"help", "help [COMMAND]", "print the help of a command", help_options, NULL, help_main, 0},
    {0}};

const tfx_cli_command *tfx_cli_find(const char *name) {
  for (const tfx_cli_command *c = tfx_cli_commands; c->name; c++)
    if (!strcmp(c->name, name)) return c;
  return NULL;
}

static const tfx_cli_command *default_command(void) { return &tfx_cli_commands[0]; }

/* ---- usage and help ---- */

static const char *cmd_word(const tfx_cli_command *c) { return c == default_command() ? "" : c->name; }

void tfx_cli_print_usage(const tfx_cli_command *c, FILE *f) {
  fprintf(f, "usage: tfxc %s\n", c->synopsis);
  if (c == default_command())
    fprintf(f, "(tfxc --help: the commands and the options; tfxc help COMMAND: a command's)\n");
  else
    fprintf(f, "(tfxc %s --help: its options)\n", cmd_word(c));
}

int tfx_cli_usage_error(const tfx_cli_command *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "tfxc: error: ");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  tfx_cli_print_usage(c ? c : default_command(), stderr);
  return TFX_CLI_EXIT_USAGE;
}

/* "-n, --steps N", "--weights W", "-O0..3" */
static void option_label(const tfx_cli_option *o, char *buf, size_t len) {
  int n = 0;
  if (o->arg == 2) { /* attached: its forms */
    snprintf(buf, len, "%s", o->metavar);
    return;
  }
  if (o->id > 0 && o->id < 128) n = snprintf(buf, len, "-%c%s", o->id, o->name ? ", " : "");
  if (o->name) n += snprintf(buf + n, len - (size_t)n, "--%s", o->name);
  if (o->metavar) snprintf(buf + n, len - (size_t)n, "%s%s", o->arg == 2 ? "" : " ", o->metavar);
}

void tfx_cli_print_help(const tfx_cli_command *c, FILE *f) {
  fprintf(f, "tfxc %s — %s\n\n", c->name, c->summary);
  tfx_cli_print_usage(c, f);
  if (c->options) {
    fprintf(f, "\nOptions:\n");
    for (const tfx_cli_option *o = c->options; o->id; o++) {
      char label[96];
      option_label(o, label, sizeof label);
      int w = (int)strlen(label) + 2;
      fprintf(f, "  %s", label);
      for (const char *h = o->help; *h;) {
        const char *e = strchr(h, '\n');
        int l = e ? (int)(e - h) : (int)strlen(h);
        if (w > 22)
          fprintf(f, "\n%24s", "");
        else
          fprintf(f, "%*s", 24 - w, "");
        fprintf(f, "%.*s", l, h);
        w = 99;
        h += l + (e != NULL);
      }
      fprintf(f, "\n");
    }
  }
  if (c->notes) fprintf(f, "\n%s", c->notes);
}

void tfx_cli_print_overview(FILE *f) {
  fprintf(f, "tfxc %s — an ahead-of-time compiler for Transformer models\n\n", TFX_VERSION);
  fprintf(f, "usage: tfxc [COMMAND] ARGS..   (the default command is compile)\n       tfxc --help | --version\n");
  fprintf(f, "\nCommands:\n");
  for (const tfx_cli_command *c = tfx_cli_commands; c->name; c++) fprintf(f, "  %-12s%s\n", c->name, c->summary);
  fprintf(f, "\ntfxc help COMMAND (or tfxc COMMAND --help) prints a command's options; the\ncompile command's:\n\n");
  tfx_cli_print_help(default_command(), f);
}

/* ---- the parser ---- */

typedef struct parser_impl {
  struct option *longopts;
  char *shortopts;
  int rest; /* after getopt_long's end: the next operand */
} parser_impl;

int tfx_cli_begin(tfx_cli *p, const tfx_cli_command *cmd, int argc, char **argv) {
  memset(p, 0, sizeof *p);
  p->cmd = cmd;
  p->argc = argc;
  p->argv = argv;
  size_t n = 0;
  for (const tfx_cli_option *o = cmd->options; o && o->id; o++) n++;
  parser_impl *im = calloc(1, sizeof *im);
  struct option *lo = calloc(n + 1, sizeof *lo);
  char *so = calloc(3 * n + 4, 1);
  if (!im || !lo || !so) {
    free(im);
    free(lo);
    free(so);
    fprintf(stderr, "tfxc: error: out of memory\n");
    return -1;
  }
  /* '-': operands come back in place (code 1); ':': a missing value is ':' */
  size_t k = 0, s = 0;
  so[s++] = '-';
  so[s++] = ':';
  for (const tfx_cli_option *o = cmd->options; o && o->id; o++) {
    if (o->name) lo[k++] = (struct option){o->name, o->arg == 1 ? required_argument : no_argument, NULL, o->id};
    if (o->id < 128) {
      so[s++] = (char)o->id;
      for (int i = 0; i < o->arg; i++) so[s++] = ':';
    }
  }
  im->longopts = lo;
  im->shortopts = so;
  im->rest = -1;
  p->impl = im;
  optind = 0; /* glibc: a full re-initialization */
  opterr = 0;
  return 0;
}

void tfx_cli_end(tfx_cli *p) {
  parser_impl *im = p->impl;
  if (im) {
    free(im->longopts);
    free(im->shortopts);
    free(im);
  }
  p->impl = NULL;
}

static const tfx_cli_option *find_option(const tfx_cli *p, int id, const char *name, size_t len) {
  for (const tfx_cli_option *o = p->cmd->options; o && o->id; o++)
    if (name ? o->name && strlen(o->name) == len && !strncmp(o->name, name, len) : o->id == id) return o;
  return NULL;
}

/* The hint after an unknown option: the long options it begins, else help. */
static void unknown_option(tfx_cli *p, const char *what, const char *typed, size_t len) {
  char hint[512] = "";
  int n = 0, found = 0;
  if (len > 0)
    for (const tfx_cli_option *o = p->cmd->options; o && o->id; o++)
      if (o->name && !strncmp(o->name, typed, len) && n < (int)sizeof hint - 64) {
        n += snprintf(hint + n, sizeof hint - (size_t)n, "%s--%s", found ? ", " : " (did you mean ", o->name);
        found++;
      }
  if (found) snprintf(hint + n, sizeof hint - (size_t)n, "?)");
  tfx_cli_usage_error(p->cmd, "%s '%s'%s", what, p->name, hint);
}

int tfx_cli_next(tfx_cli *p) {
  parser_impl *im = p->impl;
  p->arg = NULL;
  p->name[0] = 0;
  if (im->rest >= 0) { /* after `--`: operands */
    if (im->rest >= p->argc) return TFX_CLI_END;
    p->arg = p->argv[im->rest++];
    return TFX_CLI_POSITIONAL;
  }
  int at = optind > 0 ? optind : 1; /* the element being read */
  const char *elem = at < p->argc ? p->argv[at] : "";
  int longindex = -1;
  int c = getopt_long(p->argc, p->argv, im->shortopts, im->longopts, &longindex);
  if (c == -1) {
    im->rest = optind; /* `--` (or the end): the rest are operands */
    return tfx_cli_next(p);
  }
  if (c == 1) {
    p->arg = optarg;
    return TFX_CLI_POSITIONAL;
  }
  int is_long = elem[0] == '-' && elem[1] == '-';
  size_t typed_len = 0;
  if (is_long) {
    const char *eq = strchr(elem + 2, '=');
    typed_len = eq ? (size_t)(eq - elem - 2) : strlen(elem + 2);
    snprintf(p->name, sizeof p->name, "--%.*s", (int)typed_len, elem + 2);
  } else {
    snprintf(p->name, sizeof p->name, "-%c", c == '?' || c == ':' ? optopt : c);
  }
  if (c == '?') {
    if (!is_long && elem[0] == '-' && elem[1] && elem[2]) /* in a cluster, or -O's kind */
      snprintf(p->name, sizeof p->name, "%s", elem);
    const tfx_cli_option *o = is_long ? find_option(p, 0, elem + 2, typed_len) : NULL;
    if (o && !o->arg) {
      tfx_cli_usage_error(p->cmd, "%s takes no value", p->name);
      return TFX_CLI_FAILED;
    }
    unknown_option(p, "unknown option", is_long ? elem + 2 : "", typed_len);
    return TFX_CLI_FAILED;
  }
  if (c == ':') {
    const tfx_cli_option *o = find_option(p, optopt, NULL, 0);
    tfx_cli_usage_error(p->cmd, "%s needs %s", p->name, o && o->needs ? o->needs : "a value");
    return TFX_CLI_FAILED;
  }
  /* no abbreviations: the name as written is an option's own */
  if (is_long && !find_option(p, 0, elem + 2, typed_len)) {
    unknown_option(p, "unknown option", elem + 2, typed_len);
    return TFX_CLI_FAILED;
  }
  p->arg = optarg;
  return c;
}

/* ---- dispatch ---- */

static int help_main(int argc, char **argv) {
  const tfx_cli_command *c = tfx_cli_find("help");
  tfx_cli p;
  if (tfx_cli_begin(&p, c, argc, argv)) return TFX_CLI_EXIT_ERROR;
  const char *topic = NULL;
  int rc = -1;
  for (int k; rc < 0 && (k = tfx_cli_next(&p)) != TFX_CLI_END;) {
    if (k == TFX_CLI_FAILED)
      rc = TFX_CLI_EXIT_USAGE;
    else if (k == TFX_OPT_HELP)
      topic = "help";
    else if (topic)
      rc = tfx_cli_usage_error(c, "help takes one command ('%s')", p.arg);
    else
      topic = p.arg;
  }
  tfx_cli_end(&p);
  if (rc >= 0) return rc;
  if (!topic) {
    tfx_cli_print_overview(stdout);
    return 0;
  }
  const tfx_cli_command *t = tfx_cli_find(topic);
  if (!t)
    return tfx_cli_usage_error(
        c, "unknown command '%s' (commands: compile, run, bench, verify, import, calibrate, help)", topic);
  if (!t->options && t->own_help) { /* its own help */
    char *args[] = {"tfxc", (char *)t->name, "--help", NULL};
    return t->main(3, args);
  }
  tfx_cli_print_help(t, stdout);
  return 0;
}

int tfx_cli_main(int argc, char **argv) {
  if (argc < 2) {
    tfx_cli_print_usage(default_command(), stderr);
    return TFX_CLI_EXIT_USAGE;
  }
  tfx_drv_outfile_init();
  int rc;
  const tfx_cli_command *c = tfx_cli_find(argv[1]);
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    tfx_cli_print_overview(stdout);
    rc = 0;
  } else if (!strcmp(argv[1], "--version")) {
    rc = printf("tfxc %s\n", TFX_VERSION) < 0;
  } else if (c && !c->options && !c->own_help && argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
    tfx_cli_print_help(c, stdout); /* a command parsing its own arguments, without its own help */
    rc = 0;
  } else if (c && !c->options) { /* it parses its own arguments (argv[1] is its name) */
    rc = c->main(argc, argv);
  } else if (c && c != default_command()) {
    rc = c->main(argc - 1, argv + 1);
  } else if (c) { /* `tfxc compile FILE ...` */
    rc = c->main(argc - 1, argv + 1);
  } else {
    rc = default_command()->main(argc, argv);
  }
  if (tfx_drv_finish_stdout() && rc == 0) rc = TFX_CLI_EXIT_ERROR;
  return rc;
}
