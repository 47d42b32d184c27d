/* frontend/parser.y — the .tfx grammar (bison, pure, with locations). Builds
 * the AST of ast.h; syntax errors are reported as `file:line:col: error:
 * unexpected X, expected Y` and the parser resynchronizes at the next end of
 * line (or closing brace, or a block's opening brace) to report more. */
%define api.pure full
%define api.prefix {tfx_fe_yy}
%define parse.error custom
%define parse.lac full
%locations
%lex-param {void *scanner}
%parse-param {void *scanner} {tfx_fe_parse_state *P}

%code requires {
#include "ast.h"
#include "parse.h"
}

%union {
  const char *str;
  int64_t ival;
  double fval;
  tfx_fe_expr *expr;
  tfx_fe_arg *arg;
  tfx_fe_type *type;
  tfx_fe_param *param;
  tfx_fe_stmt *stmt;
  tfx_fe_const *cdef;
  tfx_fe_item *item;
  tfx_fe_rename *ren;
  tfx_fe_viewop *vop;
  tfx_fe_slice *slc;
}

%code {
#include <stdio.h>
#include <string.h>

int tfx_fe_yylex(TFX_FE_YYSTYPE *lval, TFX_FE_YYLTYPE *lloc, void *scanner);
static void tfx_fe_yyerror(TFX_FE_YYLTYPE *loc, void *scanner, tfx_fe_parse_state *P, const char *msg);

#define L(yyl) ((tfx_fe_loc){(yyl).first_line, (yyl).first_column})
#define APPEND(list, x) tfx_fe_list_append((list), (x))
#define HEAD(list) tfx_fe_list_head(list)

/* Rejects expression trees nested deeper than TFX_FE_MAX_EXPR_DEPTH. */
static tfx_fe_expr *checked(tfx_fe_parse_state *P, tfx_fe_expr *e) {
  if (e && e->depth > TFX_FE_MAX_EXPR_DEPTH && e->depth == TFX_FE_MAX_EXPR_DEPTH + 1)
    tfx_fe_error(P->diag, e->loc.line, e->loc.col, "expression nested too deeply (more than %d levels)",
                 TFX_FE_MAX_EXPR_DEPTH);
  return e;
}

/* x.T, x.view(...) on a value: a clear error (docs/language.md, "Expressions
 * on tensors"). */
static void value_member(tfx_fe_parse_state *P, const char *name, TFX_FE_YYLTYPE loc, int call) {
  if (!strcmp(name, "T") && !call)
    tfx_fe_error(P->diag, loc.first_line, loc.first_column,
                 "transposing a value (.T) is not supported: values stream through the model by rows (decode "
                 "steps, chunked calls and KV caches hold a few rows at a time), so rows cannot become columns; "
                 "transpose a weight in its binding rule instead (\"file_name\".T = \"param\")");
  else if ((!strcmp(name, "view") || !strcmp(name, "reshape")) && call)
    tfx_fe_error(P->diag, loc.first_line, loc.first_column,
                 "reshaping a value (.%s) is not supported: values stream through the model by rows, so data "
                 "cannot move across rows; a reshape that only regroups the last dimension (f32[T, H * d] as H "
                 "heads of d) is not needed: the ops take heads = H on the flat rows",
                 name);
  else
    tfx_fe_error(P->diag, loc.first_line, loc.first_column,
                 "unknown '.%s%s' of a value (a value has no members; its columns are x[:, a:b])", name,
                 call ? "(...)" : "");
}

static tfx_fe_expr *leaf(tfx_fe_parse_state *P, tfx_fe_expr_kind kind, TFX_FE_YYLTYPE loc) {
  return tfx_fe_expr_new(P->arena, kind, L(loc));
}
}

%token <str> IDENT "identifier"
%token <str> STRING "string"
%token <ival> INT "integer"
%token <fval> FLOAT "number"
%token KW_MODEL "'model'" KW_CONST "'const'" KW_PARAM "'param'" KW_BLOCK "'block'"
%token KW_FORWARD "'forward'" KW_RETURN "'return'" KW_REPEAT "'repeat'"
%token KW_WEIGHTS "'weights'" KW_FORMAT "'format'" KW_SCHEDULE "'schedule'" KW_RENAME "'rename'"
%token KW_QUANTIZE "'quantize'"
%token ARROW "'->'"
%token NL "end of line"

