/* proto/: multipart send/receive over a real DEALER -> ROUTER pair (inproc), with
 * the frame-count and total-size limits, draining, envelopes and timeouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "om_err.h"
#include "om_proto.h"

typedef struct pair {
    void *ctx, *router, *dealer;
    om_proto_limits lim;
    char err[256];
} pair;

static int setup(void **state)
{
    pair *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->ctx = zmq_ctx_new();
    p->router = zmq_socket(p->ctx, ZMQ_ROUTER);
    p->dealer = zmq_socket(p->ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(p->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(p->dealer, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_bind(p->router, "inproc://proto-test"), 0);
    assert_int_equal(zmq_connect(p->dealer, "inproc://proto-test"), 0);
    om_proto_limits_default(&p->lim);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    pair *p = *state;
    zmq_close(p->dealer);
    zmq_close(p->router);
    zmq_ctx_term(p->ctx);
    free(p);
    return 0;
}

/* A status request with id and n_payload payload frames of `size` bytes each. */
static void send_req(pair *p, uint64_t id, size_t n_payload, size_t size)
{
    om_msgbuf b;
    om_msgbuf_init(&b);
    assert_int_equal(om_req_build(&b, "status", id, 0, 0), 0);
    char *blob = calloc(1, size + 1);
    assert_non_null(blob);
    om_frame *f = calloc(n_payload + 1, sizeof *f);
    assert_non_null(f);
    f[0] = om_msgbuf_frame(&b);
    for (size_t i = 0; i < n_payload; i++)
        f[1 + i] = (om_frame){ blob, size };
    assert_int_equal(om_send_frames(p->dealer, f, n_payload + 1, 0), 0);
    free(f);
    free(blob);
    om_msgbuf_free(&b);
}

static void test_roundtrip(void **state)
{
    pair *p = *state;
    om_msgbuf b;
    om_msgbuf_init(&b);
    assert_int_equal(om_req_build(&b, "probe", 77, 0, 1), 0);
    om_pack_kv_frame(&b.pk, "media", 1);
    const char media[] = "RIFF....WAVEfmt ";
    om_frame out[2] = { om_msgbuf_frame(&b), { media, sizeof media } };
    assert_int_equal(om_send_frames(p->dealer, out, 2, 0), 0);

    om_msg m;
    om_msg_init(&m);
    assert_int_equal(om_msg_recv(p->router, &m, 1, &p->lim, 1000, p->err, sizeof p->err), 0);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.body_bytes, b.sb.size + sizeof media);
    om_frame body[4];
    size_t nb = om_msg_body(&m, body, 4);
    assert_int_equal(nb, 2);
    om_req r;
    assert_int_equal(om_req_decode(&r, body, nb, &p->lim, p->err, sizeof p->err), 0);
    om_frame f;
    assert_int_equal(om_req_arg_frame(&r, "media", &f, p->err, sizeof p->err), 0);
    assert_int_equal(f.size, sizeof media);
    assert_memory_equal(f.data, media, sizeof media);

    /* Reply through the envelope: identity frame, then the reply. */
    assert_int_equal(om_reply_progress(&b, r.id, 0, "probe", 1, 2), 0);
    om_frame rep[2] = { om_msg_frame(&m, 0), om_msgbuf_frame(&b) };
    assert_int_equal(om_send_frames(p->router, rep, 2, 0), 0);
    om_kv_f64 t[1] = { { "total", 1.0 } };
    assert_int_equal(om_reply_done(&b, r.id, 1, t, 1, NULL, 0), 0);
    rep[1] = om_msgbuf_frame(&b);
    assert_int_equal(om_send_frames(p->router, rep, 2, 0), 0);
    om_req_free(&r);

    om_msg c;
    om_msg_init(&c);
    for (uint64_t seq = 0; seq < 2; seq++) {
        assert_int_equal(om_msg_recv(p->dealer, &c, 0, &p->lim, 1000, p->err, sizeof p->err), 0);
        size_t n = om_msg_body(&c, body, 4);
        om_reply_msg rm;
        assert_int_equal(om_reply_decode(&rm, body, n, &p->lim, p->err, sizeof p->err), 0);
        assert_int_equal(rm.id, 77);
        assert_int_equal(rm.seq, seq);
        assert_int_equal(rm.type, seq ? OM_REPLY_DONE : OM_REPLY_PROGRESS);
        om_reply_msg_free(&rm);
    }
    om_msg_free(&c);
    om_msg_free(&m);
    om_msgbuf_free(&b);
}

