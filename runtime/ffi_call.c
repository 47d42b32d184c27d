/* runtime/ffi_call.c — the one generic caller of entry points. An entry
 * whose arg_kinds are abi.h's usual eight in order (every entry tfxc
 * generates) is called directly through its C type, tfx_rt_entry_fn; any
 * other list gets a libffi call interface, built once per model (pointers
 * for INPUT/INPUTS/OUTPUT/ARENA/KV/WEIGHTS/EXEC/ROWS, int64 for NTOKENS/POS). The
 * call fills the arguments from a session (and, for the batch entry, the
 * rows and the block pool). Serves .so and JIT models alike.
 *
 * A runtime built without libffi (TFX_RT_NO_FFI: CMake's TFX_RUNTIME_FFI=OFF,
 * the default of a cross build for another machine) has only the direct
 * calls and refuses at open a model with any other argument list. */
#include <string.h>

#include "rt_internal.h"

/* 1 when the entry takes INPUT, NTOKENS, POS (ROWS for the batch entry),
 * OUTPUT, ARENA, KV, WEIGHTS, EXEC, in this order: tfx_rt_entry_fn. */
static int usual_args(const tfx_entry_desc *d, int batch) {
  static const int32_t usual[8] = {TFX_ARG_INPUT, TFX_ARG_NTOKENS, TFX_ARG_POS,     TFX_ARG_OUTPUT,
                                   TFX_ARG_ARENA, TFX_ARG_KV,      TFX_ARG_WEIGHTS, TFX_ARG_EXEC};
  if (d->n_args != 8) return 0;
  for (int a = 0; a < 8; a++) {
    int32_t want = (a == 2 && batch) ? TFX_ARG_ROWS : usual[a];
    /* an input table is a pointer in the same place */
    if (d->arg_kinds[a] != want && !(a == 0 && d->arg_kinds[a] == TFX_ARG_INPUTS)) return 0;
  }
  return 1;
}

int tfx_rt_prepare_entries(tfx_model *m, char *errbuf, size_t errlen) {
  int32_t n = m->desc.n_entries;
  m->max_entry_tokens = 0;
  for (int32_t i = 0; i < n; i++) {
    tfx_rt_entry *e = &m->entries[i];
    const tfx_entry_desc *d = &m->desc.entries[i];
    e->desc = d;
    e->is_decode = strcmp(d->name, "decode") == 0;
    e->last_row = (d->flags & TFX_ENTRY_LAST_ROW) != 0;
    e->batch = (d->flags & TFX_ENTRY_BATCH) != 0;
    if (d->max_tokens > m->max_entry_tokens && !e->batch) m->max_entry_tokens = d->max_tokens;
    e->direct = usual_args(d, e->batch);
    if (e->direct) continue;
#ifdef TFX_RT_NO_FFI
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                        "entry '%s' takes arguments this runtime (built without libffi) cannot pass; it calls only "
                        "tfxc's entry signature",
                        d->name);
#else
    for (int32_t a = 0; a < d->n_args; a++) {
      int32_t k = d->arg_kinds[a];
      e->types[a] = (k == TFX_ARG_NTOKENS || k == TFX_ARG_POS) ? &ffi_type_sint64 : &ffi_type_pointer;
    }
    ffi_status st = ffi_prep_cif(&e->cif, FFI_DEFAULT_ABI, (unsigned)d->n_args, &ffi_type_void, e->types);
    if (st != FFI_OK)
      return tfx_rt_error(errbuf, errlen, TFX_ERR_INTERNAL, "ffi_prep_cif failed for entry '%s' (status %d)", d->name,
                          (int)st);
#endif
  }
  return TFX_OK;
}

void tfx_rt_call_entry(tfx_session *s, const tfx_rt_entry *e, const void *input, int64_t n, int64_t pos, void *output) {
  tfx_rt_call_entry_kv(s, e, input, n, pos, NULL, s->kv, output);
}

void tfx_rt_call_entry_kv(tfx_session *s, const tfx_rt_entry *e, const void *input, int64_t n, int64_t pos,
                          const tfx_kv_row *rows, void *kv, void *output) {
  const tfx_entry_desc *d = e->desc;
  if (e->direct) {
    /* POSIX: a function's address round-trips through void * */
    union {
      void *p;
      tfx_rt_entry_fn f;
      tfx_rt_batch_fn b;
    } u = {.p = d->fn};
    if (e->batch)
      u.b(input, n, rows, output, s->arena, kv, s->model->desc.weights, &s->exec);
    else
      u.f(input, n, pos, output, s->arena, kv, s->model->desc.weights, &s->exec);
    return;
  }
#ifndef TFX_RT_NO_FFI
  union {
    void *p;
    const void *cp;
    int64_t i;
  } vals[TFX_RT_MAX_ARGS];
  void *avalues[TFX_RT_MAX_ARGS];
  for (int32_t a = 0; a < d->n_args; a++) {
    switch (d->arg_kinds[a]) {
    case TFX_ARG_INPUT:
    case TFX_ARG_INPUTS: vals[a].cp = input; break; /* the table of the inputs' pointers */
    case TFX_ARG_NTOKENS: vals[a].i = n; break;
    case TFX_ARG_POS: vals[a].i = pos; break;
    case TFX_ARG_OUTPUT: vals[a].p = output; break;
    case TFX_ARG_ARENA: vals[a].p = s->arena; break;
    case TFX_ARG_KV: vals[a].p = kv; break;
    case TFX_ARG_ROWS: vals[a].cp = rows; break;
    case TFX_ARG_WEIGHTS: vals[a].cp = s->model->desc.weights; break;
    case TFX_ARG_EXEC: vals[a].p = &s->exec; break;
    default: vals[a].p = NULL; break; /* unreachable: kinds are validated at open */
    }
    avalues[a] = &vals[a];
  }
  ffi_arg rvalue = 0;
  ffi_call((ffi_cif *)&e->cif, FFI_FN(d->fn), &rvalue, avalues);
#endif
}
