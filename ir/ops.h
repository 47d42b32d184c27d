/* ir/ops.h — every op of the graph IR defined ONCE (an X-macro, in the style of
 * QBE's ops.h and Lua's lopcodes): its enum name, its text name, its arity,
 * the roles of its operands, its traits, the node attributes it reads, and the
 * names of its per-op functions (interpreter, backend emitter, type
 * inference, verifier check, printer, cost). Also every node attribute
 * (TFX_ATTRS): its name, the tfx_node field, how it is compared and printed.
 *
 * Consumers define the macro they need, include this file and get one
 * expansion per op (no include guard on purpose):
 *   ir/ir.h        the tfx_op enum and the tfx_attr_id enum
 *   ir/ops.c       names, arity, roles, traits, attribute masks, the column
 *                  tokens (tfx_op_info), the attribute descriptors (tfx_attr_info)
 *   ir/op_fns.h    declares the ir/ columns' functions (infer, check, print);
 *                  ir/graph.c, ir/verify.c and ir/print.c dispatch through them
 *   ir/interp.c    the interpreter's dispatch table: tfx_interp_op_<interp>
 *                  (declared in ir/interp_ops.h)
 *   backend/module.c  the backend's dispatch table: tfx_cg_emit_<emit>
 *                  (declared in backend/cg.h; ir/ never sees it expanded)
 *   passes/stats.c the cost of one decode step: cost_<cost> (static there)
 *
 * TFX_OP(NAME, "text", min operands, max operands, "operand roles", traits,
 *        in place, attributes read, interp, emit, infer, check, print, cost)
 *   roles   comma-separated names of the operands in order, "" for none;
 *           optional operands in brackets; "..." when they vary with the
 *           node's attributes (see the tfx_*_operand helpers in ir/fused.c)
 *   traits  TFX_TRAIT_* flags (ir/ir.h)
 *   in place  TFX_INPLACE_*: the operand whose slot the result may take
 *           (passes/plan_memory)
 *   attrs   TFX_A(ATTR) | ...: exactly the attributes the op reads; CSE, the
 *           printer and the backend's body keys go through them
 *   interp  token: ir/ expands it to tfx_interp_op_<token>
 *   emit    token: backend/ expands it to tfx_cg_emit_<token>
 *   infer   token: tfx_infer_<token>, the op's type inference, called by
 *           tfx_infer_type after the common work (arity from this row, the
 *           operands' types): ir/graph.c, ir/attention.c, ir/fused.c
 *   check   token: tfx_check_<token>, the verifier's attribute checks beyond
 *           inference ("none": nothing to check): ir/verify.c, ir/attention.c,
 *           ir/fused.c
 *   print   token: tfx_print_<token>, the attributes' text form; "attrs" is
 *           the generic one (every attribute of the row, in TFX_ATTR order,
 *           in its print form below); the others are in ir/print.c,
 *           ir/attention.c, ir/fused.c
 *   cost    token: passes/stats.c's cost_<token> (flops of one decode step;
 *           "element": one per output element, "none": nothing)
 * Several ops may share a token (binary, unary, norm, attrs, none, ...).
 *
 * Adding an op: docs/adding-an-op.md. */

