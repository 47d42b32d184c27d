/* frontend/weights_shards.c — sharded safetensors checkpoints: reads the
 * index (model.safetensors.index.json, `{"metadata": {...}, "weight_map":
 * {tensor: shard file}}`), opens every shard beside it (each validated by
 * the safetensors loader) and makes one tensor table whose entries name their
 * shard, so binding reads each tensor from its own file (no concatenation).
 * Shard names are plain file names or paths below the index's folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "weights.h"

#define MAX_SHARDS 4096

static int fail(char *err, size_t errlen, const char *fmt, const char *a, const char *b) {
  snprintf(err, errlen, fmt, a, b);
  return -1;
}

int tfx_wfile_is_shard_index(const char *path) {
  size_t n = strlen(path), k = strlen(".index.json");
  return n > k && !strcmp(path + n - k, ".index.json");
}

/* A shard's name is relative to the index's folder and stays below it. */
static int safe_name(const char *s) {
  if (!s[0] || s[0] == '/') return 0;
  for (const char *p = s; *p; p++)
    if (p[0] == '.' && p[1] == '.' && (p == s || p[-1] == '/') && (p[2] == '/' || !p[2])) return 0;
  return 1;
}

int tfx_wfile_open_sharded(const char *index_path, tfx_wfile *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  uint64_t size;
  char oerr[512];
  FILE *fp = tfx_wfile_fopen(index_path, &size, oerr, sizeof oerr);
  if (!fp) return fail(err, errlen, "%s%s", oerr, "");
  if (size > (100u << 20)) {
    fclose(fp);
    return fail(err, errlen, "%s: the index is larger than 100 MB%s", index_path, "");
  }
  char *text = malloc((size_t)size + 1);
  int ok = text && fread(text, 1, (size_t)size, fp) == (size_t)size;
  fclose(fp);
  if (!ok) {
    free(text);
    return fail(err, errlen, "%s: cannot read it%s", index_path, "");
  }
  char jerr[256];
  tfx_fe_json *root = tfx_fe_json_parse(text, (size_t)size, jerr, sizeof jerr);
  free(text);
  if (!root) return fail(err, errlen, "%s: not valid JSON: %s", index_path, jerr);
  const tfx_fe_json *map = root->kind == TFX_FE_JSON_OBJECT ? tfx_fe_json_get(root, "weight_map") : NULL;
  int rc = -1;
  char *dir = NULL;
  tfx_wfile sh;
  memset(&sh, 0, sizeof sh);
  if (!map || map->kind != TFX_FE_JSON_OBJECT) {
    fail(err, errlen, "%s: not a sharded checkpoint's index (no \"weight_map\" object)%s", index_path, "");
    goto done;
  }
  const char *slash = strrchr(index_path, '/');
  size_t dl = slash ? (size_t)(slash - index_path + 1) : 0;
  dir = strndup(index_path, dl);
  out->path = strdup(index_path);
  out->format = "safetensors";
  out->shards = calloc(MAX_SHARDS, sizeof *out->shards);
  if (!dir || !out->path || !out->shards) {
    fail(err, errlen, "%s: out of memory%s", index_path, "");
    goto done;
  }
  /* the distinct shards, in the order the index names them */
  for (int i = 0; i < map->n; i++) {
    const tfx_fe_json *v = &map->items[i];
    if (v->kind != TFX_FE_JSON_STRING || !safe_name(v->str)) {
      fail(err, errlen, "%s: tensor '%s' has no shard file name (a name beside the index)", index_path, map->keys[i]);
      goto done;
    }
    int s = 0;
    size_t vl = strlen(v->str);
    while (s < out->n_shards && strcmp(out->shards[s] + dl, v->str)) s++;
    if (s < out->n_shards) continue;
    if (out->n_shards == MAX_SHARDS) {
      fail(err, errlen, "%s: more than 4096 shards%s", index_path, "");
      goto done;
    }
    char *p = malloc(dl + vl + 1);
    if (!p) {
      fail(err, errlen, "%s: out of memory%s", index_path, "");
      goto done;
    }
    memcpy(p, dir, dl);
    memcpy(p + dl, v->str, vl + 1);
    out->shards[out->n_shards++] = p;
  }
  for (int s = 0; s < out->n_shards; s++) {
    if (tfx_wfile_open_safetensors(out->shards[s], &sh, err, errlen)) goto done;
    tfx_wfile_tensor *t = realloc(out->tensors, (size_t)(out->n_tensors + sh.n_tensors + 1) * sizeof *t);
    if (!t) {
      fail(err, errlen, "%s: out of memory%s", index_path, "");
      goto done;
    }
    out->tensors = t;
    for (int k = 0; k < sh.n_tensors; k++) { /* moved: the shard's table keeps no names */
      t[out->n_tensors] = sh.tensors[k];
      t[out->n_tensors++].shard = s;
      sh.tensors[k].name = NULL;
    }
    out->file_size += sh.file_size;
    tfx_wfile_close(&sh);
  }
  /* every tensor of the index in the shard it names, once */
  for (int i = 0; i < map->n; i++) {
    int found = -1;
    for (int k = 0; k < out->n_tensors; k++)
      if (!strcmp(out->tensors[k].name, map->keys[i])) {
        if (found >= 0) {
          fail(err, errlen, "%s: tensor '%s' is in two shards", index_path, map->keys[i]);
          goto done;
        }
        found = k;
      }
    if (found < 0 || strcmp(out->shards[out->tensors[found].shard] + dl, map->items[i].str)) {
      snprintf(err, errlen, "%s: tensor '%s' is not in its shard '%s'", index_path, map->keys[i], map->items[i].str);
      goto done;
    }
  }
  if (out->n_tensors != map->n) {
    fail(err, errlen, "%s: the shards hold tensors the index does not list%s", index_path, "");
    goto done;
  }
  rc = 0;
done:
  tfx_wfile_close(&sh);
  tfx_fe_json_free(root);
  free(dir);
  if (rc) tfx_wfile_close(out);
  return rc;
}
