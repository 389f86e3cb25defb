/* Sampler rules on fixed logits (each rule alone, with distributions worked out by
 * hand), seeded determinism, draw frequencies, max_tokens, and stop strings. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "om_err.h"
#include "om_sampler.h"

/* Every rule off, temperature 1. */
static om_sampler_params plain(void)
{
    om_sampler_params p = { .temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f,
                            .repeat_penalty = 1.0f, .repeat_last_n = 0, .max_tokens = 0, .seed = 42 };
    return p;
}

static om_sampler *open_s(om_sampler_params p, int n_vocab)
{
    om_sampler *s;
    assert_int_equal(om_sampler_open(&s, &p, n_vocab), 0);
    return s;
}

/* The chain's distribution must be exactly want (ids in order, probs within 1e-5). */
static void expect_dist(om_sampler *s, const float *logits, const int32_t *ids, const double *probs, int n)
{
    int32_t gi[16];
    float gp[16];
    int gn = om_sampler_dist(s, logits, gi, gp, 16);
    if (gn != n)
        fail_msg("%d candidates, want %d", gn, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(gi[i], ids[i]);
        if (fabs(gp[i] - probs[i]) > 1e-5)
            fail_msg("candidate %d: p %.6f, want %.6f", i, gp[i], probs[i]);
    }
}

static void test_greedy(void **state)
{
    om_sampler_params p = plain();
    p.temperature = 0;
    p.top_k = 1;                    /* ignored by greedy */
    om_sampler *s = open_s(p, 4);
    const float l[] = { 1, 3, 2, 3 };
    expect_dist(s, l, (const int32_t[]){ 1 }, (const double[]){ 1.0 }, 1);   /* tie: lowest id */
    int32_t tok;
    assert_int_equal(om_sampler_sample(s, l, &tok), 0);
    assert_int_equal(tok, 1);
    const float nan_l[] = { NAN, 0.5f, -1, NAN };
    assert_int_equal(om_sampler_sample(s, nan_l, &tok), 0);
    assert_int_equal(tok, 1);
    om_sampler_close(s);
}

static void test_temperature(void **state)
{
    om_sampler_params p = plain();
    p.temperature = 0.5f;
    om_sampler *s = open_s(p, 4);
    const float l[] = { 0, 1, 2, 3 };
    /* softmax([0, 2, 4, 6]) */
    double z = 1 + exp(2) + exp(4) + exp(6);
    expect_dist(s, l, (const int32_t[]){ 3, 2, 1, 0 },
                (const double[]){ exp(6) / z, exp(4) / z, exp(2) / z, 1 / z }, 4);
    /* Infinite logits: the mass goes to the +inf ones; all -inf is uniform. */
    const float inf_l[] = { INFINITY, 1, INFINITY, -INFINITY };
    expect_dist(s, inf_l, (const int32_t[]){ 0, 2, 1, 3 }, (const double[]){ 0.5, 0.5, 0, 0 }, 4);
    const float ninf_l[] = { -INFINITY, -INFINITY, -INFINITY, -INFINITY };
    expect_dist(s, ninf_l, (const int32_t[]){ 0, 1, 2, 3 }, (const double[]){ 0.25, 0.25, 0.25, 0.25 }, 4);
    om_sampler_close(s);
}

static void test_top_k(void **state)
{
    om_sampler_params p = plain();
    p.top_k = 2;
    om_sampler *s = open_s(p, 4);
    const float l[] = { 0, 3, 1, 2 };
    double z = exp(3) + exp(2);
    expect_dist(s, l, (const int32_t[]){ 1, 3 }, (const double[]){ exp(3) / z, exp(2) / z }, 2);
    om_sampler_close(s);

    /* A wider vocabulary with ties: the k best by logit, ties by lower id, in order. */
    enum { V = 1000, K = 10 };
    float big[V];
    for (int i = 0; i < V; i++)
        big[i] = (float)((i * 7919) % 613) / 10.0f;    /* values repeat: ties */
    p.top_k = K;
    s = open_s(p, V);
    int32_t ids[K];
    float probs[K];
    assert_int_equal(om_sampler_dist(s, big, ids, probs, K), K);
    int taken[V] = { 0 };
    for (int k = 0; k < K; k++) {
        int best = -1;
        for (int i = 0; i < V; i++)
            if (!taken[i] && (best < 0 || big[i] > big[best]))
                best = i;
        taken[best] = 1;
        assert_int_equal(ids[k], best);
    }
    om_sampler_close(s);
}

