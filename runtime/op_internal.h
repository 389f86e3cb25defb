/* op_internal.h: host helpers shared by the op files (runtime/op_*.c): argument checks
 * that leave "<op>: <what was wrong>" in om_gpu_last_error, tensor strides in elements
 * for push constants, workgroup sizes per device, and recording one dispatch of a named
 * pipeline with its read/write buffers. Every shader indexes with 32-bit uints, so the
 * checks bound every tensor (and every strided offset) below 2^31 elements. */
#ifndef OM_OP_INTERNAL_H
#define OM_OP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "om_err.h"
#include "om_ops.h"

#define OP_MAX_INDEX     ((int64_t)1 << 31)
#define OP_T(type)       (1u << (type))     /* bit of a type in a type mask */
#define OP_F32           OP_T(OM_TYPE_F32)
#define OP_F16           OP_T(OM_TYPE_F16)
#define OP_I32           OP_T(OM_TYPE_I32)
#define OP_MAX_GROUPS    65535u             /* per grid dimension, Vulkan's guaranteed minimum */

/* Records "<op>: <message>" as the context's last error and returns err. */
int op_fail(om_cmd *c, int err, const char *op, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "{4, 3, 1, 1} f32" */
const char *op_shape(const om_tensor *t, char *buf, size_t n);

/* t is present, of a type in `types`, plain (not a block type), every index it can
 * reach below 2^31 elements, strides whole elements, and wholly inside its buffer. */
int op_check(om_cmd *c, const char *op, const char *what, const om_tensor *t, unsigned types);
/* a and b have equal ne[0..3]. */
int op_same_shape(om_cmd *c, const char *op, const char *wa, const om_tensor *a,
                  const char *wb, const om_tensor *b);
/* Rows of t are contiguous (nb[0] is one element, or ne[0] == 1). */
int op_unit_rows(om_cmd *c, const char *op, const char *what, const om_tensor *t);

int      op_elem_size(int type);
/* Byte strides as element strides. */
void     op_strides(const om_tensor *t, uint32_t nb[4]);
void     op_ne(const om_tensor *t, uint32_t ne[4]);
uint64_t op_addr(const om_tensor *t);
/* Fully contiguous (dims of size 1 may have any stride). */
int      op_contiguous(const om_tensor *t);

/* Workgroup sizes: for one-row-per-workgroup reductions, and for flat elementwise grids. */
uint32_t op_wg_rows(om_cmd *c);
uint32_t op_wg_flat(om_cmd *c);
/* Groups for a grid-stride loop over n items. */
uint32_t op_flat_groups(int64_t n, uint32_t wg);
/* Rows spread over x then y. */
void     op_rows_grid(int64_t rows, uint32_t *gx, uint32_t *gy);

/* Records one dispatch of pipeline `name`; spec[0] is the workgroup size. The read and
 * write lists (NULL entries skipped) drive the recorder's hazard barriers. */
int op_dispatch(om_cmd *c, const char *op, const char *name, const uint32_t *spec, int n_spec,
                const void *push, uint32_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz,
                const om_tensor *const *reads, int n_reads, const om_tensor *const *writes,
                int n_writes);

#endif