/* clang-format off */
#ifdef TFX_OP
/*     NAME           text             lo hi              roles                                 traits                                                                     in place              attributes read                                                                                                                                                                                                                                           interp        emit          infer         check       print         cost */
TFX_OP(INPUT,         "input",         0, 0,              "",                                   TFX_TRAIT_SOURCE | TFX_TRAIT_NO_KERNEL,                                    TFX_INPLACE_NONE,     0,                                                                                                                                                                                                                                                        source,       source,       source,       none,       attrs,        none)
TFX_OP(PARAM,         "param",         0, 0,              "",                                   TFX_TRAIT_SOURCE | TFX_TRAIT_NO_KERNEL,                                    TFX_INPLACE_NONE,     TFX_A(PANEL) | TFX_A(KC) | TFX_A(N_SEGS) | TFX_A(SEGS) | TFX_A(PERM) | TFX_A(PERM_HD) | TFX_A(PERM_RD),                                                                                                                                                   source,       source,       source,       param,      param,        none)
TFX_OP(EMBEDDING,     "embedding",     2, 6,              "table,ids,...",                      TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_NONE,     TFX_A(POS_ADD) | TFX_A(HAS_BIAS) | TFX_A(NORM) | TFX_A(EPS) | TFX_A(THETA) | TFX_A(STATS_OUT),                                                                                                                                                            embedding,    embedding,    embedding,    none,       embedding,    none)
TFX_OP(LINEAR,        "linear",        2, 3,              "x,w,[bias]",                         TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_NONE,     0,                                                                                                                                                                                                                                                        linear,       linear,       linear,       none,       attrs,        linear)
TFX_OP(MATMUL,        "matmul",        2, 2,              "a,b",                                TFX_TRAIT_ROW_WISE_IF | TFX_TRAIT_CSE,                                     TFX_INPLACE_NONE,     0,                                                                                                                                                                                                                                                        matmul,       matmul,       matmul,       none,       attrs,        matmul)
TFX_OP(ADD,           "add",           2, 2,              "a,b",                                TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_EITHER,   0,                                                                                                                                                                                                                                                        binary,       add,          binary,       none,       attrs,        element)
TFX_OP(SUB,           "sub",           2, 2,              "a,b",                                TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_EITHER,   0,                                                                                                                                                                                                                                                        binary,       sub,          binary,       none,       attrs,        element)
TFX_OP(MUL,           "mul",           2, 2,              "a,b",                                TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_EITHER,   0,                                                                                                                                                                                                                                                        binary,       mul,          binary,       none,       attrs,        element)
TFX_OP(RMSNORM,       "rmsnorm",       2, 2,              "x,gain",                             TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_NONE,     TFX_A(EPS) | TFX_A(HEADS),                                                                                                                                                                                                                                       rmsnorm,      rmsnorm,      norm,         norm,       norm,         reduce_row)
TFX_OP(LAYERNORM,     "layernorm",     3, 3,              "x,gain,bias",                        TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_NONE,     TFX_A(EPS) | TFX_A(HEADS),                                                                                                                                                                                                                                       layernorm,    layernorm,    norm,         norm,       norm,         reduce_row)
TFX_OP(SILU,          "silu",          1, 1,              "x",                                  TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_FIRST,    0,                                                                                                                                                                                                                                                        silu,         silu,         unary,        none,       attrs,        element)
TFX_OP(GELU,          "gelu",          1, 1,              "x",                                  TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_FIRST,    TFX_A(GELU_TANH),                                                                                                                                                                                                                                         gelu,         gelu,         unary,        gelu,       attrs,        element)
TFX_OP(RELU,          "relu",          1, 1,              "x",                                  TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_FIRST,    0,                                                                                                                                                                                                                                                        relu,         relu,         unary,        none,       attrs,        element)
TFX_OP(SOFTMAX,       "softmax",       1, 1,              "x",                                  TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_NONE,     0,                                                                                                                                                                                                                                                        softmax,      softmax,      softmax,      none,       attrs,        reduce_row)
TFX_OP(ROPE,          "rope",          1, 2,              "x,[segs]",                           TFX_TRAIT_ROW_WISE_IF | TFX_TRAIT_CSE,                                     TFX_INPLACE_NONE,     TFX_A(HEADS) | TFX_A(HEAD_DIM) | TFX_A(ROTARY_DIM) | TFX_A(THETA) | TFX_A(ROPE_STYLE),                                                                                                                                                                    rope,         rope,         rope,         rope,       attrs,        rope)
TFX_OP(ATTENTION,     "attention",     3, 6,              "q,k,v,[bias_table],[key_mask],[segs|gmask]",TFX_TRAIT_KV_CACHE,                                                        TFX_INPLACE_NONE,     TFX_A(HEADS) | TFX_A(KV_HEADS) | TFX_A(HEAD_DIM) | TFX_A(MASK) | TFX_A(ALIBI) | TFX_A(SPARSE) | TFX_A(ATTN_SCHEDULE) | TFX_A(ATTN_SPLIT) | TFX_A(REL_MAX_DIST) | TFX_A(REL_BIDIR) | TFX_A(SCALE) | TFX_A(SOFTCAP) | TFX_A(KEY_MASK) | TFX_A(SEGMENTS),                                                                                                                       attention,    attention,    attention,    attention,  attention,    attention)
TFX_OP(SIGMOID,       "sigmoid",       1, 1,              "x",                                  TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_FIRST,    0,                                                                                                                                                                                                                                                        sigmoid,      sigmoid,      unary,        none,       attrs,        element)
TFX_OP(POSITIONS,     "positions",     2, 3,              "table,x,[segs]",                     TFX_TRAIT_ROW_WISE_IF,                                                     TFX_INPLACE_NONE,     TFX_A(POS_OFFSET) | TFX_A(PAD_SKIP) | TFX_A(PAD_ID),                                                                                                                                                                                                                    positions,    positions,    positions,    none,       positions,        element)
TFX_OP(SINUSOIDAL,    "sinusoidal",    1, 1,              "x",                                  TFX_TRAIT_ROW_WISE,                                                        TFX_INPLACE_NONE,     TFX_A(THETA),                                                                                                                                                                                                                                             sinusoidal,   sinusoidal,   sinusoidal,   sinusoidal, sinusoidal,   element)
TFX_OP(MOE_ROUTE,     "moe_route",     1, 5,              "logits|x,[router,stats,gain,nbias]", TFX_TRAIT_ROW_WISE_IF,                                                     TFX_INPLACE_NONE,     TFX_A(TOP_K) | TFX_A(MOE_GATE) | TFX_A(CAPACITY) | TFX_A(ROUTER) | TFX_A(NORM),                                                                                                                                                                           moe_route,    moe_route,    moe_route,    moe_route,  moe_route,    element)
TFX_OP(MOE_UP,        "moe_up",        3, 7,              "x,route,w,...",                      TFX_TRAIT_ROW_WISE,                                                        TFX_INPLACE_NONE,     TFX_A(NORM) | TFX_A(ACT) | TFX_A(GLU),                                                                                                                                                                                                                    moe_up,       moe_up,       moe_up,       none,       moe,          element)
TFX_OP(MOE_DOWN,      "moe_down",      3, 4,              "h,route,w,[residual]",               TFX_TRAIT_ROW_WISE,                                                        TFX_INPLACE_RESIDUAL, TFX_A(RESIDUAL) | TFX_A(STATS_OUT),                                                                                                                                                                                                                       moe_down,     moe_down,     moe_down,     none,       moe,          element)
TFX_OP(MLA_ATTENTION, "mla_attention", 3, 4,              "q,ckv,wkv_b,[kv_norm]",              TFX_TRAIT_KV_CACHE,                                                        TFX_INPLACE_NONE,     TFX_A(HEADS) | TFX_A(HEAD_DIM) | TFX_A(RANK) | TFX_A(ROPE_DIM) | TFX_A(V_DIM) | TFX_A(THETA) | TFX_A(ROPE_STYLE) | TFX_A(EPS) | TFX_A(MASK) | TFX_A(ALIBI) | TFX_A(SPARSE) | TFX_A(ATTN_SCHEDULE),                                                        mla,          mla,          mla,          attention,  attention,    element)
TFX_OP(RETENTION,     "retention",     3, 4,              "q,k,v,[gamma]",                      TFX_TRAIT_STATE,                                                           TFX_INPLACE_NONE,     TFX_A(HEADS) | TFX_A(HEAD_DIM) | TFX_A(V_DIM),                                                                                                                                                                                                            retention,    retention,    retention,    none,       attrs,        retention)
TFX_OP(GROUPNORM,     "groupnorm",     3, 3,              "x,gain,bias",                        TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_NONE,     TFX_A(HEADS) | TFX_A(EPS),                                                                                                                                                                                                                                groupnorm,    groupnorm,    groupnorm,    none,       attrs,        reduce_row)
TFX_OP(INFINI_ATTENTION, "infini_attention", 4, 4,        "q,k,v,beta",                         TFX_TRAIT_STATE,                                                           TFX_INPLACE_NONE,     TFX_A(HEADS) | TFX_A(HEAD_DIM) | TFX_A(V_DIM) | TFX_A(SEGMENT),                                                                                                                                                                                           infini,       infini,       infini,       none,       attrs,        infini)
TFX_OP(NORM_STATS,    "norm_stats",    1, 1,              "x",                                  TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_NONE,     TFX_A(NORM) | TFX_A(EPS) | TFX_A(INDEX),                                                                                                                                                                                                                  norm_stats,   norm_stats,   norm_stats,   none,       norm_stats,   norm_stats)
TFX_OP(FUSED_LINEAR,  "fused_linear",  2, 7,              "x,w,...",                            TFX_TRAIT_ROW_WISE,                                                        TFX_INPLACE_RESIDUAL, TFX_A(NORM) | TFX_A(HAS_BIAS) | TFX_A(ACT) | TFX_A(GLU) | TFX_A(RESIDUAL) | TFX_A(ROPE_SEGS) | TFX_A(N_SEGS) | TFX_A(SEGS) | TFX_A(STATS_OUT) | TFX_A(STATS_SEG) | TFX_A(RNORM) | TFX_A(HEAD_DIM) | TFX_A(ROTARY_DIM) | TFX_A(THETA) | TFX_A(ROPE_STYLE), fused_linear, fused_linear, fused_linear, none,       fused_linear, fused_linear)
TFX_OP(SLICE,         "slice",         1, 1,              "planar",                             TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE | TFX_TRAIT_NO_KERNEL | TFX_TRAIT_VIEW, TFX_INPLACE_NONE,     TFX_A(INDEX),                                                                                                                                                                                                                                             slice,        view,         slice,        none,       attrs,        none)
TFX_OP(CONCAT,        "concat",        1, TFX_MAX_INPUTS, "...",                                TFX_TRAIT_NO_KERNEL | TFX_TRAIT_FOLDED,                                    TFX_INPLACE_NONE,     0,                                                                                                                                                                                                                                                        concat,       folded,       concat,       none,       attrs,        none)
TFX_OP(PACK,          "pack",          1, 1,              "w",                                  TFX_TRAIT_NO_KERNEL | TFX_TRAIT_FOLDED,                                    TFX_INPLACE_NONE,     TFX_A(PANEL) | TFX_A(KC) | TFX_A(N_SEGS) | TFX_A(SEGS) | TFX_A(PERM) | TFX_A(PERM_HD) | TFX_A(PERM_RD),                                                                                                                                                   pack,         folded,       pack,         pack,       pack,         none)
TFX_OP(AFFINE,        "affine",        1, 1,              "x",                                  TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_FIRST,    TFX_A(SCALE) | TFX_A(SHIFT),                                                                                                                                                                                                                              affine,       affine,       unary,        affine,     attrs,        element)
TFX_OP(SEQ_PROJECT,   "seq_project",   2, 2,              "e,x",                                TFX_TRAIT_CSE,                                                             TFX_INPLACE_NONE,     0,                                                                                                                                                                                                                                                        seq_project,  seq_project,  seq_project,  none,       attrs,        seq_project)
TFX_OP(SOFTCAP,       "softcap",       1, 1,              "x",                                  TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_FIRST,    TFX_A(SOFTCAP),                                                                                                                                                                                                                                           softcap,      softcap,      unary,        softcap,    attrs,        element)
TFX_OP(COL_SLICE,     "col_slice",     1, 1,              "x",                                  TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_NONE,     TFX_A(COL_LO) | TFX_A(COL_HI),                                                                                                                                                                                                                            col_slice,    col_slice,    col_slice,    col_slice,  attrs,        element)
TFX_OP(CONCAT_COLS,   "concat_cols",   1, TFX_MAX_INPUTS, "...",                                TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                                        TFX_INPLACE_NONE,     0,                                                                                                                                                                                                                                                        concat_cols,  concat_cols,  concat_cols,  none,       attrs,        element)
TFX_OP(GLOBAL_ATTENTION, "global_attention", 4, 6,     "y,q,k,v,[key_mask],[gmask]",         0,                                                                         TFX_INPLACE_FIRST,    TFX_A(HEADS) | TFX_A(KV_HEADS) | TFX_A(HEAD_DIM) | TFX_A(SPARSE) | TFX_A(SCALE) | TFX_A(KEY_MASK),                                                                                                                                                                  global_attn,  global_attn,  global_attn,  global_attn, global_attn, global_attn)
#endif

