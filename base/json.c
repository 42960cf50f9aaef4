#include "base/json.h"

#include <string.h>
#include <yajl/yajl_tree.h>

/* json_t is never defined: a json_t pointer is a yajl_val in disguise, so the
 * tree is walked without copying and yajl's types stay in this file. */
static yajl_val V(const json_t *n) { return (yajl_val)(void *)n; }
static const json_t *J(yajl_val v) { return (const json_t *)(void *)v; }

int json_parse(const char *text, json_t **out, err_t **e)
{
  char errbuf[512];
  errbuf[0] = '\0';
  yajl_val v = yajl_tree_parse(text, errbuf, sizeof(errbuf));
  if (!v) {
    /* yajl's message spans lines (it quotes the text around the error); keep the first */
    char *nl = strchr(errbuf, '\n');
    if (nl)
      *nl = '\0';
    return err_set(e, ERR_INVALID, 0, "invalid JSON: %s", errbuf[0] ? errbuf : "parse error");
  }
  *out = (json_t *)(void *)v;
  return 0;
}

void json_free(json_t *root)
{
  if (root)
    yajl_tree_free(V(root));
}

enum json_type json_type(const json_t *n)
{
  yajl_val v = V(n);
  if (!v)
    return JSON_NONE;
  switch (v->type) {
  case yajl_t_string: return JSON_STRING;
  case yajl_t_number: return JSON_NUMBER;
  case yajl_t_object: return JSON_OBJECT;
  case yajl_t_array: return JSON_ARRAY;
  case yajl_t_true: case yajl_t_false: return JSON_BOOL;
  case yajl_t_null: return JSON_NULL;
  case yajl_t_any: break;
  }
  return JSON_NONE;
}

const char *json_type_name(enum json_type t)
{
  switch (t) {
  case JSON_NONE: return "nothing";
  case JSON_NULL: return "null";
  case JSON_BOOL: return "a boolean";
  case JSON_NUMBER: return "a number";
  case JSON_STRING: return "a string";
  case JSON_ARRAY: return "an array";
  case JSON_OBJECT: return "an object";
  }
  return "?";
}

const json_t *json_get(const json_t *n, const char *key)
{
  yajl_val v = V(n);
  if (!v || !YAJL_IS_OBJECT(v))
    return NULL;
  for (size_t i = 0; i < v->u.object.len; i++)
    if (strcmp(v->u.object.keys[i], key) == 0)
      return J(v->u.object.values[i]);
  return NULL;
}

size_t json_len(const json_t *n)
{
  yajl_val v = V(n);
  if (v && YAJL_IS_OBJECT(v))
    return v->u.object.len;
  if (v && YAJL_IS_ARRAY(v))
    return v->u.array.len;
  return 0;
}

const char *json_key_at(const json_t *n, size_t i)
{
  yajl_val v = V(n);
  if (!v || !YAJL_IS_OBJECT(v) || i >= v->u.object.len)
    return NULL;
  return v->u.object.keys[i];
}

const json_t *json_at(const json_t *n, size_t i)
{
  yajl_val v = V(n);
  if (v && YAJL_IS_OBJECT(v) && i < v->u.object.len)
    return J(v->u.object.values[i]);
  if (v && YAJL_IS_ARRAY(v) && i < v->u.array.len)
    return J(v->u.array.values[i]);
  return NULL;
}

const char *json_str(const json_t *n)
{
  yajl_val v = V(n);
  return v && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

int json_int(const json_t *n, long long *out)
{
  yajl_val v = V(n);
  if (!v || !YAJL_IS_INTEGER(v))
    return -1;
  *out = v->u.number.i;
  return 0;
}

int json_double(const json_t *n, double *out)
{
  yajl_val v = V(n);
  if (!v || !YAJL_IS_NUMBER(v))
    return -1;
  *out = YAJL_IS_DOUBLE(v) ? v->u.number.d : (double)v->u.number.i;
  return 0;
}

int json_bool(const json_t *n, bool *out)
{
  yajl_val v = V(n);
  if (!v || !(YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)))
    return -1;
  *out = YAJL_IS_TRUE(v);
  return 0;
}
