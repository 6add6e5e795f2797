/* test_csv.c — the streaming CSV reader's edge cases, number parsing, and the
 * string -> index hash map amtl-prep builds vocabularies with. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "prep.h"
#include "test.h"

/* Opens text as a CSV stream named "mem". */
static FILE *mem(const char *text)
{
    return fmemopen((void *)text, strlen(text), "r");
}

/* Reads every record of text and renders it as "f1|f2\n" lines, with the
 * line each record starts on: "L:f1|f2\n". */
static int render(const char *text, char delim, char *out, size_t cap, amtl_status *st)
{
    FILE *fp = mem(text);
    amtl_csv r;
    if (amtl_csv_open_stream(&r, fp, "mem", delim, st)) {
        fclose(fp);
        return -1;
    }
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
    RUN(test_open_errors);
    RUN(test_parse_numbers);
    RUN(test_strmap);
    TEST_MAIN_END();
}
