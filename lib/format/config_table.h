/* config_table.h — inside the configuration code (lib/format/config_*.c):
 * the key table, where a value came from, and the value parsers that the
 * reader, the writers and validation share.  Not for other modules: they
 * use config.h.
 *
 *   config_keys.c   the table of keys, the stages, defaults, profiles, copying
 *                   and freeing
 *   config_value.c  one value: parsing, storing, messages that name its origin
 *   config_yaml.c   YAML files and --set text
 *   config_check.c  validation
 *   config_dump.c   the writers: YAML, the keys of a section or a stage, the
 *                   overrides, the schedule as make variables, --help-config
 */
#ifndef AMTL_CONFIG_TABLE_H
#define AMTL_CONFIG_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "format/config.h"

typedef enum {
    K_INT,
    K_LONG,
    K_FLOAT,
    K_BOOL,
    K_STRING,
    K_STRLIST, /* list types last: amtl_cfg_is_list() relies on it */
    K_FLOATLIST,
    K_INTLIST
} key_type;

typedef struct {
    const char *name;
    key_type type;
    size_t offset;
    const char *def;     /* default, in the syntax of --set */
    const char *section; /* model | train | search | data */
    unsigned stages;     /* the amtl_stage bits whose output the key changes */
    const char *help;
} key_def;

/* bounds of the table, for arrays indexed by key or section */
enum { AMTL_CFG_MAX_KEYS = AMTL_CONFIG_MAX_KEYS, AMTL_CFG_MAX_SECTIONS = 8 };

extern const key_def amtl_cfg_keys[];
extern const int amtl_cfg_n_keys;
extern const char *const amtl_cfg_sections[];
extern const int amtl_cfg_n_sections;

#define FIELD(c, k, T) ((T *)(void *)((char *)(c) + (k)->offset))
#define CFIELD(c, k, T) ((const T *)(const void *)((const char *)(c) + (k)->offset))

int amtl_cfg_is_list(const key_def *k);

/* amtl_config.given: key i was set by a profile, a file or an override */
static inline void amtl_cfg_mark_given(amtl_config *c, int i)
{
    c->given[i / 64] |= (uint64_t)1 << (i % 64);
}
static inline int amtl_cfg_is_given(const amtl_config *c, int i)
{
    return (int)(c->given[i / 64] >> (i % 64) & 1);
}
const key_def *amtl_cfg_find_key(const char *name);
int amtl_cfg_find_section(const char *name);
const char *amtl_cfg_type_want(key_type t);
/* Deep copy, so that a file either applies whole or not at all. */
int amtl_cfg_copy(amtl_config *dst, const amtl_config *src, amtl_status *st);

/* ---- where a value came from, for messages ---- */

typedef struct {
    const char *file;  /* YAML source name; NULL for --set */
    const char *key;   /* --set: the key and value as given */
    const char *value;
} origin;

/* "FILE:LINE: ..." or "--set KEY=VALUE: ..."; returns -1. */
int amtl_cfg_fail(amtl_status *st, int code, const origin *o, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int amtl_cfg_oom(amtl_status *st);
/* An unknown key, with a "did you mean" among the keys (and the section
 * names when with_sections). */
int amtl_cfg_unknown_key(amtl_status *st, const origin *o, int line, const char *name,
                         int with_sections);

/* ---- one value ---- */

enum { PARSE_OK = 0, PARSE_BAD = -1, PARSE_RANGE = -2 };

/* The whole text or nothing. */
int amtl_cfg_parse_float(const char *s, float *out);
/* One UTF-8 sequence: its length, 0 when invalid. */
int amtl_cfg_utf8_decode(const unsigned char *s, uint32_t *cp);

void amtl_cfg_free_strlist(amtl_strlist *l);
/* text is one scalar for a non-list key; line is for messages. */
int amtl_cfg_set_scalar(amtl_config *c, const key_def *k, const char *text, const origin *o,
                        int line, amtl_status *st);
/* Replaces a list key by n items; lines[i] (or line when lines is NULL)
 * locates item i.  The old list stays when an item is bad. */
int amtl_cfg_set_list(amtl_config *c, const key_def *k, char *const *items, const int *lines,
                      int n, const origin *o, int line, amtl_status *st);
/* A value in the syntax of --set (a list as "[a, b]", "a,b", one item or
 * nothing). */
int amtl_cfg_set_text(amtl_config *c, const key_def *k, const char *value, const origin *o,
                      amtl_status *st);

#endif
