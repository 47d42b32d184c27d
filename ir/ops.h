/* ir/ops.h — every op of the graph IR defined ONCE (an X-macro, in the style of
 * QBE's ops.h and Lua's lopcodes): its enum name, its text name, its arity,
 * the roles of its operands, its traits, the node attributes it reads, and the
 * names of its interpreter and backend entries. Also every node attribute
 * (TFX_ATTRS): its name, the tfx_node field and how it is compared.
 *
 * Consumers define the macro they need, include this file and get one
 * expansion per op (no include guard on purpose):
 *   ir/ir.h        the tfx_op enum and the tfx_attr_id enum
 *   ir/ops.c       names, arity, roles, traits, attribute masks (tfx_op_info),
 *                  the attribute descriptors (tfx_attr_info)
 *   ir/interp.c    the interpreter's dispatch table: tfx_interp_op_<interp>
 *                  (declared in ir/interp_ops.h)
 *   backend/module.c  the backend's dispatch table: tfx_cg_emit_<emit>
 *                  (declared in backend/cg.h; ir/ never sees it expanded)
 *
 * TFX_OP(NAME, "text", min operands, max operands, "operand roles", traits,
 *        attributes read, interpreter entry, backend emitter)
 *   roles   comma-separated names of the operands in order, "" for none;
 *           optional operands in brackets; "..." when they vary with the
 *           node's attributes (see the tfx_*_operand helpers in ir/fused.c)
 *   traits  TFX_TRAIT_* flags (ir/ir.h)
 *   attrs   TFX_A(ATTR) | ...: exactly the attributes the op reads; CSE, the
 *           printer's check and the backend's body keys compare through them
 *   interp  token: ir/ expands it to tfx_interp_op_<token>
 *   emit    token: backend/ expands it to tfx_cg_emit_<token>
 * The in-place operand (passes/plan_memory) is a trait column of its own,
 * TFX_INPLACE_*: the operand whose slot the result may take.
 *
 * Adding an op: docs/adding-an-op.md. */

