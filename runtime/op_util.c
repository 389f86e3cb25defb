/* op_util.c: the helpers of op_internal.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "op_internal.h"

int op_fail(om_cmd *c, int err, const char *op, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return om_gpu_set_error(om_cmd_gpu(c), err, "%s: %s", op, msg);
}

const char *op_shape(const om_tensor *t, char *buf, size_t n)
{
    const char *tn = om_type_name(t->type);
    snprintf(buf, n, "{%lld, %lld, %lld, %lld} %s", (long long)t->ne[0], (long long)t->ne[1],
             (long long)t->ne[2], (long long)t->ne[3], tn ? tn : "?");
    return buf;
}

int op_elem_size(int type)
{
    switch (type) {
    case OM_TYPE_F32: return 4;
    case OM_TYPE_F16: return 2;
    case OM_TYPE_I32: return 4;
    default: return 0;
    }
}

static const char *type_list(unsigned types, char *buf, size_t n)
{
    static const int all[] = { OM_TYPE_F32, OM_TYPE_F16, OM_TYPE_I32 };
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if ((types & OP_T(all[i])) && len < n)
            len += snprintf(buf + len, n - len, "%s%s", len ? " or " : "", om_type_name(all[i]));
    return buf;
}

int op_check(om_cmd *c, const char *op, const char *what, const om_tensor *t, unsigned types)
{
    char s[96], tl[32];
    if (!t)
        return op_fail(c, OM_EINVAL, op, "%s is missing", what);
    if (!t->buf)
        return op_fail(c, OM_EINVAL, op, "%s has no buffer (an out-of-range view?)", what);
    if (t->type < 0 || t->type >= 32 || !(types & OP_T(t->type)) || !op_elem_size(t->type))
        return op_fail(c, OM_EINVAL, op, "%s is %s, expected %s", what, op_shape(t, s, sizeof(s)),
                       type_list(types, tl, sizeof(tl)));
    const uint64_t es = (uint64_t)op_elem_size(t->type);
    int64_t n = 1;
    uint64_t last = 0;          /* element index of the farthest element */
    for (int i = 0; i < 4; i++) {
        if (t->ne[i] < 1 || t->ne[i] >= OP_MAX_INDEX)
            return op_fail(c, OM_EINVAL, op, "%s has size %lld in dim %d", what,
                           (long long)t->ne[i], i);
        if (t->nb[i] % es || t->nb[i] / es >= (uint64_t)OP_MAX_INDEX)
            return op_fail(c, OM_EINVAL, op, "%s: stride %llu bytes in dim %d is not a whole "
                           "number of %s elements below 2^31", what,
                           (unsigned long long)t->nb[i], i, om_type_name(t->type));
        n *= t->ne[i];
        if (n >= OP_MAX_INDEX)
            return op_fail(c, OM_ERANGE, op, "%s %s has 2^31 or more elements", what,
                           op_shape(t, s, sizeof(s)));
        /* Each term is below 2^62 and `last` below 2^31 before adding it: no overflow. */
        last += (uint64_t)(t->ne[i] - 1) * (t->nb[i] / es);
        if (last >= (uint64_t)OP_MAX_INDEX)
            return op_fail(c, OM_ERANGE, op, "%s %s: its strides reach past 2^31 elements",
                           what, op_shape(t, s, sizeof(s)));
    }
    const uint64_t span = (last + 1) * es;
    if (t->off % es)
        return op_fail(c, OM_EINVAL, op, "%s: offset %llu is not aligned to its element",
                       what, (unsigned long long)t->off);
    const uint64_t size = om_buf_size(t->buf);
    if (t->off > size || span > size - t->off)
        return op_fail(c, OM_ERANGE, op, "%s %s: bytes [%llu, %llu) exceed its buffer of %llu",
                       what, op_shape(t, s, sizeof(s)), (unsigned long long)t->off,
                       (unsigned long long)(t->off + span), (unsigned long long)size);
    return 0;
}

int op_same_shape(om_cmd *c, const char *op, const char *wa, const om_tensor *a,
                  const char *wb, const om_tensor *b)
{
    char sa[96], sb[96];
    for (int i = 0; i < 4; i++)
        if (a->ne[i] != b->ne[i])
            return op_fail(c, OM_EINVAL, op, "%s %s and %s %s differ in shape", wa,
                           op_shape(a, sa, sizeof(sa)), wb, op_shape(b, sb, sizeof(sb)));
    return 0;
}

