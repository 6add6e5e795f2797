/* test_csv.c — the streaming CSV reader's edge cases, number parsing, and the
 * string -> index hash map amtl-prep builds vocabularies with. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data/csv.h"
#include "data/label.h"
#include "data/strmap.h"
#include "test.h"

/* Opens text as a CSV stream named "mem". */
static FILE *mem(const char *text)
{
    return fmemopen((void *)text, strlen(text), "r");
}

/* Reads every record of text and renders it as "f1|f2\n" lines, with the
 * line each record starts on: "L:f1|f2\n". */
static int render_trim(const char *text, char delim, int trim, char *out, size_t cap,
                       amtl_status *st)
{
    FILE *fp = mem(text);
    amtl_csv r;
    if (amtl_csv_open_stream(&r, fp, "mem", delim, st)) {
        fclose(fp);
        return -1;
    }
    r.trim = trim;
    size_t p = 0;
    out[0] = '\0';
    int k;
    while ((k = amtl_csv_next(&r, st)) == 1) {
        p += (size_t)snprintf(out + p, cap - p, "%ld:", r.line);
        for (int i = 0; i < r.n_fields; i++)
            p += (size_t)snprintf(out + p, cap - p, "%s%s", i ? "|" : "",
                                  amtl_csv_field(&r, i));
        p += (size_t)snprintf(out + p, cap - p, "\n");
    }
    amtl_csv_close(&r);
    fclose(fp);
    return k;
}

static int render(const char *text, char delim, char *out, size_t cap, amtl_status *st)
{
    return render_trim(text, delim, 0, out, cap, st);
}

static void test_plain_records(void)
{
    char out[512];
    amtl_status st;
    CHECK_OK(render("a,b,c\n1,2,3\n", ',', out, sizeof out, &st), &st);
    CHECKF(!strcmp(out, "1:a|b|c\n2:1|2|3\n"), "%s", out);
}

static void test_quotes(void)
{
    char out[512];
    amtl_status st;
    CHECK_OK(render("a,\"b,c\",\"d\"\"e\"\n\"\",x\n", ',', out, sizeof out, &st), &st);
    CHECKF(!strcmp(out, "1:a|b,c|d\"e\n2:|x\n"), "%s", out);
    /* a newline inside quotes: the next record starts two lines later */
    CHECK_OK(render("\"x\ny\",z\nnext,1\n", ',', out, sizeof out, &st), &st);
    CHECKF(!strcmp(out, "1:x\ny|z\n3:next|1\n"), "%s", out);
}

static void test_crlf(void)
{
    char out[512];
    amtl_status st;
    CHECK_OK(render("a,b\r\nc,\"d\"\r\ne,f\r", ',', out, sizeof out, &st), &st);
    CHECKF(!strcmp(out, "1:a|b\n2:c|d\n3:e|f\n"), "%s", out);
}

static void test_empty_fields(void)
{
    char out[512];
    amtl_status st;
    CHECK_OK(render(",a,,\n,\n", ',', out, sizeof out, &st), &st);
    CHECKF(!strcmp(out, "1:|a||\n2:|\n"), "%s", out);
}

static void test_last_line_without_newline(void)
{
    char out[512];
    amtl_status st;
    CHECK_OK(render("a,b\nc,d", ',', out, sizeof out, &st), &st);
    CHECKF(!strcmp(out, "1:a|b\n2:c|d\n"), "%s", out);
    CHECK_OK(render("a,b\n\"c\"", ',', out, sizeof out, &st), &st);
    CHECKF(!strcmp(out, "1:a|b\n2:c\n"), "%s", out);
}

static void test_blank_lines_bom_and_tab(void)
{
    char out[512];
    amtl_status st;
    CHECK_OK(render("\xef\xbb\xbfh1,h2\n\n\r\n1,2\n\n", ',', out, sizeof out, &st), &st);
    CHECKF(!strcmp(out, "1:h1|h2\n4:1|2\n"), "%s", out);
    CHECK_OK(render("a\tb,c\n", '\t', out, sizeof out, &st), &st);
    CHECKF(!strcmp(out, "1:a|b,c\n"), "%s", out);
    CHECK_OK(render("", ',', out, sizeof out, &st), &st);
    CHECK(out[0] == '\0');
}