/* clang-format off */
#ifdef TFX_OP
/*     NAME           text             lo hi  roles                                       traits                                                         in place            attributes read                                                                                                                                                          interp        emit         */
TFX_OP(INPUT,         "input",         0, 0, "",                                          TFX_TRAIT_SOURCE | TFX_TRAIT_NO_KERNEL,                         TFX_INPLACE_NONE,     0,                                                                                                                                                                         source,       source)
TFX_OP(PARAM,         "param",         0, 0, "",                                          TFX_TRAIT_SOURCE | TFX_TRAIT_NO_KERNEL,                         TFX_INPLACE_NONE,     TFX_A(PANEL) | TFX_A(KC) | TFX_A(N_SEGS) | TFX_A(SEGS) | TFX_A(PERM) | TFX_A(PERM_HD) | TFX_A(PERM_RD),                                                                            source,       source)
TFX_OP(EMBEDDING,     "embedding",     2, 6, "table,ids,...",                             TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                             TFX_INPLACE_NONE,     TFX_A(POS_ADD) | TFX_A(HAS_BIAS) | TFX_A(NORM) | TFX_A(EPS) | TFX_A(THETA) | TFX_A(STATS_OUT),                                                                       embedding,    embedding)
TFX_OP(LINEAR,        "linear",        2, 3, "x,w,[bias]",                                TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                             TFX_INPLACE_NONE,     0,                                                                                                                                                                         linear,       linear)
TFX_OP(MATMUL,        "matmul",        2, 2, "a,b",                                       TFX_TRAIT_ROW_WISE_IF | TFX_TRAIT_CSE,                          TFX_INPLACE_NONE,     0,                                                                                                                                                                         matmul,       matmul)
TFX_OP(ADD,           "add",           2, 2, "a,b",                                       TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                             TFX_INPLACE_EITHER,   0,                                                                                                                                                                         binary,       add)
TFX_OP(SUB,           "sub",           2, 2, "a,b",                                       TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                             TFX_INPLACE_EITHER,   0,                                                                                                                                                                         binary,       sub)
TFX_OP(MUL,           "mul",           2, 2, "a,b",                                       TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                             TFX_INPLACE_EITHER,   0,                                                                                                                                                                         binary,       mul)
TFX_OP(RMSNORM,       "rmsnorm",       2, 2, "x,gain",                                    TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                             TFX_INPLACE_NONE,     TFX_A(EPS),                                                                                                                                                                rmsnorm,      rmsnorm)
TFX_OP(LAYERNORM,     "layernorm",     3, 3, "x,gain,bias",                               TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                             TFX_INPLACE_NONE,     TFX_A(EPS),                                                                                                                                                                layernorm,    layernorm)
TFX_OP(SILU,          "silu",          1, 1, "x",                                         TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                             TFX_INPLACE_FIRST,    0,                                                                                                                                                                         silu,         silu)
TFX_OP(GELU,          "gelu",          1, 1, "x",                                         TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                             TFX_INPLACE_FIRST,    TFX_A(GELU_TANH),                                                                                                                                                          gelu,         gelu)
TFX_OP(RELU,          "relu",          1, 1, "x",                                         TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                             TFX_INPLACE_FIRST,    0,                                                                                                                                                                         relu,         relu)
TFX_OP(SOFTMAX,       "softmax",       1, 1, "x",                                         TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                             TFX_INPLACE_NONE,     0,                                                                                                                                                                         softmax,      softmax)
TFX_OP(ROPE,          "rope",          1, 1, "x",                                         TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                             TFX_INPLACE_NONE,     TFX_A(HEADS) | TFX_A(HEAD_DIM) | TFX_A(ROTARY_DIM) | TFX_A(THETA) | TFX_A(ROPE_STYLE),                                                                                rope,         rope)
TFX_OP(ATTENTION,     "attention",     3, 3, "q,k,v",                                     TFX_TRAIT_KV_CACHE,                                             TFX_INPLACE_NONE,     TFX_A(HEADS) | TFX_A(KV_HEADS) | TFX_A(HEAD_DIM) | TFX_A(MASK) | TFX_A(ALIBI) | TFX_A(SPARSE) | TFX_A(ATTN_SCHEDULE),                                                                     attention,    attention)
TFX_OP(SIGMOID,       "sigmoid",       1, 1, "x",                                         TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                             TFX_INPLACE_FIRST,    0,                                                                                                                                                                         sigmoid,      sigmoid)
TFX_OP(POSITIONS,     "positions",     2, 2, "table,x",                                   TFX_TRAIT_ROW_WISE,                                             TFX_INPLACE_NONE,     0,                                                                                                                                                                         positions,    positions)
TFX_OP(SINUSOIDAL,    "sinusoidal",    1, 1, "x",                                         TFX_TRAIT_ROW_WISE,                                             TFX_INPLACE_NONE,     TFX_A(THETA),                                                                                                                                                              sinusoidal,   sinusoidal)
TFX_OP(MOE_ROUTE,     "moe_route",     1, 5, "logits|x,[router,stats,gain,nbias]",        TFX_TRAIT_ROW_WISE_IF,                                          TFX_INPLACE_NONE,     TFX_A(TOP_K) | TFX_A(MOE_GATE) | TFX_A(CAPACITY) | TFX_A(ROUTER) | TFX_A(NORM),                                                                                      moe_route,    moe_route)
TFX_OP(MOE_UP,        "moe_up",        3, 7, "x,route,w,...",                             TFX_TRAIT_ROW_WISE,                                             TFX_INPLACE_NONE,     TFX_A(NORM) | TFX_A(ACT) | TFX_A(GLU),                                                                                                                                     moe_up,       moe_up)
TFX_OP(MOE_DOWN,      "moe_down",      3, 4, "h,route,w,[residual]",                      TFX_TRAIT_ROW_WISE,                                             TFX_INPLACE_RESIDUAL, TFX_A(RESIDUAL) | TFX_A(STATS_OUT),                                                                                                                                        moe_down,     moe_down)
TFX_OP(MLA_ATTENTION, "mla_attention", 3, 4, "q,ckv,wkv_b,[kv_norm]",                     TFX_TRAIT_KV_CACHE,                                             TFX_INPLACE_NONE,     TFX_A(HEADS) | TFX_A(HEAD_DIM) | TFX_A(RANK) | TFX_A(ROPE_DIM) | TFX_A(V_DIM) | TFX_A(THETA) | TFX_A(ROPE_STYLE) | TFX_A(EPS) | TFX_A(MASK) | TFX_A(ALIBI) | TFX_A(SPARSE) | TFX_A(ATTN_SCHEDULE), mla,          mla)
TFX_OP(NORM_STATS,    "norm_stats",    1, 1, "x",                                         TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE,                             TFX_INPLACE_NONE,     TFX_A(NORM) | TFX_A(EPS) | TFX_A(INDEX),                                                                                                                                   norm_stats,   norm_stats)
TFX_OP(FUSED_LINEAR,  "fused_linear",  2, 7, "x,w,...",                                   TFX_TRAIT_ROW_WISE,                                             TFX_INPLACE_RESIDUAL, TFX_A(NORM) | TFX_A(HAS_BIAS) | TFX_A(ACT) | TFX_A(GLU) | TFX_A(RESIDUAL) | TFX_A(ROPE_SEGS) | TFX_A(N_SEGS) | TFX_A(SEGS) | TFX_A(STATS_OUT) | TFX_A(STATS_SEG) | TFX_A(RNORM) | TFX_A(HEAD_DIM) | TFX_A(ROTARY_DIM) | TFX_A(THETA) | TFX_A(ROPE_STYLE), fused_linear, fused_linear)
TFX_OP(SLICE,         "slice",         1, 1, "planar",                                    TFX_TRAIT_ROW_WISE | TFX_TRAIT_CSE | TFX_TRAIT_NO_KERNEL | TFX_TRAIT_VIEW, TFX_INPLACE_NONE,     TFX_A(INDEX),                                                                                                                                                              slice,        view)
TFX_OP(CONCAT,        "concat",        1, TFX_MAX_INPUTS, "...",                                       TFX_TRAIT_NO_KERNEL | TFX_TRAIT_FOLDED,                         TFX_INPLACE_NONE,     0,                                                                                                                                                                         concat,       folded)
TFX_OP(PACK,          "pack",          1, 1, "w",                                         TFX_TRAIT_NO_KERNEL | TFX_TRAIT_FOLDED,                         TFX_INPLACE_NONE,     TFX_A(PANEL) | TFX_A(KC) | TFX_A(N_SEGS) | TFX_A(SEGS) | TFX_A(PERM) | TFX_A(PERM_HD) | TFX_A(PERM_RD),                                                                            pack,         folded)
#endif