static void test_top_p(void **state)
{
    /* p = 0.5, 0.3, 0.2: 0.5 < 0.7 <= 0.8, so two are kept and renormalised. */
    const float l[] = { logf(0.2f), logf(0.5f), logf(0.3f) };
    om_sampler_params p = plain();
    p.top_p = 0.7f;
    om_sampler *s = open_s(p, 3);
    expect_dist(s, l, (const int32_t[]){ 1, 2 }, (const double[]){ 0.625, 0.375 }, 2);
    om_sampler_close(s);
    p.top_p = 0.4f;
    s = open_s(p, 3);
    expect_dist(s, l, (const int32_t[]){ 1 }, (const double[]){ 1.0 }, 1);
    om_sampler_close(s);
    p.top_p = 0.9f;
    s = open_s(p, 3);
    expect_dist(s, l, (const int32_t[]){ 1, 2, 0 }, (const double[]){ 0.5, 0.3, 0.2 }, 3);
    om_sampler_close(s);
}

static void test_min_p(void **state)
{
    const float l[] = { logf(0.2f), logf(0.5f), logf(0.3f) };
    om_sampler_params p = plain();
    p.min_p = 0.5f;                 /* keep p >= 0.25 */
    om_sampler *s = open_s(p, 3);
    expect_dist(s, l, (const int32_t[]){ 1, 2 }, (const double[]){ 0.625, 0.375 }, 2);
    om_sampler_close(s);
    p.min_p = 0.7f;                 /* keep p >= 0.35 */
    s = open_s(p, 3);
    expect_dist(s, l, (const int32_t[]){ 1 }, (const double[]){ 1.0 }, 1);
    om_sampler_close(s);
}

static void test_repetition_penalty(void **state)
{
    om_sampler_params p = plain();
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 2;
    om_sampler *s = open_s(p, 4);
    const float l[] = { 2, 1, -1, 0.5f };
    /* Window holds the last two: 2 and 3 (3 twice, penalised once). 0 has left it. */
    assert_int_equal(om_sampler_accept(s, 0), 0);
    assert_int_equal(om_sampler_accept(s, 3), 0);
    assert_int_equal(om_sampler_accept(s, 2), 0);
    assert_int_equal(om_sampler_accept(s, 3), 0);
    /* logits become 2, 1, -2, 0.25 */
    double z = exp(2) + exp(1) + exp(-2) + exp(0.25);
    expect_dist(s, l, (const int32_t[]){ 0, 1, 3, 2 },
                (const double[]){ exp(2) / z, exp(1) / z, exp(0.25) / z, exp(-2) / z }, 4);
    om_sampler_close(s);

    p.temperature = 0;
    p.repeat_penalty = 4.0f;
    s = open_s(p, 4);
    const float g[] = { 2, 1.9f, 0, 0 };
    assert_int_equal(om_sampler_accept(s, 0), 0);
    int32_t tok;
    assert_int_equal(om_sampler_sample(s, g, &tok), 0);
    assert_int_equal(tok, 1);                                  /* 2 / 4 < 1.9 */
    om_sampler_reset(s);                                       /* forgets the window */
    assert_int_equal(om_sampler_sample(s, g, &tok), 0);
    assert_int_equal(tok, 0);
    om_sampler_close(s);
}

static void test_seed_and_frequencies(void **state)
{
    enum { N = 20000 };
    const float l[] = { logf(0.2f), logf(0.5f), logf(0.3f) };
    om_sampler_params p = plain();
    om_sampler *a = open_s(p, 3), *b = open_s(p, 3);
    p.seed = 43;
    om_sampler *c = open_s(p, 3);
    int count[3] = { 0 }, differ = 0;
    for (int i = 0; i < N; i++) {
        int32_t ta, tb, tc;
        assert_int_equal(om_sampler_sample(a, l, &ta), 0);
        assert_int_equal(om_sampler_sample(b, l, &tb), 0);
        assert_int_equal(om_sampler_sample(c, l, &tc), 0);
        assert_int_equal(ta, tb);
        differ += ta != tc;
        count[ta]++;
    }
    assert_true(differ > N / 4);
    /* Binomial sd is <= 0.0036 at N = 20000; allow 5 sd. */
    assert_true(fabs(count[0] / (double)N - 0.2) < 0.018);
    assert_true(fabs(count[1] / (double)N - 0.5) < 0.018);
    assert_true(fabs(count[2] / (double)N - 0.3) < 0.018);
    /* Reset restarts the same sequence. */
    om_sampler_reset(a);
    om_sampler_reset(b);
    for (int i = 0; i < 100; i++) {
        int32_t ta, tb;
        om_sampler_sample(a, l, &ta);
        om_sampler_sample(b, l, &tb);
        assert_int_equal(ta, tb);
    }
    om_sampler_close(a);
    om_sampler_close(b);
    om_sampler_close(c);
}

