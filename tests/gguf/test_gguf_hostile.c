/* test_gguf_hostile: malformed and hostile GGUF images, each with the error it must give
 * (code, and words naming the field). Images are parsed from exact-size heap copies so
 * that ASan sees any read past the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "om_err.h"
#include "om_gguf.h"
#include "om_type.h"

typedef struct img {
    uint8_t b[4096];
    size_t n;
} img;

static void put(img *x, const void *p, size_t n)
{
    assert_true(x->n + n <= sizeof x->b);
    memcpy(x->b + x->n, p, n);
    x->n += n;
}

static void u32(img *x, uint32_t v) { put(x, &v, 4); }
static void u64(img *x, uint64_t v) { put(x, &v, 8); }

static void zeros(img *x, size_t n)
{
    static const uint8_t z[1024];
    assert_true(n <= sizeof z);
    put(x, z, n);
}

static void str(img *x, const char *s)
{
    u64(x, strlen(s));
    put(x, s, strlen(s));
}

static void header(img *x, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    x->n = 0;
    put(x, "GGUF", 4);
    u32(x, version);
    u64(x, n_tensors);
    u64(x, n_kv);
}

static void pad(img *x, size_t align)
{
    static const uint8_t z[4096];
    put(x, z, (align - x->n % align) % align);
}

/* A tensor info. */
static void tinfo(img *x, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t type,
                  uint64_t offset)
{
    str(x, name);
    u32(x, n_dims);
    for (uint32_t j = 0; j < n_dims; j++)
        u64(x, (uint64_t)ne[j]);
    u32(x, type);
    u64(x, offset);
}

/* One tensor, no kv, aligned data of `data` zero bytes. */
static void one_tensor(img *x, uint32_t n_dims, const int64_t *ne, uint32_t type, uint64_t offset,
                       size_t data)
{
    header(x, 3, 1, 0);
    tinfo(x, "w", n_dims, ne, type, offset);
    pad(x, 32);
    zeros(x, data);
}

static int open_copy(const uint8_t *p, size_t n, const om_gguf_limits *lim, om_gguf **g,
                     char *err, size_t errlen)
{
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, p, n);
    int rc = om_gguf_open_mem(g, copy, n, lim, err, errlen);
    if (!rc)
        om_gguf_close(*g);
    free(copy);
    return rc;
}

#define expect(x, lim, code, ...) expect_(x, lim, code, __LINE__, (const char *[]){ __VA_ARGS__, NULL })

static void expect_(const img *x, const om_gguf_limits *lim, int code, int line, const char **needles)
{
    om_gguf *g;
    char err[1024];
    int rc = open_copy(x->b, x->n, lim, &g, err, sizeof err);
    if (rc != code)
        fail_msg("line %d: got %s (%s), want %s", line, om_errname(rc), rc ? err : "", om_errname(code));
    for (const char **s = needles; *s; s++)
        if (!strstr(err, *s))
            fail_msg("line %d: error \"%s\" does not mention \"%s\"", line, err, *s);
    if (code)
        assert_null(g);
}

static void test_header(void **state)
{
    img x;
    header(&x, 3, 0, 0);
    memcpy(x.b, "GGML", 4);
    expect(&x, NULL, OM_EFORMAT, "bad magic", "at offset 0");
    header(&x, 1, 0, 0);
    expect(&x, NULL, OM_EUNSUPPORTED, "version 1 ", "only 2 and 3");
    header(&x, 4, 0, 0);
    expect(&x, NULL, OM_EUNSUPPORTED, "version 4 ");
    header(&x, 0x03000000, 0, 0);
    expect(&x, NULL, OM_EUNSUPPORTED, "big-endian");
    header(&x, 2, 0, 0);
    expect(&x, NULL, OM_OK, "");                    /* v2: same layout, 64-bit counts */
    header(&x, 3, 0, 1ull << 62);
    expect(&x, NULL, OM_ERANGE, "n_kv 4611686018427387904", "limit of 65536", "at offset 16");
    header(&x, 3, 1ull << 62, 0);
    expect(&x, NULL, OM_ERANGE, "n_tensors", "limit");
    header(&x, 3, 0, 1000);
    expect(&x, NULL, OM_EFORMAT, "n_kv 1000 cannot fit");
    header(&x, 3, 1000, 0);
    expect(&x, NULL, OM_EFORMAT, "n_tensors 1000 cannot fit");
    header(&x, 3, 0, (uint64_t)-1);                 /* negative as i64 */
    expect(&x, NULL, OM_ERANGE, "n_kv");
}

