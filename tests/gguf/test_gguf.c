/* test_gguf: writer -> reader round trips for every value type, arrays of each, tensors
 * of every computed type under several alignments, and llama.cpp's own vocab files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "om_err.h"
#include "om_gguf.h"
#include "om_type.h"

static int str_eq(om_gguf_str s, const char *c)
{
    return s.n == strlen(c) && !memcmp(s.p, c, s.n);
}

static om_gguf *open_buf(om_gguf_writer *w, void **buf)
{
    size_t size;
    om_gguf *g;
    char err[512];
    assert_int_equal(om_gguf_write_mem(w, buf, &size), 0);
    int rc = om_gguf_open_mem(&g, *buf, size, NULL, err, sizeof err);
    if (rc)
        fail_msg("open_mem: %s", err);
    return g;
}

/* One key of every scalar type, then an array of every scalar type. */
static const uint8_t  v_u8 = 250;
static const int8_t   v_i8 = -100;
static const uint16_t v_u16 = 65000;
static const int16_t  v_i16 = -32000;
static const uint32_t v_u32 = 4000000000u;
static const int32_t  v_i32 = -2000000000;
static const float    v_f32 = 3.25f;
static const uint8_t  v_bool = 1;
static const uint64_t v_u64 = 18000000000000000000ull;
static const int64_t  v_i64 = -9000000000000000000ll;
static const double   v_f64 = -1.0e300;

static const void *scalar_ptr(int t)
{
    switch (t) {
    case OM_GGUF_U8: return &v_u8;
    case OM_GGUF_I8: return &v_i8;
    case OM_GGUF_U16: return &v_u16;
    case OM_GGUF_I16: return &v_i16;
    case OM_GGUF_U32: return &v_u32;
    case OM_GGUF_I32: return &v_i32;
    case OM_GGUF_F32: return &v_f32;
    case OM_GGUF_BOOL: return &v_bool;
    case OM_GGUF_U64: return &v_u64;
    case OM_GGUF_I64: return &v_i64;
    case OM_GGUF_F64: return &v_f64;
    }
    return NULL;
}

static const size_t vsize[13] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };

static void test_values(void **state)
{
    om_gguf_writer *w;
    char key[64];
    uint8_t arr[5 * 8];
    assert_int_equal(om_gguf_writer_open(&w, 0), 0);
    for (int t = 0; t <= OM_GGUF_F64; t++) {
        if (!vsize[t])
            continue;
        snprintf(key, sizeof key, "scalar.%s", om_gguf_vtype_name(t));
        assert_int_equal(om_gguf_set_val(w, key, t, scalar_ptr(t)), 0);
        for (int i = 0; i < 5; i++)                 /* element i = scalar with byte 0 = i */
            memcpy(arr + i * vsize[t], scalar_ptr(t), vsize[t]), arr[i * vsize[t]] = (uint8_t)i;
        snprintf(key, sizeof key, "array.%s", om_gguf_vtype_name(t));
        assert_int_equal(om_gguf_set_arr(w, key, t, arr, 5), 0);
    }
    const char *strs[] = { "", "hello", "with\0nul", "\xe4\xb8\x96\xe7\x95\x8c", "last" };
    assert_int_equal(om_gguf_set_str(w, "s.plain", "value"), 0);
    assert_int_equal(om_gguf_set_str(w, "s.empty", ""), 0);
    assert_int_equal(om_gguf_set_arr_str(w, "array.string", strs, 5), 0);
    assert_int_equal(om_gguf_set_arr_str(w, "array.empty", strs, 0), 0);
    assert_int_equal(om_gguf_set_u32(w, "conv.u32", 7), 0);
    assert_int_equal(om_gguf_set_i32(w, "conv.neg", -5), 0);
    assert_int_equal(om_gguf_set_u64(w, "conv.big", 1ull << 40), 0);
    assert_int_equal(om_gguf_set_f32(w, "conv.f32", 0.5f), 0);
    assert_int_equal(om_gguf_set_bool(w, "conv.bool", 0), 0);
    /* The writer refuses what would make a bad file. */
    assert_int_equal(om_gguf_set_u32(w, "conv.u32", 8), OM_EINVAL);
    assert_int_equal(om_gguf_set_u32(w, "", 8), OM_EINVAL);
    assert_int_equal(om_gguf_set_val(w, "x", OM_GGUF_STRING, "x"), OM_EINVAL);
    assert_int_equal(om_gguf_set_arr(w, "x", OM_GGUF_ARRAY, arr, 1), OM_EINVAL);

    void *buf;
    om_gguf *g = open_buf(w, &buf);
    assert_int_equal(om_gguf_version(g), 3);
    assert_int_equal(om_gguf_alignment(g), 32);
    assert_int_equal(om_gguf_n_kv(g), 2 * 11 + 4 + 5);
    assert_int_equal(om_gguf_n_tensors(g), 0);
    for (int t = 0; t <= OM_GGUF_F64; t++) {
        if (!vsize[t])
            continue;
        snprintf(key, sizeof key, "scalar.%s", om_gguf_vtype_name(t));
        const om_gguf_kv *kv = om_gguf_find_kv(g, key);
        assert_non_null(kv);
        assert_int_equal(kv->type, t);
        assert_memory_equal(kv->data, scalar_ptr(t), vsize[t]);
        snprintf(key, sizeof key, "array.%s", om_gguf_vtype_name(t));
        const om_gguf_kv *a;
        assert_int_equal(om_gguf_get_arr(g, key, &a), 0);
        assert_int_equal(a->arr_type, t);
        assert_int_equal(a->arr_n, 5);
        for (int i = 0; i < 5; i++) {
            memcpy(arr, scalar_ptr(t), vsize[t]);
            arr[0] = (uint8_t)i;
            assert_memory_equal(a->data + i * vsize[t], arr, vsize[t]);
        }
    }
    /* Typed getters: integer widths convert when the value fits. */
    uint32_t u;
    int64_t i64;
    float f;
    int b;
    om_gguf_str s;
    assert_int_equal(om_gguf_get_u32(g, "scalar.u8", &u), 0);
    assert_int_equal(u, 250);
    assert_int_equal(om_gguf_get_u32(g, "scalar.u32", &u), 0);
    assert_int_equal(u, v_u32);
    assert_int_equal(om_gguf_get_u32(g, "conv.neg", &u), OM_ERANGE);
    assert_int_equal(om_gguf_get_u32(g, "conv.big", &u), OM_ERANGE);
    assert_int_equal(om_gguf_get_u32(g, "s.plain", &u), OM_EFORMAT);
    assert_int_equal(om_gguf_get_u32(g, "scalar.f32", &u), OM_EFORMAT);
    assert_int_equal(om_gguf_get_u32(g, "no.such.key", &u), OM_ENOENT);
    assert_int_equal(om_gguf_get_i64(g, "scalar.i64", &i64), 0);
    assert_true(i64 == v_i64);
    assert_int_equal(om_gguf_get_i64(g, "scalar.i8", &i64), 0);
    assert_true(i64 == -100);
    assert_int_equal(om_gguf_get_i64(g, "scalar.u64", &i64), OM_ERANGE);
    assert_int_equal(om_gguf_get_i64(g, "conv.big", &i64), 0);
    assert_true(i64 == 1ll << 40);
    assert_int_equal(om_gguf_get_f32(g, "conv.f32", &f), 0);
    assert_true(f == 0.5f);
    assert_int_equal(om_gguf_get_f32(g, "scalar.f64", &f), 0);
    assert_true(f == (float)v_f64);
    assert_int_equal(om_gguf_get_f32(g, "conv.u32", &f), OM_EFORMAT);
    assert_int_equal(om_gguf_get_bool(g, "scalar.bool", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(om_gguf_get_bool(g, "conv.bool", &b), 0);
    assert_int_equal(b, 0);
    assert_int_equal(om_gguf_get_bool(g, "scalar.u8", &b), OM_EFORMAT);
    assert_int_equal(om_gguf_get_str(g, "s.plain", &s), 0);
    assert_true(str_eq(s, "value"));
    assert_int_equal(om_gguf_get_str(g, "s.empty", &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(om_gguf_get_str(g, "conv.u32", &s), OM_EFORMAT);

    /* Arrays by element. */
    const om_gguf_kv *a;
    int32_t iv;
    assert_int_equal(om_gguf_get_arr(g, "array.string", &a), 0);
    assert_int_equal(a->arr_n, 5);
    for (int i = 4; i >= 0; i--) {
        assert_int_equal(om_gguf_arr_str(a, (uint64_t)i, &s), 0);
        assert_true(str_eq(s, strs[i]));
    }
    assert_int_equal(om_gguf_arr_str(a, 5, &s), OM_ERANGE);
    assert_int_equal(om_gguf_arr_f32(a, 0, &f), OM_EFORMAT);
    assert_int_equal(om_gguf_get_arr(g, "array.empty", &a), 0);
    assert_int_equal(a->arr_n, 0);
    assert_int_equal(om_gguf_arr_str(a, 0, &s), OM_ERANGE);
    assert_int_equal(om_gguf_get_arr(g, "array.f32", &a), 0);
    assert_int_equal(om_gguf_arr_f32(a, 3, &f), 0);
    memcpy(arr, &v_f32, 4);
    arr[0] = 3;
    assert_memory_equal(&f, arr, 4);
    assert_int_equal(om_gguf_arr_str(a, 0, &s), OM_EFORMAT);
    assert_int_equal(om_gguf_get_arr(g, "array.i16", &a), 0);
    assert_int_equal(om_gguf_arr_i32(a, 2, &iv), 0);
    int16_t want16;
    memcpy(&want16, &v_i16, 2);
    want16 = (int16_t)((want16 & ~0xff) | 2);
    assert_int_equal(iv, want16);
    assert_int_equal(om_gguf_get_arr(g, "array.u64", &a), 0);
    assert_int_equal(om_gguf_arr_i32(a, 0, &iv), OM_ERANGE);
    assert_int_equal(om_gguf_arr_i32(a, 5, &iv), OM_ERANGE);
    assert_int_equal(om_gguf_get_arr(g, "scalar.u8", &a), OM_EFORMAT);
    assert_int_equal(om_gguf_get_arr(g, "nope", &a), OM_ENOENT);
    assert_null(om_gguf_kv_at(g, -1));
    assert_null(om_gguf_kv_at(g, om_gguf_n_kv(g)));
    assert_true(str_eq(om_gguf_kv_at(g, 0)->key, "scalar.u8"));
    om_gguf_close(g);
    free(buf);
    om_gguf_writer_free(w);
}

static void fill(void *p, size_t n, unsigned seed)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)((i * 131 + seed * 7919) >> 3);
}

static void check_tensors(const om_gguf *g, uint32_t align, const uint8_t *file_base)
{
    static const struct { const char *name; int type, n_dims; int64_t ne[4]; } want[] = {
        { "t.f32", OM_TYPE_F32, 2, { 5, 3, 1, 1 } },
        { "t.f16", OM_TYPE_F16, 1, { 7, 1, 1, 1 } },
        { "t.q8_0", OM_TYPE_Q8_0, 2, { 64, 2, 1, 1 } },
        { "t.q4_0", OM_TYPE_Q4_0, 3, { 32, 3, 2, 1 } },
        { "t.q4_K", 12, 4, { 256, 1, 1, 2 } },
    };
    assert_int_equal(om_gguf_n_tensors(g), 5);
    assert_int_equal(om_gguf_alignment(g), align);
    assert_int_equal(om_gguf_data_offset(g) % align, 0);
    for (int i = 0; i < 5; i++) {
        const om_gguf_tensor *t = om_gguf_find_tensor(g, want[i].name);
        assert_non_null(t);
        assert_ptr_equal(t, om_gguf_tensor_at(g, i));
        assert_int_equal(t->type, want[i].type);
        assert_int_equal(t->n_dims, want[i].n_dims);
        assert_memory_equal(t->ne, want[i].ne, sizeof t->ne);
        uint64_t nb = om_ggml_row_bytes(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        assert_int_equal(t->nbytes, nb);
        assert_int_equal(t->offset % align, 0);
        if (file_base)
            assert_int_equal(((const uint8_t *)t->data - file_base) % align, 0);
        uint8_t *expect = malloc(nb);
        fill(expect, nb, (unsigned)i);
        assert_memory_equal(t->data, expect, nb);
        free(expect);
    }
    assert_null(om_gguf_find_tensor(g, "t.missing"));
    assert_null(om_type_name(om_gguf_find_tensor(g, "t.q4_K")->type));
}

static void test_tensors(void **state)
{
    static const uint32_t aligns[] = { 1, 2, 8, 32, 64, 4096 };
    static const struct { const char *name; int type, n_dims; int64_t ne[4]; } ts[] = {
        { "t.f32", OM_TYPE_F32, 2, { 5, 3 } },
        { "t.f16", OM_TYPE_F16, 1, { 7 } },
        { "t.q8_0", OM_TYPE_Q8_0, 2, { 64, 2 } },
        { "t.q4_0", OM_TYPE_Q4_0, 3, { 32, 3, 2 } },
        { "t.q4_K", 12, 4, { 256, 1, 1, 2 } },
    };
    char path[] = "/tmp/omnid-test-gguf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        om_gguf_writer *w;
        assert_int_equal(om_gguf_writer_open(&w, aligns[a]), 0);
        assert_int_equal(om_gguf_set_str(w, "general.architecture", "test"), 0);
        for (int i = 0; i < 5; i++) {
            uint64_t nb = om_ggml_row_bytes(ts[i].type, ts[i].ne[0]) * 6;
            uint8_t *data = malloc(nb);
            fill(data, nb, (unsigned)i);
            assert_int_equal(om_gguf_add_tensor(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne, data), 0);
            free(data);
        }
        int64_t ne[2] = { 33, 1 };
        float z[64] = { 0 };
        assert_int_equal(om_gguf_add_tensor(w, "t.bad", OM_TYPE_Q8_0, 2, ne, z), OM_EINVAL);
        assert_int_equal(om_gguf_add_tensor(w, "t.f32", OM_TYPE_F32, 1, ne, z), OM_EINVAL);
        assert_int_equal(om_gguf_add_tensor(w, "t.type", 4, 1, ne, z), OM_EINVAL);
        assert_int_equal(om_gguf_add_tensor(w, "t.dims", OM_TYPE_F32, 5, ne, z), OM_EINVAL);
        assert_int_equal(om_gguf_add_tensor(w, "0123456789012345678901234567890123456789012345678901234567890123",
                                            OM_TYPE_F32, 1, ne, z), OM_EINVAL);
        if (aligns[a] != 32)
            assert_int_equal(om_gguf_set_u32(w, "general.alignment", 16), OM_EINVAL);

        void *buf;
        om_gguf *g = open_buf(w, &buf);
        check_tensors(g, aligns[a], buf);
        om_gguf_close(g);
        free(buf);

        char err[512];
        assert_int_equal(om_gguf_write_file(w, path), 0);
        int rc = om_gguf_open(&g, path, NULL, err, sizeof err);
        if (rc)
            fail_msg("%s", err);
        check_tensors(g, aligns[a], NULL);
        om_gguf_close(g);
        om_gguf_writer_free(w);
    }
    unlink(path);
    om_gguf_writer *w;
    assert_int_equal(om_gguf_writer_open(&w, 3), OM_EINVAL);
    assert_int_equal(om_gguf_writer_open(&w, 64), 0);
    assert_int_equal(om_gguf_write_file(w, "/nonexistent-dir/x.gguf"), OM_EIO);
    om_gguf_writer_free(w);
}

static void test_open_errors(void **state)
{
    om_gguf *g;
    char err[512];
    assert_int_equal(om_gguf_open(&g, "/nonexistent/file.gguf", NULL, err, sizeof err), OM_ENOENT);
    assert_non_null(strstr(err, "/nonexistent/file.gguf"));
    assert_int_equal(om_gguf_open(&g, "/tmp", NULL, err, sizeof err), OM_EIO);
    char path[] = "/tmp/omnid-test-gguf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(om_gguf_open(&g, path, NULL, err, sizeof err), OM_EIO);
    assert_int_equal(write(fd, "GGUF\x03\0\0\0", 8), 8);
    close(fd);
    assert_int_equal(om_gguf_open(&g, path, NULL, err, sizeof err), OM_EFORMAT);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "n_tensors"));
    assert_null(g);
    unlink(path);
}

