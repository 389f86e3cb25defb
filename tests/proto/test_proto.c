/* proto/: round trip of every message type and every kind of hostile frame 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "om_err.h"
#include "om_proto.h"

static om_proto_limits lim;
static char err[256];

static int setup(void **state)
{
    om_proto_limits_default(&lim);
    err[0] = 0;
    return 0;
}

static int validate(const void *buf, size_t len)
{
    err[0] = 0;
    return om_msgpack_validate(buf, len, &lim, err, sizeof err);
}

static void assert_err_has(const char *needle)
{
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

/* ---- validator -------------------------------------------------------------------- */

static void test_validate_every_type(void **state)
{
    om_msgbuf b;
    om_msgbuf_init(&b);
    msgpack_packer *pk = &b.pk;
    msgpack_pack_array(pk, 20);
    msgpack_pack_nil(pk);
    msgpack_pack_true(pk);
    msgpack_pack_false(pk);
    msgpack_pack_uint8(pk, 200);
    msgpack_pack_uint16(pk, 60000);
    msgpack_pack_uint32(pk, 4000000000u);
    msgpack_pack_uint64(pk, UINT64_MAX);
    msgpack_pack_int8(pk, -100);
    msgpack_pack_int16(pk, -30000);
    msgpack_pack_int32(pk, -2000000000);
    msgpack_pack_int64(pk, INT64_MIN);
    msgpack_pack_float(pk, 1.5f);
    msgpack_pack_double(pk, -2.25);
    om_pack_str(pk, "a string longer than thirty-one bytes, so str8");
    msgpack_pack_bin(pk, 3);
    msgpack_pack_bin_body(pk, "\x00\x01\x02", 3);
    msgpack_pack_ext(pk, 4, 7);                       /* fixext4 */
    msgpack_pack_ext_body(pk, "abcd", 4);
    msgpack_pack_ext(pk, 5, 7);                       /* ext8 */
    msgpack_pack_ext_body(pk, "abcde", 5);
    msgpack_pack_map(pk, 1);
    om_pack_kv_u64(pk, "k", 1);
    msgpack_pack_array(pk, 0);
    msgpack_pack_map(pk, 0);
    assert_int_equal(validate(b.sb.data, b.sb.size), 0);
    om_msgbuf_free(&b);
}

static void test_validate_truncated_every_prefix(void **state)
{
    om_msgbuf b;
    om_msgbuf_init(&b);
    assert_int_equal(om_req_build(&b, "probe", 7, 1000, 3), 0);
    om_pack_kv_str(&b.pk, "url", "file:///tmp/a.mp4");
    om_pack_kv_f64(&b.pk, "scale", 0.5);
    om_pack_str(&b.pk, "t");
    uint64_t shape[2] = { 2, 2 };
    float data[4] = { 1, 2, 3, 4 };
    assert_int_equal(om_pack_tensor(&b.pk, OM_DTYPE_F32, 2, shape, data, sizeof data, 0), 0);
    assert_int_equal(validate(b.sb.data, b.sb.size), 0);
    for (size_t n = 0; n < b.sb.size; n++) {
        int r = validate(b.sb.data, n);
        assert_int_equal(r, OM_EFORMAT);
        assert_true(n == 0 ? strstr(err, "empty") != NULL : strstr(err, "truncated") != NULL ||
                                                            strstr(err, "only") != NULL);
    }
    om_msgbuf_free(&b);
}

static void test_validate_trailing(void **state)
{
    const uint8_t buf[] = { 0x81, 0xa1, 'v', 0x01, 0x00, 0x00 };
    assert_int_equal(validate(buf, 4), 0);
    assert_int_equal(validate(buf, sizeof buf), OM_EFORMAT);
    assert_err_has("2 trailing bytes");
}

