/* test_strbuf.c — the text buffer and the JSON string and number writers. */
#include <math.h>

#include "format/strbuf.h"
#include "iotest.h"

static void test_strbuf(void)
{
    amtl_strbuf b = {0};
    char *expect = malloc(100000);
    size_t n = 0;
    for (int i = 0; i < 3000; i++) {
        amtl_strbuf_printf(&b, "line %d: %s\n", i,
                           i % 7 ? "x" : "a longer piece of text");
        n += (size_t)sprintf(expect + n, "line %d: %s\n", i,
                             i % 7 ? "x" : "a longer piece of text");
    }
    amtl_strbuf_printf(&b, "%s", "");
    int ok =
        !b.failed && b.len == n && strlen(b.data) == n && memcmp(b.data, expect, n) == 0;
    free(expect);
    amtl_strbuf_free(&b);
    CHECK(ok);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    /* one append larger than any doubling step */
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    amtl_strbuf_printf(&b, "<%s>", big);
    CHECK(!b.failed && b.len == sizeof big + 1 && b.data[0] == '<' &&
          b.data[b.len - 1] == '>');
    amtl_strbuf_free(&b);
}

/* JSON strings and numbers: escapes, invalid UTF-8, non-finite values. */
static void test_json_writers(void)
{
    amtl_strbuf b = {0};
    amtl_strbuf_json_str(&b, "a\"b\\c\n\x01\xc3\xa9\xff\xed\xa0\x80z");
    amtl_strbuf_printf(&b, " ");
    amtl_strbuf_json_num(&b, 0.25, 3);
    amtl_strbuf_printf(&b, " ");
    amtl_strbuf_json_num(&b, NAN, 3);
    amtl_strbuf_printf(&b, " ");
    amtl_strbuf_json_num(&b, -INFINITY, 3);
    int ok = !b.failed && b.data &&
             !strcmp(b.data, "\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\\ufffd\\ufffd\\ufffd\\ufffdz\" "
                             "0.250 null null");
    if (!ok)
        printf("# got: %s\n", b.data ? b.data : "(null)");
    amtl_strbuf_free(&b);
    CHECK(ok);
    CHECK(amtl_utf8_len((const unsigned char *)"\xf0\x9f\x98\x80") == 4);
    CHECK(amtl_utf8_len((const unsigned char *)"\xc0\xaf") == 0);  /* overlong */
}

int main(void)
{
    if (iotest_begin())
        return 1;
    RUN(test_strbuf);
    RUN(test_json_writers);
    iotest_end();
    TEST_MAIN_END();
}
