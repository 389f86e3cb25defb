/* ops_test.c: the fixture of ops_test.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "om_npy.h"
#include "ops_test.h"

int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    om_gpu_opts o = { .quiet = 1 };
    char err[512];
    if (!f)
        return -1;
    if (om_gpu_open(&f->gpu, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "om_gpu_open: %s\n", err);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

int fx_teardown(void **state)
{
    fx *f = *state;
    int verr = om_gpu_validation_errors(f->gpu);
    fx_release(state);
    om_gpu_close(f->gpu);
    free(f);
    if (verr)
        fprintf(stderr, "%d validation errors\n", verr);
    return verr ? -1 : 0;
}

int fx_release(void **state)
{
    fx *f = *state;
    for (int i = 0; i < f->n_bufs; i++)
        om_buf_destroy(f->bufs[i]);
    f->n_bufs = 0;
    if (om_gpu_validation_errors(f->gpu)) {
        fprintf(stderr, "%d validation errors\n", om_gpu_validation_errors(f->gpu));
        return -1;
    }
    return 0;
}

static om_buf *new_buf(fx *f, uint64_t size)
{
    om_buf *b = NULL;
    assert_true(f->n_bufs < FX_MAX_BUFS);
    assert_int_equal(om_buf_create(f->gpu, size, OM_BUF_DEVICE, &b), 0);
    f->bufs[f->n_bufs++] = b;
    return b;
}

static void read_golden(const char *name, om_npy *a)
{
    char path[1024], err[256];
    snprintf(path, sizeof(path), "%s/%s.npy", OPS_GOLDEN_DIR, name);
    if (om_npy_read(path, a, err, sizeof(err)) < 0)
        fail_msg("%s: %s", path, err);
}

static int npy_type(int dtype)
{
    return dtype == OM_NPY_F16 ? OM_TYPE_F16 : dtype == OM_NPY_I32 ? OM_TYPE_I32 : OM_TYPE_F32;
}

om_tensor fx_load(fx *f, const char *name)
{
    om_npy a;
    int64_t ne[4] = { 1, 1, 1, 1 };
    read_golden(name, &a);
    assert_true(a.ndim >= 1 && a.ndim <= 4);
    for (int i = 0; i < a.ndim; i++)
        ne[i] = a.shape[a.ndim - 1 - i];
    const int type = npy_type(a.dtype);
    const uint64_t nbytes = (uint64_t)a.n * (type == OM_TYPE_F16 ? 2 : 4);
    om_buf *b = new_buf(f, nbytes);
    assert_int_equal(om_buf_write(b, 0, a.data, nbytes), 0);
    om_npy_free(&a);
    return om_tensor_make(b, 0, type, ne[0], ne[1], ne[2], ne[3]);
}

om_tensor fx_empty(fx *f, int type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)
{
    om_tensor t = om_tensor_make(NULL, 0, type, ne0, ne1, ne2, ne3);
    const uint64_t n = om_tensor_nbytes(&t);
    t.buf = new_buf(f, n);
    void *zero = calloc(1, n);
    assert_non_null(zero);
    assert_int_equal(om_buf_write(t.buf, 0, zero, n), 0);
    free(zero);
    return t;
}

static double elem(const void *p, int type, int64_t i)
{
    if (type == OM_TYPE_F16)
        return om_fp16_to_fp32(((const uint16_t *)p)[i]);
    if (type == OM_TYPE_I32)
        return ((const int32_t *)p)[i];
    return ((const float *)p)[i];
}

void fx_expect(fx *f, const om_tensor *t, const char *name, double atol, double rtol)
{
    om_npy a;
    read_golden(name, &a);
    assert_true(om_tensor_is_contiguous(t));
    assert_int_equal(a.n, om_tensor_nelem(t));
    assert_int_equal(npy_type(a.dtype), t->type);
    const uint64_t nbytes = om_tensor_nbytes(t);
    void *got = malloc(nbytes);
    assert_non_null(got);
    assert_int_equal(om_buf_read(t->buf, t->off, got, nbytes), 0);
    double worst = 0.0;
    int64_t bad = -1, n_bad = 0;
    for (int64_t i = 0; i < a.n; i++) {
        const double g = elem(got, t->type, i), w = elem(a.data, t->type, i);
        double e;
        if (isinf(w) || isinf(g))
            e = g == w ? 0.0 : INFINITY;
        else
            e = fabs(g - w);
        if (!(e <= atol + rtol * fabs(w))) {
            if (bad < 0)
                bad = i;
            n_bad++;
        }
        if (!(e <= worst))
            worst = e;
    }
    printf("  %-22s %6lld values, max |err| %.3g (atol %.1g, rtol %.1g)\n", name,
           (long long)a.n, worst, atol, rtol);
    if (bad >= 0)
        fail_msg("%s: %lld of %lld values off; first at %lld: got %.7g want %.7g", name,
                 (long long)n_bad, (long long)a.n, (long long)bad, elem(got, t->type, bad),
                 elem(a.data, t->type, bad));
    free(got);
    om_npy_free(&a);
}

om_cmd *fx_begin(fx *f)
{
    om_cmd *c = NULL;
    assert_int_equal(om_cmd_begin(f->gpu, &c), 0);
    return c;
}

void fx_submit(fx *f, om_cmd *c)
{
    int err = om_cmd_submit(c);
    if (err < 0)
        fail_msg("submit: %s", om_gpu_last_error(f->gpu));
}

void fx_check_message(fx *f, const char *opname)
{
    const char *msg = om_gpu_last_error(f->gpu);
    printf("  refused: %s\n", msg);
    assert_non_null(strstr(msg, opname));
}
