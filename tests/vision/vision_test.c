#include "vision_test.h"

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
