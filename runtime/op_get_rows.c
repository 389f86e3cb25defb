/* op_get_rows.c: om_op_get_rows, rows of a table of any weight type gathered by I32 ids
 * into F32 (token embeddings). shaders/get_rows.comp, one workgroup per output row. */
#include <stdio.h>

#include "op_internal.h"
#include "op_matmul.h"

/* Push constants of get_rows.comp; strides in bytes. */
struct gr_push {
    uint64_t t, ids, d;
    uint32_t K, N, M;
    uint32_t t_nb1, d_nb1;
};

int om_op_get_rows(om_cmd *c, const om_tensor *dst, const om_tensor *table, const om_tensor *ids)
{
    char sd[96], st[96], si[96];
    int err;
    if ((err = op_check_weight(c, "get_rows", "table", table)) < 0 ||
        (err = op_check(c, "get_rows", "ids", ids, OP_I32)) < 0 ||
        (err = op_check(c, "get_rows", "dst", dst, OP_F32)) < 0 ||
        (err = op_unit_rows(c, "get_rows", "ids", ids)) < 0 ||
        (err = op_unit_rows(c, "get_rows", "dst", dst)) < 0 ||
        (err = op_mm_device_ok(c, "get_rows")) < 0)
        return err;
    const int64_t M = ids->ne[0];
    if (table->ne[2] != 1 || table->ne[3] != 1 || ids->ne[1] != 1 || ids->ne[2] != 1 ||
        ids->ne[3] != 1 || dst->ne[0] != table->ne[0] || dst->ne[1] != ids->ne[0] ||
        dst->ne[2] != 1 || dst->ne[3] != 1)
        return op_fail(c, OM_EINVAL, "get_rows", "dst %s = table %s [ids %s]: shapes do not match "
                       "(table {K, N}, ids {M}, dst {K, M})", op_shape(dst, sd, sizeof(sd)),
                       op_shape(table, st, sizeof(st)), op_shape(ids, si, sizeof(si)));
    if (M > 1 && dst->nb[1] > UINT32_MAX)
        return op_fail(c, OM_EINVAL, "get_rows", "dst: row stride %llu bytes is 2^32 or more",
                       (unsigned long long)dst->nb[1]);

    uint32_t gx, gy;
    op_rows_grid(M, &gx, &gy);
    if (gy > OP_MAX_GROUPS)
        return op_fail(c, OM_ERANGE, "get_rows", "%lld ids is beyond the grid", (long long)M);
    const struct gr_push pc = {
        .t = op_addr(table), .ids = op_addr(ids), .d = op_addr(dst),
        .K = (uint32_t)table->ne[0], .N = (uint32_t)table->ne[1], .M = (uint32_t)M,
        .t_nb1 = (uint32_t)table->nb[1], .d_nb1 = M > 1 ? (uint32_t)dst->nb[1] : 0,
    };
    char name[32];
    snprintf(name, sizeof(name), "get_rows_%s", om_type_name(table->type));
    const uint32_t spec[1] = { om_gpu_get_info(om_cmd_gpu(c))->subgroup_size };
    const om_tensor *reads[2] = { table, ids };
    return op_dispatch(c, "get_rows", name, spec, 1, &pc, sizeof(pc), gx, gy, 1, reads, 2,
                       &dst, 1);
}
