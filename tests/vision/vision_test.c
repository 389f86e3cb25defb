#include "vision_test.h"
#include "om_gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

om_gpu *vt_gpu;

int vt_setup(void **state)
{
    char err[256];
    om_gpu_opts o = { .quiet = 1 };
    if (om_gpu_open(&vt_gpu, &o, err, sizeof err)) {
        fprintf(stderr, "no Vulkan device: %s\n", err);
        return -1;
    }
    return 0;
}

int vt_teardown(void **state)
{
    int n = om_gpu_validation_errors(vt_gpu);
    om_gpu_close(vt_gpu);
    vt_gpu = NULL;
    if (n) {
        fprintf(stderr, "%d validation-layer errors\n", n);
        return -1;
    }
    return 0;
}

const char *vt_model(const char *name)
{
    static char path[1024];
    const char *dir = getenv("OM_TEST_MODELS");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", name);
    return path;
}

void vt_golden(const char *name, om_npy *out)
{
    char path[1024], err[256];
    const char *dir = getenv("OM_TEST_GOLDEN");
    snprintf(path, sizeof path, "%s/%s.npy", dir ? dir : ".", name);
    if (om_npy_read(path, out, err, sizeof err) || out->dtype != OM_NPY_F32)
        fail_msg("golden %s: %s", path, err);
}

double vt_maxdiff(const float *got, const float *want, int64_t n)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= worst))
            worst = d;
    }
    return worst;
}

void vt_expect(const char *what, const float *got, const om_npy *want, double atol, double rtol)
{
    const float *w = want->data;
    int64_t bad = 0, worst_i = 0;
    double worst = 0;
    for (int64_t i = 0; i < want->n; i++) {
        double d = fabs((double)got[i] - w[i]), lim = atol + rtol * fabs(w[i]);
        if (!(d <= lim))
            bad++;
        if (!(d <= worst)) {
            worst = d;
            worst_i = i;
        }
    }
    printf("  %-28s %lld values, max |diff| %.3g at %lld (got %.6g, want %.6g), tolerance %.0e + %.0e*|want|\n",
           what, (long long)want->n, worst, (long long)worst_i, (double)got[worst_i], (double)w[worst_i], atol, rtol);
    if (bad)
        fail_msg("%s: %lld of %lld values outside the tolerance", what, (long long)bad, (long long)want->n);
}

void vt_rewrite_gguf(const char *src, const char *dst, const char *key, uint32_t value, const char *drop)
{
    om_gguf *g;
    om_gguf_writer *w;
    char err[256], name[256];
    if (om_gguf_open(&g, src, NULL, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(om_gguf_writer_open(&w, (uint32_t)om_gguf_alignment(g)), 0);
    for (int64_t i = 0; i < om_gguf_n_kv(g); i++) {
        const om_gguf_kv *kv = om_gguf_kv_at(g, i);
        snprintf(name, sizeof name, "%.*s", (int)kv->key.n, kv->key.p);
        int rc;
        if (key && !strcmp(name, key)) {
            rc = om_gguf_set_u32(w, name, value);
        } else if (kv->type == OM_GGUF_STRING) {
            char v[256];
            om_gguf_str str;
            assert_int_equal(om_gguf_get_str(g, name, &str), 0);
            snprintf(v, sizeof v, "%.*s", (int)str.n, str.p);
            rc = om_gguf_set_str(w, name, v);
        } else if (kv->type == OM_GGUF_ARRAY) {
            assert_int_equal(kv->arr_type, OM_GGUF_F32);   /* the vision files hold f32 arrays only */
            rc = om_gguf_set_arr(w, name, kv->arr_type, kv->data, kv->arr_n);
        } else {
            rc = om_gguf_set_val(w, name, kv->type, kv->data);
        }
        assert_int_equal(rc, 0);
    }
    for (int64_t i = 0; i < om_gguf_n_tensors(g); i++) {
        const om_gguf_tensor *t = om_gguf_tensor_at(g, i);
        snprintf(name, sizeof name, "%.*s", (int)t->name.n, t->name.p);
        if (drop && !strcmp(name, drop))
            continue;
        assert_int_equal(om_gguf_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data), 0);
    }
    assert_int_equal(om_gguf_write_file(w, dst), 0);
    om_gguf_writer_free(w);
    om_gguf_close(g);
}
