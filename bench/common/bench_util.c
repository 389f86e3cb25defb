/* bench_util.c: the helpers of bench_util.h. */
#define _DEFAULT_SOURCE             /* getloadavg */
#include "bench_util.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

int64_t om_bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double om_bench_now_s(void)
{
    return om_bench_now_ns() * 1e-9;
}

double om_bench_rusage_s(int who)
{
    struct rusage u;
    getrusage(who, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec +
           u.ru_stime.tv_usec * 1e-6;
}

double om_bench_cpu_s(void)
{
    return om_bench_rusage_s(RUSAGE_SELF);
}

void om_bench_keep(om_bench_sample *best, double t0, double c0)
{
    const double sec = om_bench_now_s() - t0, cpu = om_bench_cpu_s() - c0;
    if (sec < best->sec) {
        best->sec = sec;
        best->cpu = cpu;
    }
}

void om_bench_memcpy_round(void *dst, const void *src, size_t n, om_bench_sample *best)
{
    const double t0 = om_bench_now_s(), c0 = om_bench_cpu_s();
    memcpy(dst, src, n);
    om_bench_keep(best, t0, c0);
    (void)((volatile const char *)dst)[n / 2];
}

void om_bench_sgemm_nt(int m, int n, int k, const float *A, const float *B, float *C)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, A, k, B, k, 0.0f, C, n);
}

void om_bench_fill_random(float *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((int32_t)seed >> 8) / (float)(1 << 23);
    }
}

void om_bench_print_load(const char *when)
{
    double load[3];
    if (getloadavg(load, 3) == 3)
        printf("load average %s: %.2f %.2f %.2f\n", when, load[0], load[1], load[2]);
}
