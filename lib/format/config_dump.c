/* config_dump.c — writing the configuration: the YAML dump (what files
 * store and amtl_config_load_string reads back), the keys of one section or
 * stage, the keys set as overrides, the schedule of a search as make
 * variables, and --help-config.
 */
#include "format/config_table.h"
#include "format/io.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Plain when every YAML reader takes it as this very string; otherwise
 * double-quoted, also for words other readers would turn into a boolean,
 * null or number. */
static int needs_quotes(const char *s)
{
    static const char *const words[] = {"true", "false", "yes", "no", "on", "off",
                                        "y", "n", "null", "~"};
    if (!*s || strchr("-.+=", *s))
        return 1;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_./+=-", *p))
            return 1;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasecmp(s, words[i]) == 0)
            return 1;
    char *end;
    strtod(s, &end);
    return *end == '\0';
}

/* YAML's printable set; the rest, and the Unicode line breaks YAML would
 * fold, are escaped. */
static int yaml_printable(uint32_t cp)
{
    if (cp == 0x85 || cp == 0x2028 || cp == 0x2029)
        return 0;
    return (cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xd7ff) ||
           (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

static void sb_scalar(amtl_strbuf *b, const char *s)
{
    if (!needs_quotes(s)) {
        amtl_strbuf_printf(b, "%s", s);
        return;
    }
    amtl_strbuf_printf(b, "\"");
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        int n = amtl_cfg_utf8_decode(p, &cp);
        if (!n) { /* unreachable for stored values; keep the dump valid YAML */
            cp = 0xfffd;
            n = 1;
        }
        if (cp == '"' || cp == '\\')
            amtl_strbuf_printf(b, "\\%c", (char)cp);
        else if (cp == '\n')
            amtl_strbuf_printf(b, "\\n");
        else if (cp == '\t')
            amtl_strbuf_printf(b, "\\t");
        else if (cp == '\r')
            amtl_strbuf_printf(b, "\\r");
        else if (yaml_printable(cp))
            amtl_strbuf_printf(b, "%.*s", n, (const char *)p);
        else if (cp < 0x100)
            amtl_strbuf_printf(b, "\\x%02x", (unsigned)cp);
        else if (cp < 0x10000)
            amtl_strbuf_printf(b, "\\u%04x", (unsigned)cp);
        else
            amtl_strbuf_printf(b, "\\U%08x", (unsigned)cp);
        p += n;
    }
    amtl_strbuf_printf(b, "\"");
}

/* The shortest text that reads back to exactly v (9 digits always do). */
static void sb_float(amtl_strbuf *b, float v)
{
    char buf[64];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
        float back;
        if (amtl_cfg_parse_float(buf, &back) == PARSE_OK && back == v)
            break;
    }
    amtl_strbuf_printf(b, "%s", buf);
}

/* Appends key k's value as the dump writes it; a string raw, as --set takes
 * it, when raw.  -1 when a number is not finite. */
static int put_value(amtl_strbuf *b, const amtl_config *c, const key_def *k, int raw)
{
    switch (k->type) {
    case K_INT:
        amtl_strbuf_printf(b, "%d", *CFIELD(c, k, int));
        break;
    case K_LONG:
        amtl_strbuf_printf(b, "%ld", *CFIELD(c, k, long));
        break;
    case K_BOOL:
        amtl_strbuf_printf(b, "%s", *CFIELD(c, k, int) ? "true" : "false");
        break;
    case K_FLOAT: {
        float v = *CFIELD(c, k, float);
        if (!isfinite(v))
            return -1;
        sb_float(b, v);
        break;
    }
    case K_STRING: {
        const char *s = *CFIELD(c, k, char *);
        if (raw)
            amtl_strbuf_printf(b, "%s", s ? s : "");
        else
            sb_scalar(b, s ? s : "");
        break;
    }
    case K_STRLIST: {
        const amtl_strlist *l = CFIELD(c, k, amtl_strlist);
        amtl_strbuf_printf(b, "[");
        for (int j = 0; j < l->n; j++) {
            amtl_strbuf_printf(b, "%s", j ? ", " : "");
            sb_scalar(b, l->items[j]);
        }
        amtl_strbuf_printf(b, "]");
        break;
    }
    case K_FLOATLIST: {
        const amtl_floatlist *l = CFIELD(c, k, amtl_floatlist);
        amtl_strbuf_printf(b, "[");
        for (int j = 0; j < l->n; j++) {
            if (!isfinite(l->items[j]))
                return -1;
            amtl_strbuf_printf(b, "%s", j ? ", " : "");
            sb_float(b, l->items[j]);
        }
        amtl_strbuf_printf(b, "]");
        break;
    }
    case K_INTLIST: {
        const amtl_intlist *l = CFIELD(c, k, amtl_intlist);
        amtl_strbuf_printf(b, "[");
        for (int j = 0; j < l->n; j++)
            amtl_strbuf_printf(b, "%s%d", j ? ", " : "", l->items[j]);
        amtl_strbuf_printf(b, "]");
        break;
    }
    }
    return 0;
}