static void test_kv(void **state)
{
    img x;
    header(&x, 3, 0, 1);
    u64(&x, 1ull << 62);
    zeros(&x, 16);
    expect(&x, NULL, OM_ERANGE, "kv[0]", "key length 4611686018427387904", "limit", "at offset 24");
    header(&x, 3, 0, 1);
    u64(&x, 100);
    put(&x, "abcdefgh", 8);
    expect(&x, NULL, OM_EFORMAT, "kv[0]", "key length 100 exceeds the 8 bytes left");

    header(&x, 3, 0, 1);
    str(&x, "k");
    u32(&x, OM_GGUF_STRING);
    u64(&x, 1ull << 60);
    expect(&x, NULL, OM_ERANGE, "kv[0] 'k'", "string value length");

    header(&x, 3, 0, 1);
    str(&x, "k");
    u32(&x, 13);
    u32(&x, 0);
    expect(&x, NULL, OM_EFORMAT, "kv[0] 'k'", "unknown value type 13", "at offset 33");

    header(&x, 3, 0, 1);
    str(&x, "k");
    u32(&x, OM_GGUF_U64);
    u32(&x, 0);
    expect(&x, NULL, OM_EFORMAT, "value needs 8 bytes but only 4");

    /* Arrays: a 12-byte array header must not make us allocate or read its count. */
    header(&x, 3, 0, 1);
    str(&x, "arr");
    u32(&x, OM_GGUF_ARRAY);
    u32(&x, OM_GGUF_U8);
    u64(&x, 1ull << 40);
    expect(&x, NULL, OM_ERANGE, "kv[0] 'arr'", "array count 1099511627776", "limit");
    om_gguf_limits big = { .max_array = 1ull << 62 };
    expect(&x, &big, OM_EFORMAT, "array of 1099511627776 u8 needs more");
    header(&x, 3, 0, 1);
    str(&x, "arr");
    u32(&x, OM_GGUF_ARRAY);
    u32(&x, OM_GGUF_STRING);
    u64(&x, 1u << 20);
    str(&x, "a");
    expect(&x, NULL, OM_EFORMAT, "array of 1048576 strings needs more");
    header(&x, 3, 0, 1);
    str(&x, "arr");
    u32(&x, OM_GGUF_ARRAY);
    u32(&x, OM_GGUF_STRING);
    u64(&x, 2);
    str(&x, "a");
    u64(&x, 1000);
    expect(&x, NULL, OM_EFORMAT, "array string length 1000 exceeds");
    header(&x, 3, 0, 1);
    str(&x, "arr");
    u32(&x, OM_GGUF_ARRAY);
    u32(&x, OM_GGUF_ARRAY);
    u64(&x, 1);
    expect(&x, NULL, OM_EUNSUPPORTED, "arrays of arrays are not supported");
    header(&x, 3, 0, 1);
    str(&x, "arr");
    u32(&x, OM_GGUF_ARRAY);
    u32(&x, 99);
    u64(&x, 1);
    expect(&x, NULL, OM_EFORMAT, "unknown array element type 99");

    header(&x, 3, 0, 2);
    str(&x, "dup");
    u32(&x, OM_GGUF_U8);
    put(&x, "x", 1);
    str(&x, "dup");
    u32(&x, OM_GGUF_U8);
    put(&x, "y", 1);
    expect(&x, NULL, OM_EFORMAT, "kv[1] 'dup'", "duplicate key (first at kv[0])");

    /* A hostile key must not reach the terminal as escape sequences. */
    header(&x, 3, 0, 1);
    str(&x, "\x1b[2J\x07");
    u32(&x, 77);
    expect(&x, NULL, OM_EFORMAT, "'?[2J?'");
}

static void alignment_kv(img *x, uint32_t type, uint32_t v)
{
    header(x, 3, 1, 1);
    str(x, "general.alignment");
    u32(x, type);
    u32(x, v);
    int64_t ne[1] = { 8 };
    tinfo(x, "w", 1, ne, OM_TYPE_F32, 0);
    pad(x, 64);
    u64(x, 0);
    u64(x, 0);
    u64(x, 0);
    u64(x, 0);
}

static void test_alignment(void **state)
{
    img x;
    alignment_kv(&x, OM_GGUF_U32, 0);
    expect(&x, NULL, OM_EFORMAT, "general.alignment", "alignment 0 is not a nonzero power of two");
    alignment_kv(&x, OM_GGUF_U32, 3);
    expect(&x, NULL, OM_EFORMAT, "alignment 3 is not");
    alignment_kv(&x, OM_GGUF_I32, 64);
    expect(&x, NULL, OM_EFORMAT, "must be u32, not i32");
    alignment_kv(&x, OM_GGUF_U32, 64);
    expect(&x, NULL, OM_OK, "");
    alignment_kv(&x, OM_GGUF_U32, 1u << 31);        /* data would start past the end */
    expect(&x, NULL, OM_EFORMAT, "data section (aligned to 2147483648) starts past the end");
}

