/* config_yaml.c — reading the configuration: YAML files (through libyaml)
 * and the text of --set, whose lists are YAML flow sequences.
 */
#include "format/config_table.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---- YAML documents ---- */

static int count_line(const char *text, size_t len, size_t offset)
{
    int line = 1;
    for (size_t i = 0; i < offset && i < len; i++)
        line += text[i] == '\n';
    return line;
}

static int yaml_fail(amtl_status *st, const origin *o, const yaml_parser_t *p,
                     const char *text, size_t len, const char *what)
{
    if (p->error == YAML_MEMORY_ERROR)
        return amtl_cfg_oom(st);
    const char *problem = p->problem ? p->problem : "unknown problem";
    int line;
    if (p->error == YAML_READER_ERROR)
        line = count_line(text, len, p->problem_offset);
    else
        line = (int)p->problem_mark.line + 1;
    if (p->context && o->file)
        return amtl_cfg_fail(st, AMTL_EUSAGE, o, line, "%sYAML syntax error: %s (%s on line %d)",
                             what, problem, p->context, (int)p->context_mark.line + 1);
    return amtl_cfg_fail(st, AMTL_EUSAGE, o, line, "%sYAML syntax error: %s", what, problem);
}

static int node_line(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static const char *node_kind(const yaml_node_t *n)
{
    return n->type == YAML_MAPPING_NODE ? "mapping" : n->type == YAML_SEQUENCE_NODE
                                                          ? "list"
                                                          : "scalar";
}

/* A plain empty, "~" or "null" scalar: YAML's way of writing nothing. */
static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

/* The scalar's text, refused when it hides a NUL (from a "\0" escape). */
static int scalar_text(const yaml_node_t *n, const char *key, const origin *o,
                       const char **out, amtl_status *st)
{
    const char *s = (const char *)n->data.scalar.value;
    if (strlen(s) != n->data.scalar.length) {
        if (!key)
            return amtl_cfg_fail(st, AMTL_EUSAGE, o, node_line(n), "a key has a NUL character");
        return amtl_cfg_fail(st, AMTL_EUSAGE, o, node_line(n), "key '%s' has a NUL character", key);
    }
    *out = s;
    return 0;
}

/* Applies a sequence node of scalars to list key k. */
static int set_list_node(amtl_config *c, const key_def *k, yaml_document_t *doc,
                         yaml_node_t *seq, const origin *o, amtl_status *st)
{
    int n = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    size_t cap = n > 0 ? (size_t)n : 1;
    char **items = malloc(cap * sizeof *items);
    int *lines = malloc(cap * sizeof *lines);
    int rc = -1;
    if (!items || !lines) {
        amtl_cfg_oom(st);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        yaml_node_t *it = yaml_document_get_node(doc, seq->data.sequence.items.start[i]);
        lines[i] = node_line(it);
        if (it->type != YAML_SCALAR_NODE) {
            amtl_cfg_fail(st, AMTL_EUSAGE, o, lines[i], "key '%s' wants %s, got a nested %s",
                          k->name, amtl_cfg_type_want(k->type), node_kind(it));
            goto out;
        }
        const char *s = NULL;
        if (scalar_text(it, k->name, o, &s, st))
            goto out;
        items[i] = (char *)s;
    }
    rc = amtl_cfg_set_list(c, k, items, lines, n, o, node_line(seq), st);
out:
    free(items);
    free(lines);
    return rc;
}

/* key: value, for a key of the table. */
static int set_node(amtl_config *c, const key_def *k, yaml_document_t *doc,
                    yaml_node_t *v, int key_line, const origin *o, amtl_status *st)
{
    if (v->type == YAML_MAPPING_NODE)
        return amtl_cfg_fail(st, AMTL_EUSAGE, o, key_line, "key '%s' wants %s, got a mapping",
                             k->name, amtl_cfg_type_want(k->type));
    if (v->type == YAML_SEQUENCE_NODE) {
        if (!amtl_cfg_is_list(k))
            return amtl_cfg_fail(st, AMTL_EUSAGE, o, key_line, "key '%s' wants %s, got a list",
                                 k->name, amtl_cfg_type_want(k->type));
        return set_list_node(c, k, doc, v, o, st);
    }
    const char *s = NULL;
    if (scalar_text(v, k->name, o, &s, st))
        return -1;
    if (!amtl_cfg_is_list(k))
        return amtl_cfg_set_scalar(c, k, s, o, node_line(v), st);
    if (is_null(v))
        return amtl_cfg_set_list(c, k, NULL, NULL, 0, o, node_line(v), st);
    return amtl_cfg_fail(st, AMTL_EUSAGE, o, node_line(v),
                         "key '%s' wants %s, got '%s' (write [%s] for one item)", k->name,
                         amtl_cfg_type_want(k->type), s, s);
}

typedef struct {
    int key_line[AMTL_CFG_MAX_KEYS]; /* where each key was set, 0 = not yet */
    int section_line[AMTL_CFG_MAX_SECTIONS];
} seen_lines;

static int apply_mapping(amtl_config *c, yaml_document_t *doc, yaml_node_t *map,
                         const char *section, seen_lines *seen, const origin *o,
                         amtl_status *st)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        int line = node_line(kn);
        if (kn->type != YAML_SCALAR_NODE)
            return amtl_cfg_fail(st, AMTL_EUSAGE, o, line, "a key must be a name, not a %s",
                                 node_kind(kn));
        const char *name = NULL;
        if (scalar_text(kn, NULL, o, &name, st))
            return -1;
        int s = amtl_cfg_find_section(name);
        if (s >= 0) {
            if (section)
                return amtl_cfg_fail(st, AMTL_EUSAGE, o, line,
                                     "section '%s' cannot be nested in section '%s'", name,
                                     section);
            if (seen->section_line[s])
                return amtl_cfg_fail(st, AMTL_EUSAGE, o, line,
                                     "duplicate key '%s' (first on line %d)", name,
                                     seen->section_line[s]);
            seen->section_line[s] = line;
            if (is_null(vn))
                continue;
            if (vn->type != YAML_MAPPING_NODE)
                return amtl_cfg_fail(st, AMTL_EUSAGE, o, line,
                                     "section '%s' wants a mapping of key: value, got a %s", name,
                                     node_kind(vn));
            if (apply_mapping(c, doc, vn, name, seen, o, st))
                return -1;
            continue;
        }
        const key_def *k = amtl_cfg_find_key(name);
        if (!k)
            return amtl_cfg_unknown_key(st, o, line, name, section == NULL);
        int i = (int)(k - amtl_cfg_keys);
        if (seen->key_line[i])
            return amtl_cfg_fail(st, AMTL_EUSAGE, o, line, "duplicate key '%s' (first on line %d)",
                                 name, seen->key_line[i]);
        seen->key_line[i] = line;
        if (set_node(c, k, doc, vn, line, o, st))
            return -1;
    }
    return 0;
}