static void test_validate_huge_declared_sizes(void **state)
{
    const uint8_t arr32[] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01 };
    const uint8_t map32[] = { 0xdf, 0x7f, 0xff, 0xff, 0xff, 0x01, 0x01 };
    const uint8_t arr16[] = { 0xdc, 0x00, 0x10, 0x01, 0x02 };
    const uint8_t str32[] = { 0xdb, 0xff, 0xff, 0xff, 0xf0, 'a' };
    const uint8_t bin32[] = { 0xc6, 0x7f, 0xff, 0xff, 0xff, 'a' };
    const uint8_t ext32[] = { 0xc9, 0x7f, 0xff, 0xff, 0xff, 0x01, 'a' };
    const uint8_t str8[]  = { 0xd9, 0x05, 'a', 'b' };

    assert_int_equal(validate(arr32, sizeof arr32), OM_ERANGE);      /* over max_elems */
    assert_err_has("limit 65536");
    assert_int_equal(validate(map32, sizeof map32), OM_ERANGE);
    assert_int_equal(validate(arr16, sizeof arr16), OM_EFORMAT);     /* 16 entries, 2 bytes */
    assert_err_has("only 2 bytes follow");
    assert_int_equal(validate(str32, sizeof str32), OM_ERANGE);
    assert_err_has("str");
    assert_int_equal(validate(bin32, sizeof bin32), OM_ERANGE);
    assert_err_has("bin");
    assert_int_equal(validate(ext32, sizeof ext32), OM_ERANGE);
    assert_int_equal(validate(str8, sizeof str8), OM_EFORMAT);

    /* With the element limit lifted, the byte-count check still stops the lie. */
    lim.max_elems = UINT32_MAX;
    lim.max_str = UINT32_MAX;
    assert_int_equal(validate(arr32, sizeof arr32), OM_EFORMAT);
    assert_int_equal(validate(map32, sizeof map32), OM_EFORMAT);
    assert_int_equal(validate(str32, sizeof str32), OM_EFORMAT);
    assert_int_equal(validate(bin32, sizeof bin32), OM_EFORMAT);
}

static void test_validate_depth(void **state)
{
    enum { N = 100000 };
    uint8_t *buf = malloc(N + 1);
    assert_non_null(buf);
    memset(buf, 0x91, N);                  /* [[[[...]]]] */
    buf[N] = 0x00;
    assert_int_equal(validate(buf, N + 1), OM_ERANGE);
    assert_err_has("nesting deeper than 16");
    /* exactly max_depth levels pass */
    assert_int_equal(validate(buf + N - 16, 17), 0);
    assert_int_equal(validate(buf + N - 17, 18), OM_ERANGE);
    free(buf);
}

static void test_validate_reserved(void **state)
{
    const uint8_t buf[] = { 0x91, 0xc1 };
    assert_int_equal(validate(buf, sizeof buf), OM_EFORMAT);
    assert_err_has("0xc1");
}

/* ---- requests --------------------------------------------------------------------- */

static int decode_req(om_req *r, const om_msgbuf *b, const om_frame *payload, size_t n_payload)
{
    om_frame frames[8] = { om_msgbuf_frame(b) };
    for (size_t i = 0; i < n_payload; i++)
        frames[1 + i] = payload[i];
    err[0] = 0;
    return om_req_decode(r, frames, 1 + n_payload, &lim, err, sizeof err);
}