%type <item> items item
%type <cdef> const_defs const_def
%type <param> param_decl inputs inputs_opt input
%type <type> type
%type <stmt> stmts stmt body tok_entries tok_list tok_entry
%type <expr> dims expr primary
%type <arg> args args_opt arg
%type <ren> renames rename_list rename rename_src quant_rules quant_list quant_rule
%type <slc> slices slice

%left '+' '-'
%left '*' '/'
%precedence UMINUS

%%

program
  : items                                 { P->program->items = HEAD($1); }
  ;

/* items: one top-level statement per line */
items
  : %empty                                { $$ = NULL; }
  | items item NL                         { $$ = APPEND($1, $2); }
  | items error NL                        { $$ = $1; yyerrok; }
  ;

item
  : KW_MODEL IDENT                        { $$ = tfx_fe_item_new(P->arena, TFX_FE_ITEM_MODEL, L(@1));
                                            if ($$) { $$->name = $2; $$->name_loc = L(@2); } }
  | KW_CONST const_defs                   { $$ = tfx_fe_item_new(P->arena, TFX_FE_ITEM_CONST, L(@1));
                                            if ($$) $$->consts = HEAD($2); }
  | KW_WEIGHTS STRING                     { $$ = tfx_fe_item_new(P->arena, TFX_FE_ITEM_WEIGHTS, L(@1));
                                            if ($$) { $$->name = $2; $$->name_loc = L(@2); } }
  | KW_WEIGHTS STRING KW_FORMAT IDENT     { $$ = tfx_fe_item_new(P->arena, TFX_FE_ITEM_WEIGHTS, L(@1));
                                            if ($$) { $$->name = $2; $$->name_loc = L(@2);
                                                      $$->format = $4; $$->format_loc = L(@4); } }
  | KW_WEIGHTS STRING KW_RENAME renames   { $$ = tfx_fe_item_new(P->arena, TFX_FE_ITEM_WEIGHTS, L(@1));
                                            if ($$) { $$->name = $2; $$->name_loc = L(@2); $$->renames = $4; } }
  | KW_WEIGHTS STRING KW_FORMAT IDENT KW_RENAME renames
                                          { $$ = tfx_fe_item_new(P->arena, TFX_FE_ITEM_WEIGHTS, L(@1));
                                            if ($$) { $$->name = $2; $$->name_loc = L(@2);
                                                      $$->format = $4; $$->format_loc = L(@4); $$->renames = $6; } }
  | param_decl                            { $$ = tfx_fe_item_new(P->arena, TFX_FE_ITEM_PARAM, L(@1));
                                            if ($$) $$->param = $1; }
  | KW_BLOCK IDENT '(' inputs_opt ')' ARROW type body
                                          { $$ = tfx_fe_item_new(P->arena, TFX_FE_ITEM_BLOCK, L(@1));
                                            if ($$) { $$->name = $2; $$->name_loc = L(@2); $$->inputs = $4;
                                                      $$->ret = $7; $$->body = $8; $$->end_loc = L(@8); } }
  | KW_BLOCK error body                   { $$ = NULL; }
  | KW_FORWARD '(' inputs_opt ')' ARROW type body
                                          { $$ = tfx_fe_item_new(P->arena, TFX_FE_ITEM_FORWARD, L(@1));
                                            if ($$) { $$->name = "forward"; $$->name_loc = L(@1); $$->inputs = $3;
                                                      $$->ret = $6; $$->body = $7; $$->end_loc = L(@7); } }
  | KW_FORWARD error body                 { $$ = NULL; }
  | KW_SCHEDULE body                      { $$ = tfx_fe_item_new(P->arena, TFX_FE_ITEM_SCHEDULE, L(@1));
                                            if ($$) { $$->body = $2; $$->end_loc = L(@2); } }
  | KW_QUANTIZE quant_rules               { $$ = tfx_fe_item_new(P->arena, TFX_FE_ITEM_QUANTIZE, L(@1));
                                            if ($$) $$->renames = $2; }
  | IDENT STRING                          { /* tokenizer "tokenizer.json": not a keyword either */
                                            $$ = NULL;
                                            if (strcmp($1, "tokenizer") != 0)
                                              tfx_fe_error(P->diag, @1.first_line, @1.first_column,
                                                           "unknown statement '%s' (expected tokenizer \"FILE\")", $1);
                                            else if (($$ = tfx_fe_item_new(P->arena, TFX_FE_ITEM_TOKENIZER, L(@1))))
                                              { $$->name = $2; $$->name_loc = L(@2); } }
  | IDENT tok_entries                     { /* tokens { bos = 1, eos = 2 }: `tokens` is not a keyword
                                               (it names forward inputs) */
                                            $$ = NULL;
                                            if (strcmp($1, "tokens") != 0)
                                              tfx_fe_error(P->diag, @1.first_line, @1.first_column,
                                                           "unknown section '%s' (expected tokens { ... })", $1);
                                            else if (($$ = tfx_fe_item_new(P->arena, TFX_FE_ITEM_TOKENS, L(@1))))
                                              { $$->body = $2; $$->end_loc = L(@2); } }
  ;