/* Parses text that must hold at most one YAML document; what prefixes
 * syntax errors.  On success the caller deletes doc. */
static int parse_one(const char *text, size_t len, yaml_document_t *doc,
                     const origin *o, const char *what, amtl_status *st)
{
    yaml_parser_t p;
    yaml_document_t next;
    if (!yaml_parser_initialize(&p))
        return amtl_cfg_oom(st);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, doc)) {
        yaml_fail(st, o, &p, text, len, what);
        yaml_parser_delete(&p);
        return -1;
    }
    if (!yaml_parser_load(&p, &next)) {
        yaml_fail(st, o, &p, text, len, what);
        yaml_document_delete(doc);
        yaml_parser_delete(&p);
        return -1;
    }
    yaml_parser_delete(&p);
    yaml_node_t *extra = yaml_document_get_root_node(&next);
    int line = extra ? node_line(extra) : 0;
    yaml_document_delete(&next);
    if (extra) {
        yaml_document_delete(doc);
        return amtl_cfg_fail(st, AMTL_EUSAGE, o, line, "%sa second YAML document", what);
    }
    return 0;
}

static int apply_yaml(amtl_config *c, const char *yaml, size_t len, const origin *o,
                      amtl_status *st)
{
    yaml_document_t doc;
    if (parse_one(yaml, len, &doc, o, "", st))
        return -1;
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && !is_null(root)) {
        if (root->type != YAML_MAPPING_NODE) {
            rc = amtl_cfg_fail(st, AMTL_EUSAGE, o, node_line(root),
                               "the top level wants a mapping of key: value, got a %s",
                               node_kind(root));
        } else {
            seen_lines seen;
            memset(&seen, 0, sizeof seen);
            rc = apply_mapping(c, &doc, root, NULL, &seen, o, st);
        }
    }
    yaml_document_delete(&doc);
    return rc;
}

/* A list key's value as given to --set: "[a, b]" (YAML flow sequence),
 * "a,b", one item, or "" for none. */
