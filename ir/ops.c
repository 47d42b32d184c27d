/* ir/ops.c — the op table's queries: expands ir/ops.h into the per-op
 * descriptors (tfx_op_info: name, arity, roles, traits, in-place operand,
 * attributes read, interpreter and emitter tokens) and the attribute
 * descriptors (tfx_attr_info), and compares and serializes a node's
 * attributes through them (CSE, the backend's body keys). */
#include "fused.h"
#include "ir.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const tfx_op_desc op_table[TFX_OP_COUNT] = {
#define TFX_OP(NAME, text, lo, hi, roles, traits, inplace, attrs, interp, emit, infer, check, print, cost)             \
  [TFX_OP_##NAME] = {text, lo, hi, roles, traits, inplace, attrs, #interp, #emit, #infer, #check, #print, #cost},
#include "ops.h"
#undef TFX_OP
};

static const tfx_op_desc bad_op = {"?", 0, 0, "", 0, TFX_INPLACE_NONE, 0, "", "", "", "", "", ""};

const tfx_op_desc *tfx_op_info(tfx_op op) { return (op >= 0 && op < TFX_OP_COUNT) ? &op_table[op] : &bad_op; }

int tfx_op_has(tfx_op op, unsigned trait) { return (tfx_op_info(op)->traits & trait) != 0; }

const char *tfx_op_name(tfx_op op) { return tfx_op_info(op)->name; }