static void test_tensor_info(void **state)
{
    img x;
    int64_t ne[5] = { 32, 2, 1, 1, 1 };
    one_tensor(&x, 2, ne, OM_TYPE_F32, 0, 256);
    expect(&x, NULL, OM_OK, "");
    one_tensor(&x, 5, ne, OM_TYPE_F32, 0, 256);
    expect(&x, NULL, OM_EFORMAT, "tensor[0] 'w'", "n_dims 5 (must be 1..4)", "at offset 33");
    one_tensor(&x, 0, ne, OM_TYPE_F32, 0, 256);
    expect(&x, NULL, OM_EFORMAT, "n_dims 0");
    int64_t zero[2] = { 32, 0 };
    one_tensor(&x, 2, zero, OM_TYPE_F32, 0, 256);
    expect(&x, NULL, OM_EFORMAT, "ne[1] = 0 (dims must be > 0)", "at offset 45");
    int64_t neg[2] = { -4, 2 };
    one_tensor(&x, 2, neg, OM_TYPE_F32, 0, 256);
    expect(&x, NULL, OM_EFORMAT, "ne[0] = -4");
    one_tensor(&x, 2, ne, 77, 0, 256);
    expect(&x, NULL, OM_EFORMAT, "unknown ggml type 77", "q4_0", "omnid computes: f32 f16 q4_0 q8_0 i32");
    one_tensor(&x, 2, ne, 4, 0, 256);               /* ggml removed Q4_2 */
    expect(&x, NULL, OM_EFORMAT, "unknown ggml type 4;");
    one_tensor(&x, 2, ne, (uint32_t)-1, 0, 256);
    expect(&x, NULL, OM_EFORMAT, "unknown ggml type 4294967295");
    one_tensor(&x, 2, ne, 12, 0, 256);              /* q4_K needs 256 per block */
    expect(&x, NULL, OM_EFORMAT, "ne[0] = 32", "q4_K");
    int64_t q4k[1] = { 256 };
    one_tensor(&x, 1, q4k, 12, 0, 144);             /* readable, just not computed */
    expect(&x, NULL, OM_OK, "");
    int64_t odd[1] = { 33 };
    one_tensor(&x, 1, odd, OM_TYPE_Q8_0, 0, 256);
    expect(&x, NULL, OM_EFORMAT, "ne[0] = 33 is not a whole number of q8_0 blocks");
    int64_t huge[2] = { 1ll << 32, 1ll << 32 };
    one_tensor(&x, 2, huge, OM_TYPE_F32, 0, 256);
    expect(&x, NULL, OM_EFORMAT, "element count overflows int64 at ne[1]");
    int64_t wide[1] = { 1ll << 62 };
    one_tensor(&x, 1, wide, OM_TYPE_F32, 0, 256);   /* 2^64 bytes */
    expect(&x, NULL, OM_EFORMAT, "ne[0] = 4611686018427387904", "overflows");
    int64_t big[2] = { 1ll << 40, 1ll << 20 };
    one_tensor(&x, 2, big, OM_TYPE_F32, 0, 256);
    expect(&x, NULL, OM_EFORMAT, "runs past the end of the data section (256 bytes)");
    one_tensor(&x, 2, ne, OM_TYPE_F32, 256, 256);
    expect(&x, NULL, OM_EFORMAT, "data at offset 256 + 256 bytes runs past the end");
    one_tensor(&x, 2, ne, OM_TYPE_F32, 1ull << 63, 256);
    expect(&x, NULL, OM_EFORMAT, "runs past the end");
    one_tensor(&x, 2, ne, OM_TYPE_F32, 4, 256);
    expect(&x, NULL, OM_EFORMAT, "offset 4 is not a multiple of the alignment 32");
    one_tensor(&x, 2, ne, OM_TYPE_F32, 0, 255);
    expect(&x, NULL, OM_EFORMAT, "runs past the end");

    header(&x, 3, 2, 0);
    tinfo(&x, "w", 1, ne, OM_TYPE_F32, 0);
    tinfo(&x, "w", 1, ne, OM_TYPE_F32, 128);
    pad(&x, 32);
    zeros(&x, 256);
    expect(&x, NULL, OM_EFORMAT, "tensor[1] 'w'", "duplicate tensor name (first at tensor[0])");

    /* Tensor infos end off-alignment and the file ends before the data section. */
    header(&x, 3, 1, 0);
    tinfo(&x, "w", 1, ne, OM_TYPE_F32, 0);
    expect(&x, NULL, OM_EFORMAT, "data section (aligned to 32) starts past the end");
}