static int set_list_text(amtl_config *c, const key_def *k, const char *value,
                         const origin *o, amtl_status *st)
{
    size_t len = strlen(value);
    size_t b = 0, e = len;
    while (b < e && isspace((unsigned char)value[b]))
        b++;
    while (e > b && isspace((unsigned char)value[e - 1]))
        e--;
    if (b == e)
        return amtl_cfg_set_list(c, k, NULL, NULL, 0, o, 0, st);

    if (value[b] == '[') {
        char what[200];
        yaml_document_t doc;
        snprintf(what, sizeof what, "key '%s' wants a list like [a, b]: ", k->name);
        if (parse_one(value, len, &doc, o, what, st))
            return -1;
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        int rc;
        if (!root || root->type != YAML_SEQUENCE_NODE)
            rc = amtl_cfg_fail(st, AMTL_EUSAGE, o, 0, "key '%s' wants a list like [a, b]", k->name);
        else
            rc = set_list_node(c, k, &doc, root, o, st);
        yaml_document_delete(&doc);
        return rc;
    }

    /* comma-separated: copy once, cut in place */
    char *buf = malloc(e - b + 1);
    int n = 1;
    for (size_t i = b; i < e; i++)
        n += value[i] == ',';
    char **items = malloc((size_t)n * sizeof *items);
    int rc = -1;
    if (!buf || !items) {
        amtl_cfg_oom(st);
        goto out;
    }
    memcpy(buf, value + b, e - b);
    buf[e - b] = '\0';
    char *s = buf;
    for (int i = 0; i < n; i++) {
        char *comma = strchr(s, ',');
        if (comma)
            *comma = '\0';
        while (isspace((unsigned char)*s))
            s++;
        char *t = s + strlen(s);
        while (t > s && isspace((unsigned char)t[-1]))
            *--t = '\0';
        if (!*s) {
            amtl_cfg_fail(st, AMTL_EUSAGE, o, 0, "key '%s' has an empty item", k->name);
            goto out;
        }
        items[i] = s;
        s = comma ? comma + 1 : t;
    }
    rc = amtl_cfg_set_list(c, k, items, NULL, n, o, 0, st);
out:
    free(buf);
    free(items);
    return rc;
}

int amtl_cfg_set_text(amtl_config *c, const key_def *k, const char *value, const origin *o,
                      amtl_status *st)
{
    if (amtl_cfg_is_list(k))
        return set_list_text(c, k, value, o, st);
    return amtl_cfg_set_scalar(c, k, value, o, 0, st);
}

/* ---- whole files and overrides ---- */

int amtl_config_load_string(amtl_config *c, const char *yaml, size_t len,
                            const char *source, amtl_status *st)
{
    origin o = {source ? source : "<string>", NULL, NULL};
    amtl_config tmp;
    if (amtl_cfg_copy(&tmp, c, st))
        return -1;
    if (apply_yaml(&tmp, yaml, len, &o, st)) {
        amtl_config_free(&tmp);
        return -1;
    }
    amtl_config_free(c);
    *c = tmp;
    return 0;
}

int amtl_config_load_file(amtl_config *c, const char *path, amtl_status *st)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return amtl_error(st, AMTL_EIO, "cannot open '%s': %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(f);
                return amtl_cfg_oom(st);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        fclose(f);
        return amtl_error(st, AMTL_EIO, "cannot read '%s': %s", path, strerror(e));
    }
    fclose(f);
    int rc = amtl_config_load_string(c, buf, len, path, st);
    free(buf);
    return rc;
}

int amtl_config_set(amtl_config *c, const char *key, const char *value,
                    amtl_status *st)
{
    if (!key || !value)
        return amtl_error(st, AMTL_EUSAGE, "--set: missing key or value");
    origin o = {NULL, key, value};
    const key_def *k = amtl_cfg_find_key(key);
    if (!k)
        return amtl_cfg_unknown_key(st, &o, 0, key, 0);
    return amtl_cfg_set_text(c, k, value, &o, st);
}

int amtl_config_set_kv(amtl_config *c, const char *kv, amtl_status *st)
{
    const char *eq = kv ? strchr(kv, '=') : NULL;
    if (!eq)
        return amtl_error(st, AMTL_EUSAGE, "--set '%s': missing '=' (want key=value)",
                          kv ? kv : "");
    size_t n = (size_t)(eq - kv);
    char *key = malloc(n + 1);
    if (!key)
        return amtl_cfg_oom(st);
    memcpy(key, kv, n);
    key[n] = '\0';
    int rc = amtl_config_set(c, key, eq + 1, st);
    free(key);
    return rc;
}