static void test_errors(void)
{
    char out[512];
    amtl_status st;
    CHECK(render("a,b\n1,\"open\n2,3\n", ',', out, sizeof out, &st) == -1);
    CHECKF(!strcmp(st.msg, "mem:2:2: unterminated quoted field"), "%s", st.msg);
    CHECK(st.code == AMTL_EDATA);
    CHECK(render("a,\"b\"x,c\n", ',', out, sizeof out, &st) == -1);
    CHECKF(!strcmp(st.msg, "mem:1:2: unexpected 'x' after a closing quote"), "%s", st.msg);
    static const char bin[] = "ab,c\nd\x01,e\n";
    CHECK(render(bin, ',', out, sizeof out, &st) == -1);
    CHECKF(!strcmp(st.msg, "mem:2:1: control byte 0x01: not a text file"), "%s", st.msg);
    CHECK(render("a,b\rc\n", ',', out, sizeof out, &st) == -1);
    CHECKF(!strcmp(st.msg, "mem:1:2: control byte 0x0d: not a text file"), "%s", st.msg);
}

/* A record longer than the read buffer, and many records across refills. */
static void test_long_records(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/long.csv", test_tmpdir());
    FILE *fp = fopen(path, "w");
    CHECK(fp);
    for (int i = 0; i < 200000; i++)
        fputc('x', fp);
    fputs(",\"", fp);
    for (int i = 0; i < 100000; i++)
        fputs(i % 1000 ? "y" : "\"\"", fp);
    fputs("\"\n", fp);
    for (int i = 0; i < 20000; i++)
        fprintf(fp, "%d,row%d\r\n", i, i);
    fclose(fp);
    amtl_csv r;
    amtl_status st;
    CHECK_OK(amtl_csv_open(&r, path, ',', &st), &st);
    CHECK(amtl_csv_next(&r, &st) == 1);
    CHECK(r.n_fields == 2);
    CHECK(amtl_csv_field_len(&r, 0) == 200000);
    CHECK(amtl_csv_field_len(&r, 1) == 100000);
    CHECK(amtl_csv_field(&r, 1)[0] == '"');
    int n = 0;
    while (amtl_csv_next(&r, &st) == 1) {
        char want[32];
        snprintf(want, sizeof want, "row%d", n);
        if (r.n_fields != 2 || strcmp(amtl_csv_field(&r, 1), want) || r.line != n + 2)
            break;
        n++;
    }
    amtl_csv_close(&r);
    CHECKF(n == 20000, "%d records", n);
}

static void test_trim(void)
{
    char out[512];
    amtl_status st;
    /* Adult's ", " separator; spaces inside a value stay */
    CHECK_OK(render_trim("age, work class , income\n39,  State-gov, >50K. \n", ',', 1, out,
                         sizeof out, &st), &st);
    CHECKF(!strcmp(out, "1:age|work class|income\n2:39|State-gov|>50K.\n"), "%s", out);
    /* quoted values keep their own spaces; blanks around the quotes go;
     * a line of blanks is a blank line; tabs are blanks too */
    CHECK_OK(render_trim("  \" a \" , b\t\n   \n\t,\" \"\n", ',', 1, out, sizeof out, &st),
             &st);
    CHECKF(!strcmp(out, "1: a |b\n3:| \n"), "%s", out);
    /* with a tab delimiter only spaces are trimmed; empty fields stay */
    CHECK_OK(render_trim("a \t\t b\n", '\t', 1, out, sizeof out, &st), &st);
    CHECKF(!strcmp(out, "1:a||b\n"), "%s", out);
    /* without trim nothing changes */
    CHECK_OK(render("a , b\n", ',', out, sizeof out, &st), &st);
    CHECKF(!strcmp(out, "1:a | b\n"), "%s", out);
}

/* Writes text as n gzip members (split evenly) to path, minus cut bytes. */
static int write_gz(const char *path, const char *text, int n, size_t cut)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.part", path);
    FILE *out = fopen(path, "wb");
    if (!out)
        return -1;
    size_t len = strlen(text), step = (len + (size_t)n - 1) / (size_t)n;
    for (size_t off = 0; off < len; off += step) {
        gzFile g = gzopen(tmp, "wb");
        size_t k = len - off < step ? len - off : step;
        if (!g || gzwrite(g, text + off, (unsigned)k) != (int)k || gzclose(g) != Z_OK)
            return -1;
        FILE *in = fopen(tmp, "rb");
        char buf[4096];
        size_t got;
        while (in && (got = fread(buf, 1, sizeof buf, in)) > 0)
            fwrite(buf, 1, got, out);
        if (in)
            fclose(in);
    }
    long size = ftell(out);
    fclose(out);
    remove(tmp);
    return cut ? truncate(path, size - (long)cut) : 0;
}