/* tokens { bos = 1, eos = 2, pad = 0 }: `key = value` entries separated by
   commas or line ends (kept as ASSIGN statements) */
tok_entries
  : '{' '}'                               { $$ = NULL; @$ = @2; }
  | '{' tok_list '}'                      { $$ = HEAD($2); @$ = @3; }
  | '{' tok_list rename_sep '}'           { $$ = HEAD($2); @$ = @4; }
  ;

tok_list
  : tok_entry                             { $$ = APPEND(NULL, $1); }
  | tok_list rename_sep tok_entry         { $$ = APPEND($1, $3); }
  ;

tok_entry
  : IDENT '=' expr                        { $$ = tfx_fe_stmt_new(P->arena, TFX_FE_STMT_ASSIGN, L(@1), $1, $3); }
  ;

/* quantize { "layers.*.w2" = q6_k, "tok_embeddings" = q8_0 }: one rule per
   line or separated by commas (kept as tfx_fe_rename: from = the pattern,
   to = the format's name) */
quant_rules
  : '{' '}'                               { $$ = NULL; }
  | '{' quant_list '}'                    { $$ = HEAD($2); }
  | '{' quant_list rename_sep '}'         { $$ = HEAD($2); }
  ;

quant_list
  : quant_rule                            { $$ = APPEND(NULL, $1); }
  | quant_list rename_sep quant_rule      { $$ = APPEND($1, $3); }
  ;

quant_rule
  : STRING '=' IDENT                      { $$ = tfx_fe_alloc(P->arena, sizeof *$$);
                                            if ($$) { $$->loc = L(@1); $$->from = $1; $$->to = $3;
                                                      $$->to_loc = L(@3); } }
  /* a choice with arguments, e.g. w8a8(...): kept as its text */
  | STRING '=' IDENT '(' args_opt ')'     { $$ = tfx_fe_alloc(P->arena, sizeof *$$);
                                            if ($$) { $$->loc = L(@1); $$->from = $1;
                                                      $$->to = tfx_fe_call_text(P->arena, $3, $5);
                                                      $$->to_loc = L(@3); } }
  ;

/* renames: `{ "model.layers.{i}.x" = "layers.{i}.x", … }`, one rule per line
   or separated by commas */
renames
  : '{' '}'                               { $$ = NULL; }
  | '{' rename_list '}'                   { $$ = HEAD($2); }
  | '{' rename_list rename_sep '}'        { $$ = HEAD($2); }
  ;

rename_list
  : rename                                { $$ = APPEND(NULL, $1); }
  | rename_list rename_sep rename         { $$ = APPEND($1, $3); }
  ;

rename_sep
  : ','
  | NL
  ;

rename
  : rename_src '=' STRING                 { $$ = $1; if ($$) { $$->to = $3; $$->to_loc = L(@3);
                                                               $$->view = HEAD($$->view); } }
  | rename_src '=' STRING '[' IDENT ']'   { $$ = $1; if ($$) { $$->to = $3; $$->to_loc = L(@3);
                                                               $$->view = HEAD($$->view);
                                                               $$->stack = $5; $$->stack_loc = L(@5); } }
  ;

/* the file side of a rule: a name, then the view operations in order
   (`.T`, `.view(d0, d1, ...)`, `[a:b, i, :]`); the list is kept by its tail */
