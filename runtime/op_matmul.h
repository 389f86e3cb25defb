/* op_matmul.h: what op_matmul.c shares with op_get_rows.c: the checks of a weight
 * tensor of any weight type (F32, F16, Q8_0, Q4_0) as quant.glsl reads it, the device
 * features the weight kernels need, and their tile sizes per device. */
#ifndef OM_OP_MATMUL_H
#define OM_OP_MATMUL_H

#include <stdint.h>

#include "om_ops.h"

/* w is a weight type with contiguous rows of a whole number of 4-value chunks (F32,
 * F16) or 32-value blocks (Q8_0, Q4_0), rows aligned for the kernels' loads, strides
 * below 2^32, and inside its buffer; quantized tensors also need the buffer to run to
 * the next 8-byte boundary (the kernels read whole aligned words). */
int  op_check_weight(om_cmd *c, const char *op, const char *what, const om_tensor *w);
/* shaderInt64 and subgroup arithmetic (one workgroup = one subgroup). */
int  op_mm_device_ok(om_cmd *c, const char *op);
/* Matvec rows per workgroup for rows of K values, matmul tile (TM x-rows, TN W-rows per
 * lane) for type. */
void op_mm_tiles(const om_gpu_info *info, int type, int64_t K, uint32_t *rows, uint32_t *tm,
                 uint32_t *tn);

#endif