static void test_limits(void **state)
{
    om_sampler_params p = plain();
    p.max_tokens = 3;
    om_sampler *s = open_s(p, 8);
    assert_int_equal(om_sampler_accept(s, 1), 0);
    assert_int_equal(om_sampler_accept(s, 2), 0);
    assert_int_equal(om_sampler_accept(s, 3), 1);
    assert_int_equal(om_sampler_accept(s, 8), OM_EINVAL);
    assert_int_equal(om_sampler_accept(s, -1), OM_EINVAL);
    om_sampler_close(s);

    om_sampler *bad;
    p = plain();
    p.repeat_penalty = 0;
    assert_int_equal(om_sampler_open(&bad, &p, 8), OM_EINVAL);
    p = plain();
    p.temperature = NAN;
    assert_int_equal(om_sampler_open(&bad, &p, 8), OM_EINVAL);
    p = plain();
    p.repeat_last_n = OM_SAMPLER_MAX_WINDOW + 1;
    assert_int_equal(om_sampler_open(&bad, &p, 8), OM_EINVAL);
    p = plain();
    assert_int_equal(om_sampler_open(&bad, &p, 0), OM_EINVAL);
    assert_null(bad);
    om_sampler_params d = om_sampler_default_params();
    assert_int_equal(om_sampler_open(&bad, &d, 32000), 0);
    om_sampler_close(bad);
}

/* Feeds pieces; returns what a client would have been shown, and whether it stopped. */
static int feed_all(om_stop *st, const char *const *pieces, int n, char *shown)
{
    char out[512];
    size_t k = 0, no;
    int stopped = 0;
    for (int i = 0; i < n && !stopped; i++) {
        stopped = om_stop_feed(st, pieces[i], strlen(pieces[i]), out, sizeof(out), &no);
        assert_true(stopped >= 0);
        memcpy(shown + k, out, no);
        k += no;
    }
    if (!stopped)
        k += om_stop_flush(st, shown + k, 512);
    shown[k] = 0;
    return stopped;
}

static void test_stop_strings(void **state)
{
    const char *stops[] = { "</s>", "\nUser:" };
    om_stop *st;
    char shown[1024];
    char out[512];
    size_t no;

    assert_int_equal(om_stop_open(&st, stops, 2), 0);
    /* Held back while it may be a stop string, then released when it is not. */
    assert_int_equal(om_stop_feed(st, "Hello\nUs", 8, out, sizeof(out), &no), 0);
    assert_int_equal(no, 5);
    assert_memory_equal(out, "Hello", 5);
    assert_int_equal(om_stop_feed(st, "ual", 3, out, sizeof(out), &no), 0);
    assert_int_equal(no, 6);
    assert_memory_equal(out, "\nUsual", 6);
    om_stop_close(st);

    /* A stop string across three tokens; nothing of it is shown. */
    assert_int_equal(om_stop_open(&st, stops, 2), 0);
    assert_int_equal(feed_all(st, (const char *[]){ "Hi", " there<", "/s", ">more" }, 4, shown), 1);
    assert_string_equal(shown, "Hi there");
    assert_int_equal(om_stop_feed(st, "x", 1, out, sizeof(out), &no), 1);
    assert_int_equal(no, 0);
    om_stop_close(st);

    assert_int_equal(om_stop_open(&st, stops, 2), 0);
    assert_int_equal(feed_all(st, (const char *[]){ "a\nUs", "er", ": b" }, 3, shown), 1);
    assert_string_equal(shown, "a");
    om_stop_close(st);

    /* No stop: everything comes out, a trailing partial match at flush. */
    assert_int_equal(om_stop_open(&st, stops, 2), 0);
    assert_int_equal(feed_all(st, (const char *[]){ "x</", "y</" }, 2, shown), 0);
    assert_string_equal(shown, "x</y</");
    om_stop_close(st);

    /* Half a UTF-8 character (a byte token) waits for the rest. */
    assert_int_equal(om_stop_open(&st, NULL, 0), 0);
    assert_int_equal(om_stop_feed(st, "a\xe2\x96", 3, out, sizeof(out), &no), 0);
    assert_int_equal(no, 1);
    assert_int_equal(om_stop_feed(st, "\x81", 1, out, sizeof(out), &no), 0);
    assert_int_equal(no, 3);
    assert_memory_equal(out, "\xe2\x96\x81", 3);
    om_stop_close(st);

    const char *empty[] = { "" };
    assert_int_equal(om_stop_open(&st, empty, 1), OM_EINVAL);
    assert_int_equal(om_stop_open(&st, stops, OM_STOP_MAX + 1), OM_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_temperature),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_repetition_penalty),
        cmocka_unit_test(test_seed_and_frequencies),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_stop_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