/* After an oversized message the next one must arrive intact. */
static void expect_next_ok(pair *p, om_msg *m, uint64_t id)
{
    send_req(p, id, 1, 3);
    assert_int_equal(om_msg_recv(p->router, m, 1, &p->lim, 1000, p->err, sizeof p->err), 0);
    assert_int_equal(m->n, 3);
    uint64_t got = 0;
    om_frame h = om_msg_frame(m, 1);
    assert_int_equal(om_req_peek_id(h.data, h.size, &p->lim, &got), 0);
    assert_int_equal(got, id);
}

static void test_too_many_frames(void **state)
{
    pair *p = *state;
    om_msg m;
    om_msg_init(&m);
    send_req(p, 11, 40, 2);                    /* 41 body frames, limit 16 */
    assert_int_equal(om_msg_recv(p->router, &m, 1, &p->lim, 1000, p->err, sizeof p->err), OM_ERANGE);
    assert_non_null(strstr(p->err, "41 frames (limit 16)"));
    assert_int_equal(m.n, 2);                  /* identity + frame 0 kept for the answer */
    uint64_t id = 0;
    om_frame h = om_msg_frame(&m, 1);
    assert_int_equal(om_req_peek_id(h.data, h.size, &p->lim, &id), 0);
    assert_int_equal(id, 11);
    expect_next_ok(p, &m, 12);
    om_msg_free(&m);
}

static void test_oversized_total(void **state)
{
    pair *p = *state;
    om_msg m;
    om_msg_init(&m);
    p->lim.max_total_bytes = 1000;
    send_req(p, 21, 3, 600);
    assert_int_equal(om_msg_recv(p->router, &m, 1, &p->lim, 1000, p->err, sizeof p->err), OM_ERANGE);
    assert_non_null(strstr(p->err, "(limit 1000)"));
    assert_int_equal(m.n, 2);
    assert_true(m.body_bytes > 1800);          /* the whole message was counted while draining */
    expect_next_ok(p, &m, 22);
    om_msg_free(&m);
}

static void test_oversized_header(void **state)
{
    pair *p = *state;
    om_msg m;
    om_msg_init(&m);
    p->lim.max_header_bytes = 4;
    send_req(p, 31, 2, 10);
    assert_int_equal(om_msg_recv(p->router, &m, 1, &p->lim, 1000, p->err, sizeof p->err), OM_ERANGE);
    assert_non_null(strstr(p->err, "frame 0 has"));
    assert_int_equal(m.n, 1);                  /* only the envelope: frame 0 is too big to keep */
    p->lim.max_header_bytes = 1024;
    expect_next_ok(p, &m, 32);
    om_msg_free(&m);
}