static void test_gzip(void)
{
    char path[512], text[8192];
    size_t p = 0;
    p += (size_t)snprintf(text + p, sizeof text - p, "id,name\n");
    for (int i = 0; i < 500; i++)
        p += (size_t)snprintf(text + p, sizeof text - p, "%d,row%d\n", i, i);
    snprintf(path, sizeof path, "%s/data.csv.gz", test_tmpdir());
    amtl_status st;
    /* one member, then three concatenated ones (as cat a.gz b.gz writes) */
    for (int members = 1; members <= 3; members += 2) {
        CHECK(write_gz(path, text, members, 0) == 0);
        amtl_csv r;
        CHECK_OK(amtl_csv_open(&r, path, ',', &st), &st);
        int n = 0, k;
        while ((k = amtl_csv_next(&r, &st)) == 1) {
            char want[32];
            snprintf(want, sizeof want, n ? "row%d" : "name", n - 1);
            if (r.n_fields != 2 || strcmp(amtl_csv_field(&r, 1), want) || r.line != n + 1)
                break;
            n++;
        }
        int64_t bytes = r.bytes, size = r.size;
        amtl_csv_close(&r);
        CHECKF(k == 0 && n == 501, "%d members: %d records, %s", members, n, st.msg);
        CHECK(bytes == size); /* compressed bytes: progress ends at the size */
    }
    /* a truncated file is an error, not a short read */
    CHECK(write_gz(path, text, 1, 10) == 0);
    amtl_csv r;
    CHECK_OK(amtl_csv_open(&r, path, ',', &st), &st);
    int k;
    while ((k = amtl_csv_next(&r, &st)) == 1)
        ;
    amtl_csv_close(&r);
    CHECK(k == -1);
    CHECKF(!strcmp(st.msg + strlen(st.msg) - strlen("truncated gzip data"),
                   "truncated gzip data"), "%s", st.msg);
    CHECK(st.code == AMTL_EDATA);
    remove(path);
}