int op_unit_rows(om_cmd *c, const char *op, const char *what, const om_tensor *t)
{
    if (t->ne[0] > 1 && t->nb[0] != (uint64_t)op_elem_size(t->type))
        return op_fail(c, OM_EINVAL, op, "%s: rows must be contiguous (nb[0] = %llu)", what,
                       (unsigned long long)t->nb[0]);
    return 0;
}

void op_strides(const om_tensor *t, uint32_t nb[4])
{
    const uint64_t es = (uint64_t)op_elem_size(t->type);
    for (int i = 0; i < 4; i++)
        nb[i] = (uint32_t)(t->nb[i] / es);
}

void op_ne(const om_tensor *t, uint32_t ne[4])
{
    for (int i = 0; i < 4; i++)
        ne[i] = (uint32_t)t->ne[i];
}

uint64_t op_addr(const om_tensor *t)
{
    return om_buf_addr(t->buf) + t->off;
}

int op_contiguous(const om_tensor *t)
{
    uint64_t expect = (uint64_t)op_elem_size(t->type);
    for (int i = 0; i < 4; i++) {
        if (t->ne[i] > 1 && t->nb[i] != expect)
            return 0;
        expect *= (uint64_t)t->ne[i];
    }
    return 1;
}

uint32_t op_wg_rows(om_cmd *c)
{
    /* llvmpipe spreads workgroups over its threads and runs one workgroup's subgroups
     * one after another, with a coroutine switch per barrier: two subgroups measured
     * 2-4x faster than 8 or 16 on rows of 4096. A GPU wants a wide workgroup per row
     * (256 = 8 warps). Both stay within red_sh's 32 slots. */
    const om_gpu_info *info = om_gpu_get_info(om_cmd_gpu(c));
    uint32_t sg = info->subgroup_size ? info->subgroup_size : 32;
    uint32_t wg = info->kind == OM_DEV_CPU ? 2 * sg : 16 * sg;
    if (wg > 256)
        wg = 256;
    if (wg < sg)
        wg = sg;
    return wg;
}

uint32_t op_wg_flat(om_cmd *c)
{
    (void)c;
    return 256;
}

uint32_t op_flat_groups(int64_t n, uint32_t wg)
{
    /* Grid-stride loops past this: enough groups for any GPU, and few enough that
     * llvmpipe does not pay a per-group setup for every 256 values. */
    const int64_t cap = 4096;
    int64_t g = (n + wg - 1) / wg;
    if (g > cap)
        g = cap;
    return g < 1 ? 1 : (uint32_t)g;
}

void op_rows_grid(int64_t rows, uint32_t *gx, uint32_t *gy)
{
    if (rows <= OP_MAX_GROUPS) {
        *gx = (uint32_t)(rows < 1 ? 1 : rows);
        *gy = 1;
    } else {
        *gx = OP_MAX_GROUPS;
        *gy = (uint32_t)((rows + OP_MAX_GROUPS - 1) / OP_MAX_GROUPS);
    }
}

int op_dispatch(om_cmd *c, const char *op, const char *name, const uint32_t *spec, int n_spec,
                const void *push, uint32_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz,
                const om_tensor *const *reads, int n_reads, const om_tensor *const *writes,
                int n_writes)
{
    om_gpu *gpu = om_cmd_gpu(c);
    om_buf *rd[8], *wr[4];
    int nr = 0, nw = 0;
    if (n_reads > 8 || n_writes > 4)
        return op_fail(c, OM_EINTERNAL, op, "too many operands");
    for (int i = 0; i < n_reads; i++)
        if (reads[i])
            rd[nr++] = reads[i]->buf;
    for (int i = 0; i < n_writes; i++)
        if (writes[i])
            wr[nw++] = writes[i]->buf;

    om_pipe *p;
    int err = om_gpu_pipeline(gpu, name, spec, n_spec, push_bytes, &p);
    if (err < 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", om_gpu_last_error(gpu));
        return op_fail(c, err, op, "pipeline %s: %s", name, why);
    }
    err = om_cmd_dispatch(c, p, push, push_bytes, gx, gy, gz, rd, nr, wr, nw);
    if (err < 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", om_gpu_last_error(gpu));
        return op_fail(c, err, op, "dispatch %s: %s", name, why);
    }
    return 0;
}