rename_src
  : STRING                                { $$ = tfx_fe_alloc(P->arena, sizeof *$$);
                                            if ($$) { $$->loc = L(@1); $$->from = $1; } }
  | rename_src '.' IDENT                  { $$ = $1; tfx_fe_viewop *o = tfx_fe_alloc(P->arena, sizeof *o);
                                            if (o) { o->loc = L(@3); o->kind = 'T'; }
                                            if (strcmp($3, "T") != 0)
                                              tfx_fe_error(P->diag, @3.first_line, @3.first_column,
                                                           "unknown view '.%s' of a file tensor (expected .T, "
                                                           ".view(...) or [slices])", $3);
                                            if ($$) $$->view = APPEND($$->view, o); }
  | rename_src '.' IDENT '(' dims ')'     { $$ = $1; tfx_fe_viewop *o = tfx_fe_alloc(P->arena, sizeof *o);
                                            if (o) { o->loc = L(@3); o->kind = 'v'; o->dims = HEAD($5); }
                                            if (strcmp($3, "view") != 0)
                                              tfx_fe_error(P->diag, @3.first_line, @3.first_column,
                                                           "unknown view '.%s(...)' of a file tensor (expected "
                                                           ".view(...))", $3);
                                            if ($$) $$->view = APPEND($$->view, o); }
  | rename_src '[' slices ']'             { $$ = $1; tfx_fe_viewop *o = tfx_fe_alloc(P->arena, sizeof *o);
                                            if (o) { o->loc = L(@2); o->kind = '['; o->slices = HEAD($3); }
                                            if ($$) $$->view = APPEND($$->view, o); }
  ;

slices
  : slice                                 { $$ = APPEND(NULL, $1); }
  | slices ',' slice                      { $$ = APPEND($1, $3); }
  ;

slice
  : expr                                  { $$ = tfx_fe_alloc(P->arena, sizeof *$$);
                                            if ($$) { $$->loc = L(@1); $$->lo = $1; } }
  | ':'                                   { $$ = tfx_fe_alloc(P->arena, sizeof *$$);
                                            if ($$) { $$->loc = L(@1); $$->range = 1; } }
  | expr ':'                              { $$ = tfx_fe_alloc(P->arena, sizeof *$$);
                                            if ($$) { $$->loc = L(@1); $$->lo = $1; $$->range = 1; } }
  | ':' expr                              { $$ = tfx_fe_alloc(P->arena, sizeof *$$);
                                            if ($$) { $$->loc = L(@1); $$->hi = $2; $$->range = 1; } }
  | expr ':' expr                         { $$ = tfx_fe_alloc(P->arena, sizeof *$$);
                                            if ($$) { $$->loc = L(@1); $$->lo = $1; $$->hi = $3; $$->range = 1; } }
  ;

/* const_defs: `a = 1, b = a * 2` */
const_defs
  : const_def                             { $$ = APPEND(NULL, $1); }
  | const_defs ',' const_def              { $$ = APPEND($1, $3); }
  ;

const_def
  : IDENT '=' expr                        { $$ = tfx_fe_const_new(P->arena, L(@1), $1, $3); }
  ;

/* param_decl: `param name : f32[dims]` */
param_decl
  : KW_PARAM IDENT ':' type               { $$ = tfx_fe_param_new(P->arena, L(@2), $2, $4); }
  ;

/* type: `f32[T, dim]` */
type
  : IDENT '[' dims ']'                    { $$ = tfx_fe_type_new(P->arena, L(@1), $1, HEAD($3)); }
  ;

dims
  : expr                                  { $$ = APPEND(NULL, $1); }
  | dims ',' expr                         { $$ = APPEND($1, $3); }
  ;

/* inputs: `(x : f32[T, dim], y : f32[T, dim])` */
inputs_opt
  : %empty                                { $$ = NULL; }
  | inputs                                { $$ = HEAD($1); }
  ;

inputs
  : input                                 { $$ = APPEND(NULL, $1); }
  | inputs ',' input                      { $$ = APPEND($1, $3); }
  ;

input
  : IDENT ':' type                        { $$ = tfx_fe_param_new(P->arena, L(@1), $1, $3); }
  ;

/* body: `{ stmt NL ... }`; the last statement needs no NL before '}'.
 * The body's location is its closing brace. */
body
  : '{' stmts '}'                         { $$ = HEAD($2); @$ = @3; }
  | '{' stmts stmt '}'                    { $$ = HEAD(APPEND($2, $3)); @$ = @4; }
  | '{' stmts error '}'                   { $$ = HEAD($2); @$ = @4; yyerrok; }
  ;

stmts
  : %empty                                { $$ = NULL; }
  | stmts stmt NL                         { $$ = APPEND($1, $2); }
  | stmts error NL                        { $$ = $1; yyerrok; }
  ;

