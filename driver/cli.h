/* driver/cli.h — tfxc's command table (tfx_cli): the commands (compile, the
 * default, run, bench, verify, help), each with its option table, parsed with
 * getopt_long and documented from the same table (`tfxc CMD --help`,
 * `tfxc help CMD`). The commands' bodies are in driver/main.c. */
#ifndef TFX_DRIVER_CLI_H
#define TFX_DRIVER_CLI_H

#include <stdio.h>

enum { TFX_CLI_EXIT_ERROR = 1, TFX_CLI_EXIT_USAGE = 2 };

/* The options' ids (what tfx_cli_next returns); short options are their
 * letter, the others start above the characters. */
enum {
  TFX_OPT_OUTPUT = 'o',
  TFX_OPT_OBJECT = 'c',
  TFX_OPT_OPT = 'O',
  TFX_OPT_STEPS = 'n',
  TFX_OPT_PROMPT = 'p',
  TFX_OPT_VERBOSE = 'v',
  TFX_OPT_REPS = 'r',
  TFX_OPT_HELP = 'h',
  TFX_OPT_WEIGHTS = 256,
  TFX_OPT_EMIT,
  TFX_OPT_EMIT_HEADER,
  TFX_OPT_EMIT_GGUF,
  TFX_OPT_MCPU,
  TFX_OPT_STATS,
  TFX_OPT_RUNTIME,
  TFX_OPT_PASSES,
  TFX_OPT_PRINT_AFTER,
  TFX_OPT_PRINT_AFTER_ALL,
  TFX_OPT_TIME_PASSES,
  TFX_OPT_VERIFY_PASSES,
  TFX_OPT_QUANTIZE,
  TFX_OPT_CALIBRATION,
  TFX_OPT_ALLOW_NONFINITE,
  TFX_OPT_SYMBOL_PREFIX,
  TFX_OPT_PROMPT_IDS,
  TFX_OPT_TOKENIZER,
  TFX_OPT_TEMPERATURE,
  TFX_OPT_TOP_P,
  TFX_OPT_SEED,
  TFX_OPT_THREADS,
  TFX_OPT_PRINT_IDS,
  TFX_OPT_NO_BOS,
  TFX_OPT_DUMP_LOGITS,
  TFX_OPT_DUMP_PROMPT,
  TFX_OPT_EVAL_IDS,
  TFX_OPT_INPUT,
  TFX_OPT_SOURCE,
  TFX_OPT_TOKENS,
  TFX_OPT_JSON,
  TFX_OPT_TARGET,
  TFX_OPT_CC,
  TFX_OPT_SYSROOT,
  /* what tfx_cli_next returns besides an option */
  TFX_CLI_END = -1,        /* no more arguments */
  TFX_CLI_POSITIONAL = -2, /* an operand: tfx_cli.arg */
  TFX_CLI_FAILED = -3,     /* a usage error, printed: exit TFX_CLI_EXIT_USAGE */
};

/* One option of a command. */
typedef struct tfx_cli_option {
  int id;              /* TFX_OPT_*; a letter is also the short option */
  const char *name;    /* the long name without "--", or NULL */
  int arg;             /* 0: none, 1: required, 2: optional (attached only: -O2) */
  const char *metavar; /* the value's name in the help ("FILE") */
  const char *needs;   /* what a missing value is ("a file name"): "--opt needs a file name" */
  const char *help;    /* lines separated by '\n' */
} tfx_cli_option;

typedef struct tfx_cli_command {
  const char *name;                   /* "run"; the default command is "compile" */
  const char *synopsis;               /* after "usage: tfxc " (lines separated by '\n') */
  const char *summary;                /* one line for `tfxc --help` */
  const tfx_cli_option *options;      /* ended by {0}; NULL: the command parses its own arguments */
  const char *notes;                  /* printed after the options, or NULL */
  int (*main)(int argc, char **argv); /* argv[0] is the command's name (or "tfxc" for compile) */
  /* without an option table: it prints its own -h/--help (else the
   * dispatcher prints the synopsis, summary and notes) */
  int own_help;
} tfx_cli_command;

/* The command table, ended by a row without name. */
extern const tfx_cli_command tfx_cli_commands[];
const tfx_cli_command *tfx_cli_find(const char *name);

/* A parse of one command's arguments (getopt_long, in order: operands are
 * returned where they stand; `--` ends the options). */
typedef struct tfx_cli {
  const tfx_cli_command *cmd;
  int argc;
  char **argv;
  const char *arg; /* the value of the option (NULL when absent), or the operand */
  char name[64];   /* the option as written: "-n", "--steps" */
  void *impl;
} tfx_cli;

/* Starts parsing argv[1..argc) of cmd; 0, or -1 (out of memory, printed). */
int tfx_cli_begin(tfx_cli *p, const tfx_cli_command *cmd, int argc, char **argv);
/* The next option's id, TFX_CLI_POSITIONAL, TFX_CLI_END or TFX_CLI_FAILED
 * (unknown option, abbreviated option, missing value: printed with a hint).
 * -h/--help is TFX_OPT_HELP for every command. */
int tfx_cli_next(tfx_cli *p);
void tfx_cli_end(tfx_cli *p);

/* "tfxc: error: <fmt...>" and the command's usage on stderr; returns
 * TFX_CLI_EXIT_USAGE. */
int tfx_cli_usage_error(const tfx_cli_command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The command's usage lines ("usage: tfxc ...") and where its help is. */
void tfx_cli_print_usage(const tfx_cli_command *cmd, FILE *f);
/* The command's full help (usage, options, notes). */
void tfx_cli_print_help(const tfx_cli_command *cmd, FILE *f);
/* `tfxc --help`: the commands, then the default command's help. */
void tfx_cli_print_overview(FILE *f);

/* tfxc's main: the command in argv[1] (or compile), its -h/--help, `help CMD`,
 * --version. */
int tfx_cli_main(int argc, char **argv);

/* The commands (driver/main.c). */
int tfx_drv_compile_main(int argc, char **argv);
int tfx_drv_run_main(int argc, char **argv);
int tfx_drv_bench_main(int argc, char **argv);
int tfx_drv_verify_main(int argc, char **argv);
int tfx_drv_seal_main(int argc, char **argv);

#endif