#define FIELD_SIZE(field) sizeof(((const tfx_node *)0)->field)
/* the print forms of TFX_ATTR: a number, or the names of the values */
#define TFX_NUM NULL
#define TFX_NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})
static const tfx_attr_desc attr_table[TFX_ATTR_COUNT] = {
#define TFX_ATTR(ID, name, field, kind, pname, values)                                                                 \
  [TFX_ATTR_##ID] = {name, offsetof(tfx_node, field), FIELD_SIZE(field), TFX_ATTR_KIND_##kind, pname, values},
#include "ops.h"
#undef TFX_ATTR
};
#undef TFX_NUM
#undef TFX_NAMES

/* every INT/UINT attribute is an int-sized field (an enum included), every
 * DOUBLE a double: checked when the table is compiled */
#define TFX_ATTR(ID, name, field, kind, pname, values)                                                                 \
  _Static_assert(TFX_ATTR_KIND_##kind == TFX_ATTR_KIND_BYTES ||                                                        \
                     FIELD_SIZE(field) ==                                                                              \
                         (TFX_ATTR_KIND_##kind == TFX_ATTR_KIND_DOUBLE ? sizeof(double) : sizeof(int)),                \
                 "attribute " name ": field size does not match its kind");
#include "ops.h"
#undef TFX_ATTR
_Static_assert(TFX_ATTR_COUNT <= 64, "attribute masks are 64 bits");

const tfx_attr_desc *tfx_attr_info(tfx_attr_id id) { return (id >= 0 && id < TFX_ATTR_COUNT) ? &attr_table[id] : NULL; }

static double attr_double(const tfx_node *n, const tfx_attr_desc *a) {
  double v;
  memcpy(&v, (const char *)n + a->offset, sizeof v);
  return v;
}

static int attr_int(const tfx_node *n, const tfx_attr_desc *a) {
  int v;
  memcpy(&v, (const char *)n + a->offset, sizeof v);
  return v;
}

int tfx_node_attrs_equal(const tfx_node *a, const tfx_node *b) {
  if (a->op != b->op) return 0;
  uint64_t mask = tfx_op_info(a->op)->attrs;
  for (int i = 0; i < TFX_ATTR_COUNT; i++) {
    if (!(mask >> i & 1)) continue;
    const tfx_attr_desc *d = &attr_table[i];
    if (d->kind == TFX_ATTR_KIND_DOUBLE) {
      if (!(attr_double(a, d) == attr_double(b, d))) return 0;
    } else if (memcmp((const char *)a + d->offset, (const char *)b + d->offset, d->size)) {
      return 0;
    }
  }
  return 1;
}

int tfx_node_attr_key(const tfx_node *n, char *buf, size_t len) {
  uint64_t mask = tfx_op_info(n->op)->attrs;
  size_t used = 0;
  if (len) buf[0] = 0;
  for (int i = 0; i < TFX_ATTR_COUNT; i++) {
    if (!(mask >> i & 1)) continue;
    const tfx_attr_desc *d = &attr_table[i];
    char *p = used < len ? buf + used : NULL;
    size_t room = used < len ? len - used : 0;
    int w = 0;
    switch (d->kind) {
    case TFX_ATTR_KIND_INT: w = snprintf(p, room, "%s=%d;", d->name, attr_int(n, d)); break;
    case TFX_ATTR_KIND_UINT: w = snprintf(p, room, "%s=%u;", d->name, (unsigned)attr_int(n, d)); break;
    case TFX_ATTR_KIND_DOUBLE: w = snprintf(p, room, "%s=%a;", d->name, attr_double(n, d)); break;
    case TFX_ATTR_KIND_BYTES: {
      uint64_t h = 1469598103934665603ull; /* FNV-1a */
      const unsigned char *s = (const unsigned char *)n + d->offset;
      for (size_t k = 0; k < d->size; k++) h = (h ^ s[k]) * 1099511628211ull;
      w = snprintf(p, room, "%s=%016llx;", d->name, (unsigned long long)h);
      break;
    }
    }
    used += (size_t)(w > 0 ? w : 0);
  }
  return (int)used;
}

int tfx_node_row_wise(const tfx_graph *g, const tfx_node *n) {
  unsigned t = tfx_op_info(n->op)->traits;
  if (t & TFX_TRAIT_ROW_WISE) return 1;
  if (!(t & TFX_TRAIT_ROW_WISE_IF)) return 0;
  /* the conditions of the ROW_WISE_IF rows of ir/ops.h */
  if (n->op == TFX_OP_MOE_ROUTE) return !(n->capacity > 0); /* token dropping looks at the other rows */
  if (n->op == TFX_OP_MATMUL) return !tfx_type_has_t(&g->nodes[n->inputs[1]].type); /* rows of b are tokens */
  /* segment ids: a row's position depends on the rows before */
  if (n->op == TFX_OP_POSITIONS) return n->n_inputs == 2 && !n->pad_skip; /* pad_skip: counts the ids before */
  if (n->op == TFX_OP_ROPE) return n->n_inputs == 1;
  return 0;
}

int tfx_residual_operand(const tfx_node *n) {
  if (tfx_op_info(n->op)->inplace != TFX_INPLACE_RESIDUAL) return -1;
  if (n->op == TFX_OP_FUSED_LINEAR) return tfx_fl_operand(n, TFX_FL_RESIDUAL);
  return n->fx.residual ? 3 : -1; /* MOE_DOWN: h, route, w, residual */
}

int tfx_node_weight_operand(const tfx_node *n, int i) {
  switch (n->op) {
  case TFX_OP_LINEAR:
  case TFX_OP_MATMUL: return i == 1;
  case TFX_OP_FUSED_LINEAR: return i == tfx_fl_operand(n, TFX_FL_W);
  case TFX_OP_EMBEDDING: return i == tfx_emb_operand(n, TFX_EMB_TABLE);
  case TFX_OP_MOE_ROUTE: return n->fx.router && i == tfx_moe_operand(n, TFX_MOE_W1);
  case TFX_OP_MOE_UP: return i == tfx_moe_operand(n, TFX_MOE_W1) || i == tfx_moe_operand(n, TFX_MOE_W3);
  case TFX_OP_MOE_DOWN:
  case TFX_OP_MLA_ATTENTION: return i == 2;
  case TFX_OP_CONCAT: return 1;
  case TFX_OP_PACK: return i == 0;
  default: return 0;
  }
}
