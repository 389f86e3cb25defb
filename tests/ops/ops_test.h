/* ops_test.h: fixture for the op tests: one om_gpu per test executable, golden .npy
 * files uploaded as tensors, results downloaded and compared with a tolerance. */
#ifndef OPS_TEST_H
#define OPS_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "om_err.h"
#include "om_gpu.h"
#include "om_ops.h"

#define FX_MAX_BUFS 64

typedef struct fx {
    om_gpu *gpu;
    om_buf *bufs[FX_MAX_BUFS];
    int     n_bufs;
} fx;

/* Group setup/teardown: open and close the device (teardown fails on validation errors). */
int fx_setup(void **state);
int fx_teardown(void **state);
/* Per-test teardown: frees the test's buffers and fails on validation errors. */
int fx_release(void **state);
#define FX_TEST(fn) cmocka_unit_test_teardown(fn, fx_release)

/* Golden `name`.npy uploaded to a fresh buffer; the tensor's type follows the file's
 * dtype and its ne[] is the numpy shape reversed. */
om_tensor fx_load(fx *f, const char *name);
/* A zero-filled contiguous tensor in a fresh buffer. */
om_tensor fx_empty(fx *f, int type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3);
/* Checks every element of contiguous t (F32, F16 or I32) against golden `name`:
 * |got - want| <= atol + rtol * |want| (inf must match exactly). Prints the worst error. */
void fx_expect(fx *f, const om_tensor *t, const char *name, double atol, double rtol);
/* Submits c and asserts success. */
void fx_submit(fx *f, om_cmd *c);
om_cmd *fx_begin(fx *f);
/* Records one op expected to be refused with `err`, and checks the context's message
 * names the op. */
#define fx_refused(f, err, opname, call)                                              \
    do {                                                                              \
        om_cmd *c_ = fx_begin(f);                                                     \
        om_cmd *c = c_;                                                               \
        assert_int_equal((call), (err));                                              \
        fx_check_message((f), (opname));                                              \
        om_cmd_abort(c_);                                                             \
    } while (0)
void fx_check_message(fx *f, const char *opname);

#endif