static void test_label_specs(void)
{
    amtl_prep_label l;
    amtl_status st;
    CHECK_OK(amtl_prep_label_parse(&l, "click", &st), &st);
    CHECK(!strcmp(l.task, "click") && !strcmp(l.column, "click") && l.n_values == 0);
    amtl_prep_label_free(&l);
    CHECK_OK(amtl_prep_label_parse(&l, "income==>50K|>50K.", &st), &st);
    CHECK(!strcmp(l.task, "income") && !strcmp(l.column, "income") && l.n_values == 2);
    CHECK(!strcmp(l.values[0], ">50K") && !strcmp(l.values[1], ">50K."));
    amtl_prep_label_free(&l);
    CHECK_OK(amtl_prep_label_parse(&l, "never_married=marital-status==Never-married", &st),
             &st);
    CHECK(!strcmp(l.task, "never_married") && !strcmp(l.column, "marital-status"));
    CHECK(l.n_values == 1 && !strcmp(l.values[0], "Never-married"));
    amtl_prep_label_free(&l);
    /* only the first "==" splits; a value may hold '=' and spaces */
    CHECK_OK(amtl_prep_label_parse(&l, "t=c==a = b==c", &st), &st);
    CHECK(!strcmp(l.column, "c") && l.n_values == 1 && !strcmp(l.values[0], "a = b==c"));
    amtl_prep_label_free(&l);
    static const struct {
        const char *item, *what;
    } bad[] = {
        {"=c==1", "an empty task name"},   {"t===1", NULL},
        {"==1", "no column before '=='"},
        {"t=c==", "an empty value"},       {"t=c==a||b", "an empty value"},
        {"t=c==a|", "an empty value"},     {"t===1|", "an empty value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = amtl_prep_label_parse(&l, bad[i].item, &st);
        if (!bad[i].what) { /* "t" "==" "=1": column t, value "=1" */
            CHECK_OK(rc, &st);
            CHECK(!strcmp(l.column, "t") && !strcmp(l.values[0], "=1"));
            amtl_prep_label_free(&l);
            continue;
        }
        CHECKF(rc == -1, "%s", bad[i].item);
        char want[256];
        snprintf(want, sizeof want,
                 "key 'labels': '%s' has %s (want column, or task=column==value|value...)",
                 bad[i].item, bad[i].what);
        CHECKF(!strcmp(st.msg, want), "%s", st.msg);
        CHECK(st.code == AMTL_EUSAGE);
        amtl_prep_label_free(&l); /* safe after a failure */
    }
}

static void test_open_errors(void)
{
    amtl_csv r;
    amtl_status st;
    CHECK(amtl_csv_open(&r, "/nonexistent/x.csv", ',', &st) == -1);
    CHECKF(!strcmp(st.msg, "cannot open '/nonexistent/x.csv': No such file or directory"),
           "%s", st.msg);
    CHECK(st.code == AMTL_EIO);
    amtl_csv_close(&r); /* safe after a failed open */
}

static void test_parse_numbers(void)
{
    double x;
    long long n;
    CHECK(amtl_csv_parse_double("1.5", &x) == 0 && x == 1.5);
    CHECK(amtl_csv_parse_double(" -2 ", &x) == 0 && x == -2);
    CHECK(amtl_csv_parse_double("1e3", &x) == 0 && x == 1000);
    CHECK(amtl_csv_parse_double(".25", &x) == 0 && x == 0.25);
    CHECK(amtl_csv_parse_double("", &x) == -1);
    CHECK(amtl_csv_parse_double("abc", &x) == -1);
    CHECK(amtl_csv_parse_double("1.5x", &x) == -1);
    CHECK(amtl_csv_parse_double("nan", &x) == -1);
    CHECK(amtl_csv_parse_double("inf", &x) == -1);
    CHECK(amtl_csv_parse_double("1e999", &x) == -1);
    CHECK(amtl_csv_parse_double("0x10", &x) == -1);
    CHECK(amtl_csv_parse_long("42", &n) == 0 && n == 42);
    CHECK(amtl_csv_parse_long("-7", &n) == 0 && n == -7);
    CHECK(amtl_csv_parse_long("4.5", &n) == -1);
    CHECK(amtl_csv_parse_long("", &n) == -1);
    CHECK(amtl_csv_parse_long("99999999999999999999", &n) == -1);
}

static void test_strmap(void)
{
    amtl_strmap m;
    amtl_status st;
    CHECK_OK(amtl_strmap_init(&m, &st), &st);
    char key[32];
    for (int i = 0; i < 100000; i++) {
        int len = snprintf(key, sizeof key, "k%d", i * 7919);
        if (amtl_strmap_put(&m, key, (size_t)len, &st) != i)
            break;
    }
    CHECK(m.n == 100000);
    for (int i = 0; i < 100000; i += 97) {
        int len = snprintf(key, sizeof key, "k%d", i * 7919);
        CHECK(amtl_strmap_find(&m, key, (size_t)len) == i);
        CHECK(amtl_strmap_put(&m, key, (size_t)len, &st) == i);
    }
    CHECK(amtl_strmap_find(&m, "absent", 6) == -1);
    /* binary keys: NUL bytes and prefixes are distinct keys */
    int32_t a[3] = {1, 0, 2}, b[3] = {1, 0, 3};
    int32_t ka = amtl_strmap_put(&m, a, sizeof a, &st);
    int32_t kb = amtl_strmap_put(&m, b, sizeof b, &st);
    CHECK(ka == 100000 && kb == 100001);
    CHECK(amtl_strmap_find(&m, a, 4) == -1);
    CHECK(amtl_strmap_put(&m, "", 0, &st) == 100002);
    CHECK(amtl_strmap_find(&m, "", 0) == 100002);
    size_t len;
    const char *k = amtl_strmap_key(&m, 5, &len);
    CHECK(len == 6 && !memcmp(k, "k39595", 6));
    amtl_strmap_free(&m);
    amtl_strmap_free(&m); /* safe twice */
}

int main(void)
{
    RUN(test_plain_records);
    RUN(test_quotes);
    RUN(test_crlf);
    RUN(test_empty_fields);
    RUN(test_last_line_without_newline);
    RUN(test_blank_lines_bom_and_tab);
    RUN(test_errors);
    RUN(test_long_records);
    RUN(test_trim);
    RUN(test_gzip);
    RUN(test_label_specs);
    RUN(test_open_errors);
    RUN(test_parse_numbers);
    RUN(test_strmap);
    TEST_MAIN_END();
}