/* TFX_ATTR(ID, "name", field of tfx_node, kind): kind INT (an int or an enum),
 * UINT, DOUBLE (compared with ==, serialized exactly), BYTES (a struct or an
 * array, compared byte by byte: every producer starts from tfx_node_proto's
 * zeroed node). Adding a node attribute is one line here plus its bit in
 * the TFX_OP rows of the ops that read it. The last two columns are its
 * form in the IR's text (the generic printer tfx_print_attrs): the name it
 * prints, and TFX_NUM (the number: %d, %u or %.9g by kind) or
 * TFX_NAMES("a", "b", ...) (value 0 prints "a", 1 "b", ...; a value out of
 * the list prints its number). A BYTES attribute has no generic form: an
 * op reading one names a print function of its own. */
#ifdef TFX_ATTR
TFX_ATTR(EPS,           "eps",        eps,           DOUBLE, "eps",         TFX_NUM)
TFX_ATTR(GELU_TANH,     "gelu_tanh",  gelu_tanh,     INT,    "approximate", TFX_NAMES("erf", "tanh"))
TFX_ATTR(HEADS,         "heads",      heads,         INT,    "heads",       TFX_NUM)
TFX_ATTR(KV_HEADS,      "kv_heads",   kv_heads,      INT,    "kv_heads",    TFX_NUM)
TFX_ATTR(HEAD_DIM,      "head_dim",   head_dim,      INT,    "head_dim",    TFX_NUM)
TFX_ATTR(ROTARY_DIM,    "rotary_dim", rotary_dim,    INT,    "rotary_dim",  TFX_NUM)
TFX_ATTR(THETA,         "theta",      theta,         DOUBLE, "theta",       TFX_NUM)
TFX_ATTR(ROPE_STYLE,    "rope_style", rope_style,    INT,    "style",       TFX_NAMES("interleaved", "half"))
TFX_ATTR(MASK,          "mask",       mask,          INT,    "mask",        TFX_NAMES("none", "causal"))
TFX_ATTR(ALIBI,         "alibi",      alibi,         INT,    "alibi",       TFX_NUM)
TFX_ATTR(SPARSE,        "sparse",     sparse,        BYTES,  "sparse",      TFX_NUM)
TFX_ATTR(RANK,          "rank",       rank,          INT,    "rank",        TFX_NUM)
TFX_ATTR(ROPE_DIM,      "rope_dim",   rope_dim,      INT,    "rope_dim",    TFX_NUM)
TFX_ATTR(V_DIM,         "v_dim",      v_dim,         INT,    "v_dim",       TFX_NUM)
TFX_ATTR(TOP_K,         "top_k",      top_k,         INT,    "top_k",       TFX_NUM)
TFX_ATTR(MOE_GATE,      "moe_gate",   moe_gate,      INT,    "gate",        TFX_NAMES("softmax_topk", "softmax"))
TFX_ATTR(CAPACITY,      "capacity",   capacity,      DOUBLE, "capacity",    TFX_NUM)
TFX_ATTR(NORM,          "norm",       fx.norm,       INT,    "norm",        TFX_NUM)
TFX_ATTR(HAS_BIAS,      "has_bias",   fx.has_bias,   INT,    "has_bias",    TFX_NUM)
TFX_ATTR(ACT,           "act",        fx.act,        INT,    "act",         TFX_NUM)
TFX_ATTR(GLU,           "glu",        fx.glu,        INT,    "glu",         TFX_NUM)
TFX_ATTR(RESIDUAL,      "residual",   fx.residual,   INT,    "residual",    TFX_NUM)
TFX_ATTR(ROPE_SEGS,     "rope",       fx.rope,       UINT,   "rope",        TFX_NUM)
TFX_ATTR(N_SEGS,        "n_segs",     fx.n_segs,     INT,    "n_segs",      TFX_NUM)
TFX_ATTR(SEGS,          "segs",       fx.segs,       BYTES,  "segs",        TFX_NUM)
TFX_ATTR(PANEL,         "panel",      fx.panel,      INT,    "panel",       TFX_NUM)
TFX_ATTR(KC,            "kc",         fx.kc,         INT,    "kc",          TFX_NUM)
TFX_ATTR(PERM,          "perm",       fx.perm,       UINT,   "perm",        TFX_NUM)
TFX_ATTR(PERM_HD,       "perm_hd",    fx.perm_hd,    INT,    "perm_hd",     TFX_NUM)
TFX_ATTR(PERM_RD,       "perm_rd",    fx.perm_rd,    INT,    "perm_rd",     TFX_NUM)
TFX_ATTR(INDEX,         "index",      fx.index,      INT,    "index",       TFX_NUM)
TFX_ATTR(STATS_OUT,     "stats_out",  fx.stats_out,  INT,    "stats_out",   TFX_NUM)
TFX_ATTR(STATS_SEG,     "stats_seg",  fx.stats_seg,  INT,    "stats_seg",   TFX_NUM)
TFX_ATTR(RNORM,         "rnorm",      fx.rnorm,      INT,    "rnorm",       TFX_NUM)
TFX_ATTR(POS_ADD,       "pos_add",    fx.pos_add,    INT,    "pos_add",     TFX_NUM)
TFX_ATTR(ROUTER,        "router",     fx.router,     INT,    "router",      TFX_NUM)
TFX_ATTR(ATTN_SCHEDULE, "schedule",   attn_schedule, INT,    "schedule",    TFX_NUM)
TFX_ATTR(ATTN_SPLIT,    "split",      attn_split,    INT,    "split",       TFX_NUM)
TFX_ATTR(SEGMENT,       "segment",    segment,       INT,    "segment",     TFX_NUM)
TFX_ATTR(SCALE,         "scale",      scale,         DOUBLE, "scale",       TFX_NUM)
TFX_ATTR(SHIFT,         "shift",      shift,         DOUBLE, "shift",       TFX_NUM)
TFX_ATTR(POS_OFFSET,    "pos_offset", pos_offset,    INT,    "offset",      TFX_NUM)
TFX_ATTR(PAD_SKIP,      "pad_skip",   pad_skip,      INT,    "pad_skip",    TFX_NUM)
TFX_ATTR(PAD_ID,        "pad_id",     pad_id,        INT,    "pad",         TFX_NUM)
TFX_ATTR(REL_MAX_DIST,  "rel_max_distance", rel_max_distance, INT, "max_distance", TFX_NUM)
TFX_ATTR(REL_BIDIR,     "rel_bidirectional", rel_bidirectional, INT, "bidirectional", TFX_NUM)
TFX_ATTR(SOFTCAP,       "softcap",    softcap,       DOUBLE, "softcap",     TFX_NUM)
TFX_ATTR(KEY_MASK,      "key_mask",   key_mask,      INT,    "key_mask",    TFX_NUM)
TFX_ATTR(SEGMENTS,      "segments",   segments,      INT,    "segments",    TFX_NUM)
TFX_ATTR(COL_LO,        "col_lo",     col_lo,        INT,    "lo",          TFX_NUM)
TFX_ATTR(COL_HI,        "col_hi",     col_hi,        INT,    "hi",          TFX_NUM)
#endif
/* clang-format on */