/* Which keys a writer takes, and how it writes them. */
typedef struct {
    const char *section; /* only this section's keys; NULL: every section */
    unsigned stages;     /* only keys of one of these stages; 0: every key */
    int given;           /* only the keys a profile, a file or an override set */
    int results;         /* only keys of some stage (no run setting) */
    int headers;         /* a "# section" line before each section's keys */
    int as_set;          /* KEY=VALUE lines (--set), not YAML */
} selection;

/* The selected keys, one a line, after what b holds; the text into *out. */
static int write_keys(amtl_strbuf *b, const amtl_config *c, const selection *sel, char **out,
                      amtl_status *st)
{
    const char *section = NULL;
    *out = NULL;
    for (int i = 0; i < amtl_cfg_n_keys; i++) {
        const key_def *k = &amtl_cfg_keys[i];
        if ((sel->section && strcmp(sel->section, k->section) != 0) ||
            (sel->stages && !(k->stages & sel->stages)) ||
            (sel->given && !amtl_cfg_is_given(c, i)) || (sel->results && !k->stages))
            continue;
        if (sel->headers && (!section || strcmp(section, k->section) != 0)) {
            section = k->section;
            amtl_strbuf_printf(b, "\n# %s\n", section);
        }
        amtl_strbuf_printf(b, "%s%s", k->name, sel->as_set ? "=" : ": ");
        if (sel->as_set && k->type == K_STRING) {
            const char *s = *CFIELD(c, k, char *);
            if (s && strpbrk(s, "\n\r")) {
                free(b->data);
                return amtl_error(st, AMTL_EUSAGE,
                                  "key '%s' holds a line break, which a KEY=VALUE line cannot "
                                  "carry", k->name);
            }
        }
        if (put_value(b, c, k, sel->as_set)) {
            free(b->data);
            return amtl_error(st, AMTL_EUSAGE, "key '%s' holds a value that is not finite",
                              k->name);
        }
        amtl_strbuf_printf(b, "\n");
    }
    amtl_strbuf_printf(b, "%s", ""); /* text, even when no key was selected */
    if (b->failed) {
        free(b->data);
        return amtl_error(st, AMTL_ENOMEM, "out of memory writing the configuration");
    }
    *out = b->data;
    return 0;
}

int amtl_config_dump(const amtl_config *c, char **out, amtl_status *st)
{
    amtl_strbuf b = {0};
    selection sel = {.headers = 1};
    amtl_strbuf_printf(&b, "# amtl configuration\n");
    return write_keys(&b, c, &sel, out, st);
}

int amtl_config_dump_recorded(const amtl_config *c, char **out, amtl_status *st)
{
    amtl_strbuf b = {0};
    selection sel = {.headers = 1, .results = 1};
    amtl_strbuf_printf(&b, "# amtl configuration\n");
    return write_keys(&b, c, &sel, out, st);
}

int amtl_config_dump_section(const amtl_config *c, const char *section, char **out,
                             amtl_status *st)
{
    *out = NULL;
    if (amtl_cfg_find_section(section) < 0)
        return amtl_error(st, AMTL_EUSAGE, "no section '%s' in the configuration", section);
    amtl_strbuf b = {0};
    selection sel = {.section = section};
    return write_keys(&b, c, &sel, out, st);
}