static void test_req_roundtrip(void **state)
{
    om_msgbuf b;
    om_msgbuf_init(&b);
    assert_int_equal(om_req_build(&b, "embed", 42, 2500, 9), 0);
    msgpack_packer *pk = &b.pk;
    om_pack_kv_str(pk, "url", "rtsp://cam/1");
    om_pack_kv_u64(pk, "frames", 8);
    om_pack_kv_i64(pk, "offset", -3);
    om_pack_kv_f64(pk, "temperature", 0.7);
    om_pack_kv_bool(pk, "stream", true);
    om_pack_kv_frame(pk, "media", 1);
    om_pack_str(pk, "opts");
    msgpack_pack_map(pk, 1);
    om_pack_kv_u64(pk, "k", 5);
    uint64_t shape[2] = { 2, 3 };
    const float vec[6] = { 1, -2, 3, -4, 5, -6 };
    om_pack_str(pk, "inline");
    om_pack_tensor(pk, OM_DTYPE_F32, 2, shape, vec, sizeof vec, 0);
    om_pack_str(pk, "by_frame");
    om_pack_tensor(pk, OM_DTYPE_F32, 2, shape, NULL, 0, 2);

    const char media[] = "not really an mp4";
    om_frame payload[2] = { { media, sizeof media }, { vec, sizeof vec } };
    om_req r;
    assert_int_equal(decode_req(&r, &b, payload, 2), 0);
    assert_int_equal(r.op, OM_OP_EMBED);
    assert_string_equal(r.op_name, "embed");
    assert_int_equal(r.id, 42);
    assert_int_equal(r.deadline_ms, 2500);
    assert_int_equal(r.n_frames, 2);

    const char *s;
    size_t len;
    uint64_t u;
    int64_t i;
    double d;
    bool bo;
    const msgpack_object *m;
    om_frame f;
    om_tensor_view t;
    char url[64];
    assert_int_equal(om_req_arg_str(&r, "url", &s, &len, err, sizeof err), 0);
    assert_int_equal(len, 12);
    assert_memory_equal(s, "rtsp://cam/1", 12);
    assert_int_equal(om_req_arg_strcpy(&r, "url", url, sizeof url, err, sizeof err), 0);
    assert_string_equal(url, "rtsp://cam/1");
    assert_int_equal(om_req_arg_strcpy(&r, "url", url, 5, err, sizeof err), OM_ERANGE);
    assert_int_equal(om_req_arg_u64(&r, "frames", &u, err, sizeof err), 0);
    assert_int_equal(u, 8);
    assert_int_equal(om_req_arg_i64(&r, "offset", &i, err, sizeof err), 0);
    assert_int_equal(i, -3);
    assert_int_equal(om_req_arg_i64(&r, "frames", &i, err, sizeof err), 0);
    assert_int_equal(i, 8);
    assert_int_equal(om_req_arg_f64(&r, "temperature", &d, err, sizeof err), 0);
    assert_true(d == 0.7);
    assert_int_equal(om_req_arg_f64(&r, "offset", &d, err, sizeof err), 0);
    assert_true(d == -3.0);
    assert_int_equal(om_req_arg_bool(&r, "stream", &bo, err, sizeof err), 0);
    assert_true(bo);
    assert_int_equal(om_req_arg_map(&r, "opts", &m, err, sizeof err), 0);
    assert_int_equal(om_map_u64(m, "args.opts", "k", &u, err, sizeof err), 0);
    assert_int_equal(u, 5);
    assert_int_equal(om_req_arg_frame(&r, "media", &f, err, sizeof err), 0);
    assert_int_equal(f.size, sizeof media);
    assert_ptr_equal(f.data, media);
    assert_int_equal(om_req_arg_tensor(&r, "inline", &t, err, sizeof err), 0);
    assert_int_equal(t.dtype, OM_DTYPE_F32);
    assert_int_equal(t.ndim, 2);
    assert_int_equal(t.shape[0], 2);
    assert_int_equal(t.shape[1], 3);
    assert_int_equal(t.nbytes, sizeof vec);
    assert_memory_equal(t.data, vec, sizeof vec);
    assert_int_equal(om_req_arg_tensor(&r, "by_frame", &t, err, sizeof err), 0);
    assert_ptr_equal(t.data, vec);
    om_req_free(&r);
    om_req_free(&r);                       /* a second free is harmless */

    /* no args at all */
    assert_int_equal(om_req_build(&b, "health", 1, 0, 0), 0);
    assert_int_equal(decode_req(&r, &b, NULL, 0), 0);
    assert_int_equal(r.op, OM_OP_HEALTH);
    assert_int_equal(r.deadline_ms, 0);
    assert_int_equal(om_req_arg_str(&r, "url", &s, &len, err, sizeof err), OM_ENOENT);
    assert_err_has("args.url: missing");
    om_req_free(&r);
    om_msgbuf_free(&b);
}