/* TFX_ATTR(ID, "name", field of tfx_node, kind): kind INT (an int or an enum),
 * UINT, DOUBLE (compared with ==, serialized exactly), BYTES (a struct or an
 * array, compared byte by byte: every producer starts from tfx_node_proto's
 * zeroed node). Adding a node attribute is one line here plus its bit in
 * the TFX_OP rows of the ops that read it. */
#ifdef TFX_ATTR
TFX_ATTR(EPS,        "eps",        eps,          DOUBLE)
TFX_ATTR(GELU_TANH,  "gelu_tanh",  gelu_tanh,    INT)
TFX_ATTR(HEADS,      "heads",      heads,        INT)
TFX_ATTR(KV_HEADS,   "kv_heads",   kv_heads,     INT)
TFX_ATTR(HEAD_DIM,   "head_dim",   head_dim,     INT)
TFX_ATTR(ROTARY_DIM, "rotary_dim", rotary_dim,   INT)
TFX_ATTR(THETA,      "theta",      theta,        DOUBLE)
TFX_ATTR(ROPE_STYLE, "rope_style", rope_style,   INT)
TFX_ATTR(MASK,       "mask",       mask,         INT)
TFX_ATTR(ALIBI,      "alibi",      alibi,        INT)
TFX_ATTR(SPARSE,     "sparse",     sparse,       BYTES)
TFX_ATTR(RANK,       "rank",       rank,         INT)
TFX_ATTR(ROPE_DIM,   "rope_dim",   rope_dim,     INT)
TFX_ATTR(V_DIM,      "v_dim",      v_dim,        INT)
TFX_ATTR(TOP_K,      "top_k",      top_k,        INT)
TFX_ATTR(MOE_GATE,   "moe_gate",   moe_gate,     INT)
TFX_ATTR(CAPACITY,   "capacity",   capacity,     DOUBLE)
TFX_ATTR(NORM,       "norm",       fx.norm,      INT)
TFX_ATTR(HAS_BIAS,   "has_bias",   fx.has_bias,  INT)
TFX_ATTR(ACT,        "act",        fx.act,       INT)
TFX_ATTR(GLU,        "glu",        fx.glu,       INT)
TFX_ATTR(RESIDUAL,   "residual",   fx.residual,  INT)
TFX_ATTR(ROPE_SEGS,  "rope",       fx.rope,      UINT)
TFX_ATTR(N_SEGS,     "n_segs",     fx.n_segs,    INT)
TFX_ATTR(SEGS,       "segs",       fx.segs,      BYTES)
TFX_ATTR(PANEL,      "panel",      fx.panel,     INT)
TFX_ATTR(KC,         "kc",         fx.kc,        INT)
TFX_ATTR(PERM,       "perm",       fx.perm,      UINT)
TFX_ATTR(PERM_HD,    "perm_hd",    fx.perm_hd,   INT)
TFX_ATTR(PERM_RD,    "perm_rd",    fx.perm_rd,   INT)
TFX_ATTR(INDEX,      "index",      fx.index,     INT)
TFX_ATTR(STATS_OUT,  "stats_out",  fx.stats_out, INT)
TFX_ATTR(STATS_SEG,  "stats_seg",  fx.stats_seg, INT)
TFX_ATTR(RNORM,      "rnorm",      fx.rnorm,     INT)
TFX_ATTR(POS_ADD,    "pos_add",    fx.pos_add,   INT)
TFX_ATTR(ROUTER,     "router",     fx.router,    INT)
TFX_ATTR(ATTN_SCHEDULE, "schedule", attn_schedule, INT)
#endif
/* clang-format on */
