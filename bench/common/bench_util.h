/* bench_util.h: what the benchmarks (every folder of bench/) share: clocks, process
 * CPU time, best-of samples, the memcpy and OpenBLAS sgemm references, fill patterns and
 * the load average. Benchmarks report ratios against a reference measured in the same
 * run, so every reference is timed with the same clocks as the op it is compared with. */
#ifndef OM_BENCH_UTIL_H
#define OM_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* The best (shortest) of repeated samples: wall seconds and the process CPU seconds
 * spent meanwhile (cpu / sec says how many cores it had). */
typedef struct om_bench_sample {
    double sec, cpu;
} om_bench_sample;

#define OM_BENCH_SAMPLE_INIT { 1e30, 0 }

int64_t om_bench_now_ns(void);                 /* CLOCK_MONOTONIC */
double  om_bench_now_s(void);

/* CPU seconds (user + system) of getrusage(who): RUSAGE_SELF, all threads (llvmpipe's
 * and OpenBLAS's included), or RUSAGE_CHILDREN, the waited-for children. */
double om_bench_rusage_s(int who);
double om_bench_cpu_s(void);                   /* om_bench_rusage_s(RUSAGE_SELF) */

/* Ends a sample begun at om_bench_now_s() t0 and om_bench_cpu_s() c0; keeps it in best
 * when it is shorter. */
void om_bench_keep(om_bench_sample *best, double t0, double c0);

/* One timed copy of n bytes into best; the copy is read afterwards so the compiler can
 * neither drop nor merge it. */
void om_bench_memcpy_round(void *dst, const void *src, size_t n, om_bench_sample *best);

/* C = A · Bᵀ in f32, row-major A {m, k}, B {n, k}, C {m, n}: the layout of a Linear
 * (om_ops.h's matmul), as the OpenBLAS reference computes it. */
void om_bench_sgemm_nt(int m, int n, int k, const float *A, const float *B, float *C);

/* Deterministic values in [-1, 1) from seed (an LCG). */
void om_bench_fill_random(float *p, size_t n, uint32_t seed);

/* Prints "load average WHEN: 1m 5m 15m" (nothing when the system does not say). */
void om_bench_print_load(const char *when);

#endif