static void test_timeout_and_envelope(void **state)
{
    pair *p = *state;
    om_msg m;
    om_msg_init(&m);
    assert_int_equal(om_msg_recv(p->router, &m, 1, &p->lim, 20, p->err, sizeof p->err), OM_ETIMEDOUT);
    assert_int_equal(om_msg_recv(p->router, &m, 1, &p->lim, 0, p->err, sizeof p->err), OM_ETIMEDOUT);
    /* A ROUTER adds one routing frame; a caller expecting two sees no body. */
    send_req(p, 41, 0, 0);
    assert_int_equal(om_msg_recv(p->router, &m, 2, &p->lim, 1000, p->err, sizeof p->err), OM_EPROTO);
    assert_int_equal(m.n, 0);
    expect_next_ok(p, &m, 42);
    om_msg_free(&m);

    om_frame none[1];
    assert_int_equal(om_send_frames(p->dealer, none, 0, 0), OM_EINVAL);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A CURVE client made from key files reaches a CURVE server (tcp: inproc has no
 * security handshake); with the wrong server key it does not. */
static void test_curve(void **state)
{
    pair *p = *state;
    char spub[41], ssec[41], cpub[41], csec[41], key[41], err[256];
    assert_int_equal(zmq_curve_keypair(spub, ssec), 0);
    assert_int_equal(zmq_curve_keypair(cpub, csec), 0);

    char dir[] = "/tmp/om_curve_XXXXXX", sfile[64], cfile[64], bad[64];
    assert_non_null(mkdtemp(dir));
    snprintf(sfile, sizeof sfile, "%s/server.key", dir);
    snprintf(cfile, sizeof cfile, "%s/secret.key", dir);
    snprintf(bad, sizeof bad, "%s/bad.key", dir);
    char text[128];
    snprintf(text, sizeof text, "# omnid public key\n\n  %s\n", spub);
    write_file(sfile, text);
    snprintf(text, sizeof text, "%s\n", csec);
    write_file(cfile, text);
    write_file(bad, "# nothing but\nnot-a-key\n");
    assert_int_equal(om_curve_read_key(sfile, key, err, sizeof err), 0);
    assert_string_equal(key, spub);
    assert_int_equal(om_curve_read_key(bad, key, err, sizeof err), OM_EFORMAT);
    assert_non_null(strstr(err, "bad.key:2"));
    snprintf(text, sizeof text, "%s/missing.key", dir);
    assert_int_equal(om_curve_read_key(text, key, err, sizeof err), OM_EIO);

    void *server = zmq_socket(p->ctx, ZMQ_ROUTER), *client = zmq_socket(p->ctx, ZMQ_DEALER);
    int one = 1, linger = 0;
    zmq_setsockopt(server, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(client, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_setsockopt(server, ZMQ_CURVE_SERVER, &one, sizeof one), 0);
    assert_int_equal(zmq_setsockopt(server, ZMQ_CURVE_SECRETKEY, ssec, 40), 0);
    assert_int_equal(zmq_bind(server, "tcp://127.0.0.1:*"), 0);
    char ep[64];
    size_t eplen = sizeof ep;
    zmq_getsockopt(server, ZMQ_LAST_ENDPOINT, ep, &eplen);

    char skey[41], ckey[41];
    assert_int_equal(om_curve_read_key(sfile, skey, err, sizeof err), 0);
    assert_int_equal(om_curve_read_key(cfile, ckey, err, sizeof err), 0);
    static const char not_z85[41] = "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~";
    assert_int_equal(om_curve_client(client, skey, not_z85, err, sizeof err), OM_EFORMAT);
    assert_int_equal(om_curve_client(client, skey, ckey, err, sizeof err), 0);
    assert_int_equal(zmq_connect(client, ep), 0);
    om_msgbuf b;
    om_msgbuf_init(&b);
    om_req_build(&b, "health", 5, 0, 0);
    om_frame f = om_msgbuf_frame(&b);
    assert_int_equal(om_send_frames(client, &f, 1, 0), 0);
    om_msg m;
    om_msg_init(&m);
    assert_int_equal(om_msg_recv(server, &m, 1, &p->lim, 3000, p->err, sizeof p->err), 0);
    uint64_t id;
    om_frame h = om_msg_frame(&m, 1);
    assert_int_equal(om_req_peek_id(h.data, h.size, &p->lim, &id), 0);
    assert_int_equal(id, 5);

    /* the wrong server key: the handshake fails, nothing arrives */
    void *intruder = zmq_socket(p->ctx, ZMQ_DEALER);
    zmq_setsockopt(intruder, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(om_curve_client(intruder, cpub, ckey, err, sizeof err), 0);
    assert_int_equal(zmq_connect(intruder, ep), 0);
    assert_int_equal(om_send_frames(intruder, &f, 1, 0), 0);
    assert_int_equal(om_msg_recv(server, &m, 1, &p->lim, 300, p->err, sizeof p->err), OM_ETIMEDOUT);

    om_msg_free(&m);
    om_msgbuf_free(&b);
    zmq_close(intruder);
    zmq_close(client);
    zmq_close(server);
    unlink(sfile);
    unlink(cfile);
    unlink(bad);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_total, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_envelope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_curve, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
