/* vision_test.h: shared fixture of the vision tests: one om_gpu per executable, tiny
 * models written at test time by tools/mkvision.py ($OM_TEST_MODELS), PyTorch goldens
 * from tools/golden/vision.py ($OM_TEST_GOLDEN), comparison with a stated tolerance. */
#ifndef VISION_TEST_H
#define VISION_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "om_gpu.h"
#include "om_npy.h"

extern om_gpu *vt_gpu;

int  vt_setup(void **state);
/* Closes the device; fails the group on any validation-layer error. */
int  vt_teardown(void **state);
/* $OM_TEST_MODELS/name */
const char *vt_model(const char *name);
/* Reads golden `name`.npy (F32) or fails the test. */
void vt_golden(const char *name, om_npy *out);
/* |got - want| <= atol + rtol*|want| for all n values; prints the worst element. */
void vt_expect(const char *what, const float *got, const om_npy *want, double atol, double rtol);
/* Copies GGUF src to dst with the u32 metadata `key` set to value (key NULL: none) and
 * tensor `drop` left out (NULL: none): hostile variants of the test models. */
void vt_rewrite_gguf(const char *src, const char *dst, const char *key, uint32_t value, const char *drop);
/* The largest |got - want| (for tests showing a broken variant is caught). */
double vt_maxdiff(const float *got, const float *want, int64_t n);

#endif