/* Packs a request map by hand so that every field can be wrong. */
static void raw_req(om_msgbuf *b, const char *v_type, const char *op, const char *id_type, int n_extra)
{
    msgpack_sbuffer_clear(&b->sb);
    msgpack_packer *pk = &b->pk;
    msgpack_pack_map(pk, (v_type != NULL) + (op != NULL) + (id_type != NULL) + n_extra);
    if (v_type) {
        om_pack_str(pk, "v");
        if (!strcmp(v_type, "str"))
            om_pack_str(pk, "1");
        else
            msgpack_pack_uint64(pk, strtoull(v_type, NULL, 10));
    }
    if (op)
        om_pack_kv_str(pk, "op", op);
    if (id_type) {
        om_pack_str(pk, "id");
        if (!strcmp(id_type, "str"))
            om_pack_str(pk, "9");
        else if (!strcmp(id_type, "neg"))
            msgpack_pack_int64(pk, -9);
        else
            msgpack_pack_uint64(pk, 9);
    }
}

static void test_req_hostile_envelope(void **state)
{
    om_msgbuf b;
    om_msgbuf_init(&b);
    om_req r;

    raw_req(&b, "1", "status", "uint", 0);
    assert_int_equal(decode_req(&r, &b, NULL, 0), 0);
    om_req_free(&r);

    raw_req(&b, "1", "teleport", "uint", 0);
    assert_int_equal(decode_req(&r, &b, NULL, 0), OM_EUNSUPPORTED);
    assert_err_has("unknown op 'teleport'");
    assert_int_equal(r.id, 9);             /* still known, for the error reply */

    raw_req(&b, "1", "stat\x01us", "uint", 0);
    assert_int_equal(decode_req(&r, &b, NULL, 0), OM_EUNSUPPORTED);
    assert_err_has("'stat?us'");

    raw_req(&b, "1", "status", "str", 0);
    assert_int_equal(decode_req(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("id: expected uint, got str");

    raw_req(&b, "1", "status", "neg", 0);
    assert_int_equal(decode_req(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("id: expected uint, got int");

    raw_req(&b, "1", "status", NULL, 0);
    assert_int_equal(decode_req(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("id: missing");

    raw_req(&b, NULL, "status", "uint", 0);
    assert_int_equal(decode_req(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("v: missing");

    raw_req(&b, "2", "status", "uint", 0);
    assert_int_equal(decode_req(&r, &b, NULL, 0), OM_EUNSUPPORTED);
    assert_err_has("version 2");

    raw_req(&b, "str", "status", "uint", 0);
    assert_int_equal(decode_req(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("v: expected uint");

    raw_req(&b, "1", "status", "uint", 1);
    om_pack_kv_u64(&b.pk, "colour", 3);
    assert_int_equal(decode_req(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("unknown field 'colour'");

    raw_req(&b, "1", "status", "uint", 1);
    om_pack_kv_str(&b.pk, "op", "health");
    assert_int_equal(decode_req(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("duplicate key 'op'");

    raw_req(&b, "1", "status", "uint", 1);
    om_pack_kv_str(&b.pk, "args", "url");
    assert_int_equal(decode_req(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("args: expected map, got str");

    raw_req(&b, "1", "status", "uint", 1);
    om_pack_kv_f64(&b.pk, "deadline_ms", 1.5);
    assert_int_equal(decode_req(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("deadline_ms: expected uint, got float");

    raw_req(&b, "1", "status", "uint", 1);
    msgpack_pack_uint8(&b.pk, 1);          /* an int key */
    msgpack_pack_uint8(&b.pk, 1);
    assert_int_equal(decode_req(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("keys must be str");

    raw_req(&b, "1", "status", "uint", 1);
    om_pack_str(&b.pk, "args");
    msgpack_pack_map(&b.pk, 2);
    om_pack_kv_u64(&b.pk, "n", 1);
    om_pack_kv_u64(&b.pk, "n", 2);
    assert_int_equal(decode_req(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("args: duplicate key 'n'");

    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_array(&b.pk, 1);
    msgpack_pack_nil(&b.pk);
    assert_int_equal(decode_req(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("expected map, got array");

    om_req_free(&r);
    om_msgbuf_free(&b);
}

static void test_req_hostile_args(void **state)
{
    om_msgbuf b;
    om_msgbuf_init(&b);
    om_req_build(&b, "probe", 3, 0, 8);
    om_pack_kv_u64(&b.pk, "url", 5);
    om_pack_kv_i64(&b.pk, "neg", -1);
    om_pack_kv_u64(&b.pk, "big", UINT64_MAX);
    om_pack_kv_frame(&b.pk, "media", 2);
    om_pack_kv_frame(&b.pk, "zero", 0);
    om_pack_str(&b.pk, "t_bad");
    uint64_t shape[2] = { 4, 4 };
    om_pack_tensor(&b.pk, OM_DTYPE_F32, 2, shape, "abcd", 4, 0);
    om_pack_str(&b.pk, "t_huge");
    uint64_t huge[3] = { 1ull << 40, 1ull << 40, 1ull << 40 };
    om_pack_tensor(&b.pk, OM_DTYPE_F16, 3, huge, NULL, 0, 1);
    om_pack_str(&b.pk, "t_dtype");
    msgpack_pack_map(&b.pk, 3);
    om_pack_kv_str(&b.pk, "dtype", "q4_k");
    om_pack_str(&b.pk, "shape");
    msgpack_pack_array(&b.pk, 0);
    om_pack_kv_u64(&b.pk, "frame", 1);

    om_frame payload[1] = { { "x", 1 } };
    om_req r;
    assert_int_equal(decode_req(&r, &b, payload, 1), 0);
    const char *s;
    size_t len;
    uint64_t u;
    int64_t i;
    bool bo;
    om_frame f;
    om_tensor_view t;
    assert_int_equal(om_req_arg_str(&r, "url", &s, &len, err, sizeof err), OM_EFORMAT);
    assert_err_has("args.url: expected str, got uint");
    assert_int_equal(om_req_arg_u64(&r, "neg", &u, err, sizeof err), OM_EFORMAT);
    assert_err_has("args.neg: expected uint, got int");
    assert_int_equal(om_req_arg_i64(&r, "big", &i, err, sizeof err), OM_EFORMAT);
    assert_err_has("args.big");
    assert_int_equal(om_req_arg_bool(&r, "url", &bo, err, sizeof err), OM_EFORMAT);
    assert_int_equal(om_req_arg_frame(&r, "media", &f, err, sizeof err), OM_EFORMAT);
    assert_err_has("args.media.frame: 2 is not a payload frame");
    assert_int_equal(om_req_arg_frame(&r, "zero", &f, err, sizeof err), OM_EFORMAT);
    assert_int_equal(om_req_arg_frame(&r, "url", &f, err, sizeof err), OM_EFORMAT);
    assert_int_equal(om_req_arg_tensor(&r, "t_bad", &t, err, sizeof err), OM_EFORMAT);
    assert_err_has("4 data bytes for 64 expected");
    assert_int_equal(om_req_arg_tensor(&r, "t_huge", &t, err, sizeof err), OM_ERANGE);
    assert_err_has("overflows");
    assert_int_equal(om_req_arg_tensor(&r, "t_dtype", &t, err, sizeof err), OM_EUNSUPPORTED);
    assert_err_has("'q4_k'");
    assert_int_equal(om_req_arg_tensor(&r, "url", &t, err, sizeof err), OM_EFORMAT);
    om_req_free(&r);
    om_msgbuf_free(&b);
}

static void test_req_limits(void **state)
{
    om_msgbuf b;
    om_msgbuf_init(&b);
    om_req_build(&b, "status", 1, 0, 0);
    om_frame frames[20];
    for (int i = 0; i < 20; i++)
        frames[i] = i ? (om_frame){ "p", 1 } : om_msgbuf_frame(&b);
    om_req r;
    assert_int_equal(om_req_decode(&r, frames, 17, &lim, err, sizeof err), OM_ERANGE);
    assert_err_has("17 frames (limit 16)");
    assert_int_equal(om_req_decode(&r, frames, 16, &lim, err, sizeof err), 0);
    om_req_free(&r);
    assert_int_equal(om_req_decode(&r, frames, 0, &lim, err, sizeof err), OM_EFORMAT);
    lim.max_header_bytes = 8;
    assert_int_equal(om_req_decode(&r, frames, 1, &lim, err, sizeof err), OM_ERANGE);
    assert_err_has("frame 0 has");

    /* 5 bytes that make msgpack-c 4.0 malloc 8.6 GB: refused before it runs */
    om_proto_limits_default(&lim);
    om_frame bomb = { "\xdd\x0f\xff\xff\xff", 5 };
    assert_int_equal(om_req_decode(&r, &bomb, 1, &lim, err, sizeof err), OM_ERANGE);
    assert_err_has("268435455 entries (limit 65536)");

    uint64_t id = 0;
    assert_int_equal(om_req_peek_id(b.sb.data, b.sb.size, &lim, &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(om_req_peek_id(b.sb.data, b.sb.size - 1, &lim, &id), OM_EFORMAT);
    om_msgbuf_free(&b);
}

/* ---- replies ---------------------------------------------------------------------- */

static int decode_rep(om_reply_msg *r, const om_msgbuf *b, const om_frame *payload, size_t n_payload)
{
    om_frame frames[4] = { om_msgbuf_frame(b) };
    for (size_t i = 0; i < n_payload; i++)
        frames[1 + i] = payload[i];
    err[0] = 0;
    return om_reply_decode(r, frames, 1 + n_payload, &lim, err, sizeof err);
}

static void test_reply_roundtrip(void **state)
{
    om_msgbuf b;
    om_msgbuf_init(&b);
    om_reply_msg r;

    assert_int_equal(om_reply_token(&b, 5, 0, "Hello", 15043), 0);
    assert_int_equal(decode_rep(&r, &b, NULL, 0), 0);
    assert_int_equal(r.type, OM_REPLY_TOKEN);
    assert_int_equal(r.id, 5);
    assert_int_equal(r.seq, 0);
    assert_int_equal(r.text_len, 5);
    assert_memory_equal(r.text, "Hello", 5);
    assert_int_equal(r.token, 15043);
    assert_false(om_reply_is_final(&r));
    om_reply_msg_free(&r);

    assert_int_equal(om_reply_token(&b, 5, 1, " world", -1), 0);
    assert_int_equal(decode_rep(&r, &b, NULL, 0), 0);
    assert_int_equal(r.token, -1);
    assert_int_equal(r.seq, 1);
    om_reply_msg_free(&r);

    assert_int_equal(om_reply_progress(&b, 5, 2, "unet", 3, 20), 0);
    assert_int_equal(decode_rep(&r, &b, NULL, 0), 0);
    assert_int_equal(r.type, OM_REPLY_PROGRESS);
    assert_memory_equal(r.stage, "unet", 4);
    assert_int_equal(r.current, 3);
    assert_int_equal(r.total, 20);
    om_reply_msg_free(&r);

    assert_int_equal(om_reply_result_begin(&b, 5, 3, 2), 0);
    om_pack_kv_str(&b.pk, "state", "ready");
    om_pack_kv_u64(&b.pk, "workers", 4);
    assert_int_equal(decode_rep(&r, &b, NULL, 0), 0);
    assert_int_equal(r.type, OM_REPLY_RESULT);
    uint64_t u;
    assert_int_equal(om_map_u64(r.result, "result", "workers", &u, err, sizeof err), 0);
    assert_int_equal(u, 4);
    om_reply_msg_free(&r);

    const float emb[4] = { 0.5f, -0.5f, 0.5f, -0.5f };
    assert_int_equal(om_reply_embedding(&b, 5, 4, "image", 4), 0);
    om_frame ef = { emb, sizeof emb };
    assert_int_equal(decode_rep(&r, &b, &ef, 1), 0);
    assert_int_equal(r.type, OM_REPLY_EMBEDDING);
    assert_memory_equal(r.modality, "image", 5);
    assert_int_equal(r.tensor.ndim, 1);
    assert_int_equal(r.tensor.shape[0], 4);
    assert_memory_equal(r.tensor.data, emb, sizeof emb);
    om_reply_msg_free(&r);
    assert_int_equal(decode_rep(&r, &b, NULL, 0), OM_EFORMAT);    /* the vector frame is missing */
    assert_err_has("tensor.frame: 1 is not a payload frame");

    const char png[] = "\x89PNG....";
    assert_int_equal(om_reply_image(&b, 5, 5, "image/png", 64, 48), 0);
    om_frame pf = { png, sizeof png };
    assert_int_equal(decode_rep(&r, &b, &pf, 1), 0);
    assert_int_equal(r.type, OM_REPLY_IMAGE);
    assert_int_equal(r.width, 64);
    assert_int_equal(r.height, 48);
    assert_int_equal(r.image_data.size, sizeof png);
    om_reply_msg_free(&r);

    om_kv_f64 timings[2] = { { "total", 12.5 }, { "llm", 10.0 } };
    om_kv_u64 usage[1] = { { "tokens_out", 17 } };
    assert_int_equal(om_reply_done(&b, 5, 6, timings, 2, usage, 1), 0);
    assert_int_equal(decode_rep(&r, &b, NULL, 0), 0);
    assert_int_equal(r.type, OM_REPLY_DONE);
    assert_true(om_reply_is_final(&r));
    double d;
    assert_int_equal(om_map_f64(r.timings, "timings", "total", &d, err, sizeof err), 0);
    assert_true(d == 12.5);
    assert_int_equal(om_map_u64(r.usage, "usage", "tokens_out", &u, err, sizeof err), 0);
    assert_int_equal(u, 17);
    om_reply_msg_free(&r);

    assert_int_equal(om_reply_error(&b, 5, 7, OM_EBUSY, "queue %s is full (%d)", "llm", 8), 0);
    assert_int_equal(decode_rep(&r, &b, NULL, 0), 0);
    assert_int_equal(r.type, OM_REPLY_ERROR);
    assert_int_equal(r.code, OM_EBUSY);
    assert_string_equal(r.code_name, "EBUSY");
    assert_int_equal(r.message_len, strlen("queue llm is full (8)"));
    assert_memory_equal(r.message, "queue llm is full (8)", r.message_len);
    assert_true(om_reply_is_final(&r));
    om_reply_msg_free(&r);

    /* Every error code survives the trip by name. */
    for (int code = OM_ENOMEM; code >= OM_EINTERNAL; code--) {
        assert_int_equal(om_reply_error(&b, 1, 0, code, "x"), 0);
        assert_int_equal(decode_rep(&r, &b, NULL, 0), 0);
        assert_int_equal(r.code, code);
        om_reply_msg_free(&r);
    }
    om_msgbuf_free(&b);
}

static void test_reply_error_utf8(void **state)
{
    om_msgbuf b;
    om_msgbuf_init(&b);
    om_reply_msg r;
    assert_int_equal(om_reply_error(&b, 1, 0, OM_ENOENT, "no file '%s'", "caf\xc3\xa9\xff\xc3"), 0);
    assert_int_equal(decode_rep(&r, &b, NULL, 0), 0);
    assert_int_equal(r.message_len, strlen("no file 'caf\xc3\xa9?\?'"));
    assert_memory_equal(r.message, "no file 'caf\xc3\xa9?\?'", r.message_len);
    om_reply_msg_free(&r);
    om_msgbuf_free(&b);
}

static void test_reply_hostile(void **state)
{
    om_msgbuf b;
    om_msgbuf_init(&b);
    om_reply_msg r;
    msgpack_packer *pk = &b.pk;

    msgpack_pack_map(pk, 2);
    om_pack_kv_u64(pk, "id", 1);
    om_pack_kv_str(pk, "type", "token");
    assert_int_equal(decode_rep(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("seq: missing");

    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_map(pk, 3);
    om_pack_kv_u64(pk, "id", 1);
    om_pack_kv_u64(pk, "seq", 0);
    om_pack_kv_str(pk, "type", "hologram");
    assert_int_equal(decode_rep(&r, &b, NULL, 0), OM_EUNSUPPORTED);
    assert_int_equal(r.id, 1);

    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_map(pk, 4);
    om_pack_kv_u64(pk, "id", 1);
    om_pack_kv_u64(pk, "seq", 0);
    om_pack_kv_str(pk, "type", "token");
    om_pack_kv_u64(pk, "text", 3);
    assert_int_equal(decode_rep(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("text: expected str, got uint");

    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_map(pk, 4);
    om_pack_kv_u64(pk, "id", 1);
    om_pack_kv_u64(pk, "seq", 0);
    om_pack_kv_str(pk, "type", "done");
    om_pack_kv_str(pk, "timings", "fast");
    assert_int_equal(decode_rep(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("timings: expected map");

    assert_int_equal(om_reply_image(&b, 1, 0, "image/png", 1, 1), 0);
    assert_int_equal(decode_rep(&r, &b, NULL, 0), OM_EFORMAT);
    assert_err_has("not a payload frame");
    om_reply_msg_free(&r);
    om_msgbuf_free(&b);
}

static void test_names(void **state)
{
    for (int op = 0; op < OM_OP_COUNT_; op++) {
        const char *n = om_op_name(op);
        assert_non_null(n);
        assert_int_equal(om_op_from_name(n, strlen(n)), op);
    }
    assert_null(om_op_name(OM_OP_COUNT_));
    assert_int_equal(om_op_from_name("heal", 4), OM_EUNSUPPORTED);
    assert_int_equal(om_errcode_from_name("ETIMEDOUT", 9), OM_ETIMEDOUT);
    assert_int_equal(om_errcode_from_name("EWHAT", 5), OM_EINTERNAL);
    assert_int_equal(om_dtype_size(OM_DTYPE_F16), 2);
    assert_null(om_dtype_name(7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_validate_every_type, setup),
        cmocka_unit_test_setup(test_validate_truncated_every_prefix, setup),
        cmocka_unit_test_setup(test_validate_trailing, setup),
        cmocka_unit_test_setup(test_validate_huge_declared_sizes, setup),
        cmocka_unit_test_setup(test_validate_depth, setup),
        cmocka_unit_test_setup(test_validate_reserved, setup),
        cmocka_unit_test_setup(test_req_roundtrip, setup),
        cmocka_unit_test_setup(test_req_hostile_envelope, setup),
        cmocka_unit_test_setup(test_req_hostile_args, setup),
        cmocka_unit_test_setup(test_req_limits, setup),
        cmocka_unit_test_setup(test_reply_roundtrip, setup),
        cmocka_unit_test_setup(test_reply_error_utf8, setup),
        cmocka_unit_test_setup(test_reply_hostile, setup),
        cmocka_unit_test_setup(test_names, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