static void test_limits(void **state)
{
    img x;
    header(&x, 3, 2, 3);
    for (int i = 0; i < 3; i++) {
        char k[32];
        snprintf(k, sizeof k, "general.k%d", i);
        str(&x, k);
        u32(&x, OM_GGUF_ARRAY);
        u32(&x, OM_GGUF_U16);
        u64(&x, 5);
        put(&x, "0123456789", 10);
    }
    int64_t ne[1] = { 8 };
    tinfo(&x, "a", 1, ne, OM_TYPE_F32, 0);
    tinfo(&x, "b", 1, ne, OM_TYPE_F32, 32);
    pad(&x, 32);
    zeros(&x, 64);
    expect(&x, NULL, OM_OK, "");
    om_gguf_limits l = { .max_kv = 2 };
    expect(&x, &l, OM_ERANGE, "n_kv 3 exceeds the limit of 2");
    l = (om_gguf_limits){ .max_tensors = 1 };
    expect(&x, &l, OM_ERANGE, "n_tensors 2 exceeds the limit of 1");
    l = (om_gguf_limits){ .max_string = 9 };
    expect(&x, &l, OM_ERANGE, "kv[0]", "key length 10 exceeds the limit of 9");
    l = (om_gguf_limits){ .max_array = 4 };
    expect(&x, &l, OM_ERANGE, "kv[0] 'general.k0'", "array count 5 exceeds the limit of 4");
}

/* A small valid file whose every proper prefix must be rejected: its last tensor ends the
 * file exactly (no trailing padding that a truncation could remove harmlessly). */
static void test_truncation(void **state)
{
    om_gguf_writer *w;
    assert_int_equal(om_gguf_writer_open(&w, 16), 0);
    const char *toks[] = { "a", "", "ccc" };
    int16_t arr[3] = { 1, -2, 3 };
    double f64 = 2.5;
    assert_int_equal(om_gguf_set_str(w, "general.name", "t"), 0);
    assert_int_equal(om_gguf_set_arr_str(w, "tok", toks, 3), 0);
    assert_int_equal(om_gguf_set_arr(w, "arr", OM_GGUF_I16, arr, 3), 0);
    assert_int_equal(om_gguf_set_val(w, "f", OM_GGUF_F64, &f64), 0);
    assert_int_equal(om_gguf_set_bool(w, "b", 1), 0);
    float data[32] = { 1 };
    int64_t ne1[1] = { 3 }, ne2[2] = { 4, 2 };
    assert_int_equal(om_gguf_add_tensor(w, "x", OM_TYPE_F32, 1, ne1, data), 0);
    assert_int_equal(om_gguf_add_tensor(w, "y", OM_TYPE_F16, 2, ne2, data), 0);
    void *buf;
    size_t size;
    assert_int_equal(om_gguf_write_mem(w, &buf, &size), 0);
    om_gguf_writer_free(w);

    om_gguf *g;
    char err[1024];
    assert_int_equal(open_copy(buf, size, NULL, &g, err, sizeof err), 0);
    for (size_t n = 0; n < size; n++) {
        err[0] = 0;
        int rc = open_copy(buf, n, NULL, &g, err, sizeof err);
        if (!rc)
            fail_msg("prefix of %zu of %zu bytes was accepted", n, size);
        assert_null(g);
        assert_true(rc == OM_EFORMAT || rc == OM_ERANGE);
        if (!strstr(err, "offset"))
            fail_msg("prefix %zu: error without an offset: %s", n, err);
    }
    free(buf);
}

/* Every seed of the fuzz corpus parses or fails cleanly; the valid seeds are walked. */
static void test_corpus(void **state)
{
    DIR *d = opendir(OMNID_CORPUS_DIR);
    assert_non_null(d);
    int files = 0, opened = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", OMNID_CORPUS_DIR, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        img x;
        x.n = fread(x.b, 1, sizeof x.b, f);
        fclose(f);
        uint8_t *copy = malloc(x.n);
        memcpy(copy, x.b, x.n);
        om_gguf *g;
        char err[1024];
        files++;
        if (!om_gguf_open_mem(&g, copy, x.n, NULL, err, sizeof err)) {
            opened++;
            for (int64_t i = 0; i < om_gguf_n_kv(g); i++) {
                const om_gguf_kv *kv = om_gguf_kv_at(g, i);
                om_gguf_str s;
                if (kv->type == OM_GGUF_ARRAY && kv->arr_type == OM_GGUF_STRING)
                    for (uint64_t j = 0; j < kv->arr_n; j++)
                        assert_int_equal(om_gguf_arr_str(kv, j, &s), 0);
            }
            for (int64_t i = 0; i < om_gguf_n_tensors(g); i++) {
                const om_gguf_tensor *t = om_gguf_tensor_at(g, i);
                const uint8_t *p = t->data;
                assert_true(p >= copy && p + t->nbytes <= copy + x.n);
            }
            om_gguf_close(g);
        } else {
            assert_true(err[0] != 0);
        }
        free(copy);
    }
    closedir(d);
    assert_true(files >= 3);
    assert_true(opened >= 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_kv),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_tensor_info),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