int amtl_config_dump_stage(const amtl_config *c, amtl_stage stage, char **out, amtl_status *st)
{
    const char *name = amtl_config_stage_name(stage);
    *out = NULL;
    if (!name)
        return amtl_error(st, AMTL_EUSAGE, "no stage %#x", (unsigned)stage);
    /* finetune_epochs as the schedule resolves it: what the stage runs */
    amtl_schedule sched;
    amtl_config_schedule(c, &sched);
    amtl_config resolved = *c; /* shallow: read only */
    resolved.finetune_epochs = sched.finetune;
    amtl_strbuf b = {0};
    selection sel = {.stages = (unsigned)stage};
    amtl_strbuf_printf(&b, "# keys of the %s stage\n", name);
    return write_keys(&b, &resolved, &sel, out, st);
}

int amtl_config_dump_overrides(const amtl_config *c, char **out, amtl_status *st)
{
    amtl_strbuf b = {0};
    selection sel = {.given = 1, .as_set = 1};
    return write_keys(&b, c, &sel, out, st);
}

/* ---- the schedule of a search ---- */

void amtl_config_schedule(const amtl_config *c, amtl_schedule *s)
{
    s->warmup = c->warmup_epochs;
    s->search = c->full_arch_train_epochs;
    s->epochs = c->epochs;
    s->no_finetune = 0;
    if (c->finetune_epochs > 0) {
        s->finetune = c->finetune_epochs;
        return;
    }
    /* the reference counts every epoch in epochs, the frozen one too */
    long long left = (long long)c->epochs - c->warmup_epochs - c->full_arch_train_epochs - 1;
    s->finetune = left > 0 ? (int)left : 0;
    s->no_finetune = left < 0;
}

int amtl_config_dump_schedule(const amtl_config *c, char **out, amtl_status *st)
{
    amtl_schedule s;
    amtl_config_schedule(c, &s);
    amtl_strbuf b = {0};
    amtl_strbuf_printf(&b,
                       "# the schedule of a search and the labels the configuration names\n"
                       "WARMUP_EPOCHS := %d\nSEARCH_EPOCHS := %d\nFINETUNE_EPOCHS := %d\n"
                       "EPOCHS := %d\nN_LABELS := %d\n",
                       s.warmup, s.search, s.finetune, s.epochs, c->labels.n);
    /* the export thresholds of the pipelines (%g: 0.45, not 0.449999988, in
     * file names and back on amtl-discretize's command line) */
    amtl_strbuf_printf(&b, "EXPORT_THRESHOLDS :=");
    if (c->export_candidates.n == 0)
        amtl_strbuf_printf(&b, " %g", (double)c->select_threshold);
    for (int i = 0; i < c->export_candidates.n; i++)
        amtl_strbuf_printf(&b, " %g", (double)c->export_candidates.items[i]);
    amtl_strbuf_printf(&b, "\nRETRAIN_CANDIDATES := %d\nLINEAR_CANDIDATE := %d\n"
                       "LINEAR_MARGIN := %g\n",
                       c->retrain_candidates ? 1 : 0, c->linear_candidate ? 1 : 0,
                       (double)c->linear_margin);
    *out = NULL;
    if (b.failed) {
        free(b.data);
        return amtl_error(st, AMTL_ENOMEM, "out of memory writing the schedule");
    }
    *out = b.data;
    return 0;
}

/* ---- --help-config ---- */

void amtl_config_describe(void *file)
{
    FILE *f = file;
    enum { DEF_WIDTH = 16 };
    int kw = 0;
    for (int i = 0; i < amtl_cfg_n_keys; i++) {
        int n = (int)strlen(amtl_cfg_keys[i].name);
        kw = n > kw ? n : kw;
    }
    fprintf(f, "  %-*s  %-*s  %s\n", kw, "key", DEF_WIDTH, "default", "description");
    const char *section = NULL;
    for (int i = 0; i < amtl_cfg_n_keys; i++) {
        const key_def *k = &amtl_cfg_keys[i];
        if (!section || strcmp(section, k->section) != 0) {
            section = k->section;
            fprintf(f, "%s:\n", section);
        }
        amtl_strbuf b = {0};
        if (k->type == K_STRING)
            sb_scalar(&b, k->def);
        const char *def = b.data && !b.failed ? b.data : k->def;
        if ((int)strlen(def) <= DEF_WIDTH)
            fprintf(f, "  %-*s  %-*s  %s\n", kw, k->name, DEF_WIDTH, def, k->help);
        else /* too long for the column: the description goes below it */
            fprintf(f, "  %-*s  %s\n  %-*s  %-*s  %s\n", kw, k->name, def, kw, "",
                    DEF_WIDTH, "", k->help);
        free(b.data);
    }
}