stmt
  : param_decl                            { $$ = tfx_fe_stmt_new(P->arena, TFX_FE_STMT_PARAM, L(@1), NULL, NULL);
                                            if ($$) { $$->param = $1; if ($1) $$->name = $1->name; } }
  | IDENT '=' expr                        { $$ = tfx_fe_stmt_new(P->arena, TFX_FE_STMT_ASSIGN, L(@1), $1, $3); }
  | KW_QUANTIZE '=' expr                  { $$ = tfx_fe_stmt_new(P->arena, TFX_FE_STMT_ASSIGN, L(@1), "quantize", $3); }
  | KW_RETURN expr                        { $$ = tfx_fe_stmt_new(P->arena, TFX_FE_STMT_RETURN, L(@1), NULL, $2); }
  ;

/* expr: arithmetic on constants, elementwise on tensors; the location of a
 * binary expression is its operator */
expr
  : expr '+' expr                         { $$ = checked(P, tfx_fe_expr_binary(P->arena, '+', L(@2), $1, $3)); }
  | expr '-' expr                         { $$ = checked(P, tfx_fe_expr_binary(P->arena, '-', L(@2), $1, $3)); }
  | expr '*' expr                         { $$ = checked(P, tfx_fe_expr_binary(P->arena, '*', L(@2), $1, $3)); }
  | expr '/' expr                         { $$ = checked(P, tfx_fe_expr_binary(P->arena, '/', L(@2), $1, $3)); }
  | '-' expr %prec UMINUS                 { $$ = leaf(P, TFX_FE_EXPR_NEG, @1);
                                            if ($$) { $$->lhs = $2; $$->depth = ($2 ? $2->depth : 0) + 1; }
                                            $$ = checked(P, $$); }
  | primary                               { $$ = $1; }
  ;

primary
  : INT                                   { $$ = leaf(P, TFX_FE_EXPR_INT, @1); if ($$) $$->ival = $1; }
  | FLOAT                                 { $$ = leaf(P, TFX_FE_EXPR_FLOAT, @1); if ($$) $$->fval = $1; }
  | STRING                                { $$ = leaf(P, TFX_FE_EXPR_STRING, @1); if ($$) $$->str = $1; }
  | IDENT                                 { $$ = leaf(P, TFX_FE_EXPR_NAME, @1); if ($$) $$->str = $1; }
  | IDENT '(' args_opt ')'                { $$ = checked(P, tfx_fe_expr_call(P->arena, $1, L(@1), $3)); }
  | '(' expr ')'                          { $$ = $2; }
  /* x[:, a:b]: columns of a value (the location is the '['; sema and
     lowering check the axes and the bounds) */
  | primary '[' slices ']'                { $$ = leaf(P, TFX_FE_EXPR_INDEX, @2);
                                            if ($$) { $$->lhs = $1; $$->slices = HEAD($3);
                                                      int d = $1 ? $1->depth : 0;
                                                      for (tfx_fe_slice *c = $$->slices; c; c = c->next) {
                                                        if (c->lo && c->lo->depth > d) d = c->lo->depth;
                                                        if (c->hi && c->hi->depth > d) d = c->hi->depth;
                                                      }
                                                      $$->depth = d + 1; }
                                            $$ = checked(P, $$); }
  /* x.T, x.view(...): not defined on values (values stream by rows) */
  | primary '.' IDENT                     { $$ = $1; value_member(P, $3, @3, 0); }
  | primary '.' IDENT '(' args_opt ')'    { $$ = $1; value_member(P, $3, @3, 1); }
  /* repeat(n, prefix = "layers") block(args) */
  | KW_REPEAT '(' args_opt ')' IDENT '(' args_opt ')'
                                          { tfx_fe_expr *call = tfx_fe_expr_call(P->arena, $5, L(@5), $7);
                                            $$ = leaf(P, TFX_FE_EXPR_REPEAT, @1);
                                            if ($$) { $$->lhs = call; $$->rargs = $3;
                                                      int d = tfx_fe_args_depth($3);
                                                      if (call && call->depth > d) d = call->depth;
                                                      $$->depth = d + 1; }
                                            $$ = checked(P, $$); }
  ;

/* args: positional arguments then `key = value` ones; a trailing comma is fine */
args_opt
  : %empty                                { $$ = NULL; }
  | args                                  { $$ = HEAD($1); }
  | args ','                              { $$ = HEAD($1); }
  ;

args
  : arg                                   { $$ = APPEND(NULL, $1); }
  | args ',' arg                          { $$ = APPEND($1, $3); }
  ;

arg
  : expr                                  { $$ = tfx_fe_arg_new(P->arena, $1 ? $1->loc : L(@1), NULL, $1); }
  | IDENT '=' expr                        { $$ = tfx_fe_arg_new(P->arena, L(@1), $1, $3); }
  ;

