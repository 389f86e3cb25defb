/* 50 concurrent clients x 100 requests through the broker and 4 workers of the
 * test stage: every request answered exactly once, none lost, none doubled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "dtest.h"
#include "om_err.h"

#define CLIENTS  50
#define REQUESTS 100

static void test_fifty_clients(void **state)
{
    om_config cfg;
    char err[256];
    dt_config(&cfg);
    assert_int_equal(om_config_set(&cfg, "stage.test.workers=4", err, sizeof err), 0);
    dt_daemon *d = dt_daemon_start(&cfg);
    om_config_free(&cfg);
    assert_non_null(d);

    void *c[CLIENTS];
    int sent[CLIENTS] = { 0 }, waiting[CLIENTS] = { 0 };
    static uint8_t answered[CLIENTS][REQUESTS];
    zmq_pollitem_t items[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        c[i] = dt_client(dt_endpoint(d, "front"));
        items[i] = (zmq_pollitem_t){ c[i], 0, ZMQ_POLLIN, 0 };
    }
    om_proto_limits lim;
    om_proto_limits_default(&lim);
    om_msg m;
    om_msg_init(&m);
    int finals = 0, errors = 0, extra = 0;
    char payload[64];
    memset(payload, 'p', sizeof payload);
    int64_t until = dt_now_ms() + 50000;
    while (finals < CLIENTS * REQUESTS && dt_now_ms() < until) {
        for (int i = 0; i < CLIENTS; i++)
            if (!waiting[i] && sent[i] < REQUESTS) {
                uint64_t id = (uint64_t)i * REQUESTS + (uint64_t)sent[i];
                /* Every tenth goes to the broker itself, the rest through a stage. */
                if (sent[i] % 10 == 9)
                    dt_send(c[i], "health", id, NULL, 0, 0, NULL, 0);
                else
                    dt_send(c[i], "echo", id, "\x80", 1, 0, payload, sizeof payload);
                sent[i]++;
                waiting[i] = 1;
            }
        if (zmq_poll(items, CLIENTS, 1000) <= 0)
            continue;
        for (int i = 0; i < CLIENTS; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            while (om_msg_recv(c[i], &m, 0, &lim, 0, err, sizeof err) == 0) {
                om_frame fr[8];
                size_t n = om_msg_body(&m, fr, 8);
                om_reply_msg rep;
                assert_int_equal(om_reply_decode(&rep, fr, n, &lim, err, sizeof err), 0);
                uint64_t id = rep.id;
                int final = om_reply_is_final(&rep), type = rep.type;
                om_reply_msg_free(&rep);
                assert_true(id / REQUESTS == (uint64_t)i);
                if (type == OM_REPLY_RESULT && id % 10 != 9)
                    assert_int_equal(n, 2);   /* the echoed payload */
                if (!final)
                    continue;
                if (answered[i][id % REQUESTS]++)
                    extra++;
                errors += type == OM_REPLY_ERROR;
                finals++;
                waiting[i] = 0;
            }
        }
    }
    /* Nothing more may arrive: no request is answered twice. */
    usleep(200000);
    for (int i = 0; i < CLIENTS; i++)
        while (om_msg_recv(c[i], &m, 0, &lim, 0, err, sizeof err) == 0)
            extra++;
    om_msg_free(&m);
    assert_int_equal(finals, CLIENTS * REQUESTS);
    assert_int_equal(errors, 0);
    assert_int_equal(extra, 0);
    for (int i = 0; i < CLIENTS; i++)
        for (int k = 0; k < REQUESTS; k++)
            assert_int_equal(answered[i][k], 1);
    assert_int_equal(dt_status_u64(c[0], "inflight"), 0);
    assert_int_equal(dt_status_u64(c[0], "metrics.counters.drops_client"), 0);
    for (int i = 0; i < CLIENTS; i++)
        zmq_close(c[i]);
    dt_daemon_stop(d);
    dt_ctx_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifty_clients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