/* llama.cpp's vocab files (tests/conformance): read as written by llama.cpp. */
static void check_vocab(const char *file, int64_t n_kv, uint64_t n_tokens, const char *tok0,
                        uint64_t last_id, const char *last)
{
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/conformance/tokenizer/%s", OMNID_SHARED_DIR, file);
    if (access(path, R_OK)) {
        print_message("SKIP: %s is absent\n", path);
        skip();
    }
    om_gguf *g;
    int rc = om_gguf_open(&g, path, NULL, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(om_gguf_version(g), 3);
    assert_int_equal(om_gguf_n_kv(g), n_kv);
    assert_int_equal(om_gguf_n_tensors(g), 0);
    const om_gguf_kv *tok, *tt;
    om_gguf_str s;
    assert_int_equal(om_gguf_get_arr(g, "tokenizer.ggml.tokens", &tok), 0);
    assert_int_equal(tok->arr_type, OM_GGUF_STRING);
    assert_int_equal(tok->arr_n, n_tokens);
    assert_int_equal(om_gguf_arr_str(tok, 0, &s), 0);
    assert_true(str_eq(s, tok0));
    assert_int_equal(om_gguf_arr_str(tok, last_id, &s), 0);
    assert_true(str_eq(s, last));
    assert_int_equal(om_gguf_get_arr(g, "tokenizer.ggml.token_type", &tt), 0);
    assert_int_equal(tt->arr_n, n_tokens);
    int32_t ty;
    assert_int_equal(om_gguf_arr_i32(tt, last_id, &ty), 0);
    assert_true(ty >= 1 && ty <= 6);
    om_gguf_close(g);
}

static void test_vocab_llama_spm(void **state)
{
    check_vocab("ggml-vocab-llama-spm.gguf", 22, 32000, "<unk>", 2, "</s>");
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/conformance/tokenizer/ggml-vocab-llama-spm.gguf", OMNID_SHARED_DIR);
    om_gguf *g;
    assert_int_equal(om_gguf_open(&g, path, NULL, err, sizeof err), 0);
    om_gguf_str s;
    uint32_t u;
    int b;
    float f;
    const om_gguf_kv *sc, *tt;
    assert_int_equal(om_gguf_get_str(g, "tokenizer.ggml.model", &s), 0);
    assert_true(str_eq(s, "llama"));
    assert_int_equal(om_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u), 0);
    assert_int_equal(u, 1);
    assert_int_equal(om_gguf_get_u32(g, "llama.vocab_size", &u), 0);
    assert_int_equal(u, 32000);
    assert_int_equal(om_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(om_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f), 0);
    assert_true(f == 1e-5f);
    assert_int_equal(om_gguf_get_arr(g, "tokenizer.ggml.scores", &sc), 0);
    assert_int_equal(om_gguf_arr_f32(sc, 31999, &f), 0);
    assert_true(f == -31740.0f);
    assert_int_equal(om_gguf_get_arr(g, "tokenizer.ggml.token_type", &tt), 0);
    int32_t ty;
    assert_int_equal(om_gguf_arr_i32(tt, 0, &ty), 0);
    assert_int_equal(ty, 2);                    /* <unk> is UNKNOWN */
    assert_int_equal(om_gguf_arr_i32(tt, 3, &ty), 0);
    assert_int_equal(ty, 6);                    /* <0x00> is BYTE */
    om_gguf_close(g);
}