%%

static void tfx_fe_yyerror(TFX_FE_YYLTYPE *loc, void *scanner, tfx_fe_parse_state *P, const char *msg) {
  (void)scanner;
  if (!strcmp(msg, "memory exhausted")) msg = "program nested too deeply (parser stack exhausted)";
  tfx_fe_error(P->diag, loc->first_line, loc->first_column, "%s", msg);
}

/* How a token is named in "unexpected X". */
static void describe(const tfx_fe_parse_state *P, yysymbol_kind_t tok, char *buf, size_t len) {
  switch (tok) {
  case YYSYMBOL_IDENT: snprintf(buf, len, "identifier '%s'", P->last_text); break;
  case YYSYMBOL_INT:
  case YYSYMBOL_FLOAT: snprintf(buf, len, "number %s", P->last_text); break;
  case YYSYMBOL_STRING: snprintf(buf, len, "string %s", P->last_text); break;
  case YYSYMBOL_NL: snprintf(buf, len, "%s", P->last_text[0] == ';' ? "';'" : "end of line"); break;
  case YYSYMBOL_YYUNDEF: snprintf(buf, len, "'%s'", P->last_text); break; /* ';' inside ( ) */
  default: snprintf(buf, len, "%s", yysymbol_name(tok)); break;
  }
}

static int is_tok(yysymbol_kind_t t, const char *name) { return !strcmp(yysymbol_name(t), name); }

static int expects(const yysymbol_kind_t *v, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (is_tok(v[i], name)) return 1;
  return 0;
}

/* "unexpected X, expected A, B or C". The list is shortened: the tokens
 * that start an expression become "an expression", those that start a
 * statement "a statement", and operators or '(' / '=' / '[' / '.' that would
 * only extend what came before are left out when something else can follow. */
static int yyreport_syntax_error(const yypcontext_t *ctx, void *scanner, tfx_fe_parse_state *P) {
  (void)scanner;
  const TFX_FE_YYLTYPE *loc = yypcontext_location(ctx);
  P->depth = 0; /* let newlines end statements again so recovery can find one */
  if (loc->first_line == P->lex_error_line) return 0; /* the lexer's error on this line says it */
  char what[96], msg[512];
  yysymbol_kind_t exp[32];
  int n = yypcontext_expected_tokens(ctx, exp, 32);
  describe(P, yypcontext_token(ctx), what, sizeof what);
  int stmt = expects(exp, n, "'return'"), expr = expects(exp, n, "integer");
  int closer = expects(exp, n, "','") || expects(exp, n, "')'") || expects(exp, n, "']'") ||
               expects(exp, n, "end of line") || expects(exp, n, "'}'");
  const char *names[34];
  int k = 0;
  for (int i = 0; i < n; i++) {
    yysymbol_kind_t t = exp[i];
    int starts_expr = t == YYSYMBOL_IDENT || t == YYSYMBOL_INT || t == YYSYMBOL_FLOAT || t == YYSYMBOL_STRING ||
                      t == YYSYMBOL_KW_REPEAT || is_tok(t, "'('") || is_tok(t, "'-'");
    int operator = is_tok(t, "'+'") || is_tok(t, "'-'") || is_tok(t, "'*'") || is_tok(t, "'/'");
    if (expr && starts_expr) continue;
    if (t == YYSYMBOL_YYEOF && n > 1) continue;
    if (stmt && (t == YYSYMBOL_IDENT || t == YYSYMBOL_KW_PARAM || t == YYSYMBOL_KW_RETURN || t == YYSYMBOL_KW_QUANTIZE))
      continue;
    if (closer && (operator || is_tok(t, "'('") || is_tok(t, "'='") || is_tok(t, "'['") || is_tok(t, "'.'")))
      continue;
    names[k++] = yysymbol_name(t);
  }
  if (stmt) names[k++] = "a statement";
  if (expr) names[k++] = "an expression";
  size_t used = (size_t)snprintf(msg, sizeof msg, "unexpected %s", what);
  for (int i = 0; i < k && used < sizeof msg; i++)
    used += (size_t)snprintf(msg + used, sizeof msg - used, "%s%s", i == 0 ? ", expected " : i == k - 1 ? " or " : ", ",
                             names[i]);
  tfx_fe_error(P->diag, loc->first_line, loc->first_column, "%s", msg);
  return 0;
}