static void test_vocab_gpt2(void **state)
{
    check_vocab("ggml-vocab-gpt-2.gguf", 16, 50257, "!", 50256, "<|endoftext|>");
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/conformance/tokenizer/ggml-vocab-gpt-2.gguf", OMNID_SHARED_DIR);
    om_gguf *g;
    assert_int_equal(om_gguf_open(&g, path, NULL, err, sizeof err), 0);
    const om_gguf_kv *m;
    om_gguf_str s;
    assert_int_equal(om_gguf_get_arr(g, "tokenizer.ggml.merges", &m), 0);
    assert_int_equal(m->arr_n, 50000);
    assert_int_equal(om_gguf_arr_str(m, 0, &s), 0);
    assert_true(str_eq(s, "\xc4\xa0 t"));
    assert_int_equal(om_gguf_arr_str(m, 49999, &s), 0);
    assert_true(str_eq(s, "\xc4\xa0g azed"));
    om_gguf_close(g);
}

static void test_vocab_phi3(void **state)
{
    check_vocab("ggml-vocab-phi-3.gguf", 26, 32064, "<unk>", 32063, "[PAD32063]");
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/conformance/tokenizer/ggml-vocab-phi-3.gguf", OMNID_SHARED_DIR);
    om_gguf *g;
    assert_int_equal(om_gguf_open(&g, path, NULL, err, sizeof err), 0);
    om_gguf_str s;
    float f;
    assert_int_equal(om_gguf_get_str(g, "tokenizer.chat_template", &s), 0);
    assert_true(s.n > 20 && !memcmp(s.p, "{{ bos_token }}", 15));
    assert_int_equal(om_gguf_get_f32(g, "phi3.rope.freq_base", &f), 0);
    assert_true(f == 10000.0f);
    om_gguf_close(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_tensors),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_vocab_llama_spm),
        cmocka_unit_test(test_vocab_gpt2),
        cmocka_unit_test(test_vocab_phi3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
