/* tensor.c: om_tensor helpers: contiguous layouts, views, permutes, arena allocation.
 * A view or permute that does not fit its parent returns a tensor whose buf is NULL,
 * which every op refuses with a message; these helpers have no error channel. */
#include <string.h>

#include "om_err.h"
#include "om_ops.h"

om_tensor om_tensor_make(om_buf *buf, uint64_t off, int type,
                         int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)
{
    om_tensor t;
    memset(&t, 0, sizeof(t));
    t.buf = buf;
    t.off = off;
    t.type = type;
    t.ne[0] = ne0;
    t.ne[1] = ne1;
    t.ne[2] = ne2;
    t.ne[3] = ne3;
    t.nb[0] = om_type_block_bytes(type);
    t.nb[1] = om_row_bytes(type, ne0);
    t.nb[2] = t.nb[1] * (uint64_t)ne1;
    t.nb[3] = t.nb[2] * (uint64_t)ne2;
    return t;
}

int64_t om_tensor_nelem(const om_tensor *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

uint64_t om_tensor_nbytes(const om_tensor *t)
{
    return om_row_bytes(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
}

int om_tensor_is_contiguous(const om_tensor *t)
{
    /* Dims of size 1 are never stepped over, so their stride does not matter. */
    if (t->ne[0] > 1 && t->nb[0] != om_type_block_bytes(t->type))
        return 0;
    uint64_t expect = om_row_bytes(t->type, t->ne[0]);
    if (!expect)
        return 0;
    for (int i = 1; i < 4; i++) {
        if (t->ne[i] > 1 && t->nb[i] != expect)
            return 0;
        expect *= (uint64_t)t->ne[i];
    }
    return 1;
}

om_tensor om_tensor_view(const om_tensor *t, const int64_t start[4], const int64_t ne[4])
{
    om_tensor v = *t;
    const int blk = om_type_block(t->type);
    for (int i = 0; i < 4; i++) {
        if (start[i] < 0 || ne[i] < 1 || start[i] > t->ne[i] - ne[i] ||
            (i == 0 && blk > 1 && (start[0] % blk || ne[0] % blk)) || blk < 1) {
            v.buf = NULL;
            return v;
        }
        v.ne[i] = ne[i];
    }
    v.off += (uint64_t)(start[0] / blk) * t->nb[0];
    for (int i = 1; i < 4; i++)
        v.off += (uint64_t)start[i] * t->nb[i];
    return v;
}

om_tensor om_tensor_permute(const om_tensor *t, int p0, int p1, int p2, int p3)
{
    const int p[4] = { p0, p1, p2, p3 };
    om_tensor r = *t;
    int seen = 0;
    for (int i = 0; i < 4; i++) {
        if (p[i] < 0 || p[i] > 3 || (seen & (1 << p[i]))) {
            r.buf = NULL;
            return r;
        }
        seen |= 1 << p[i];
        r.ne[i] = t->ne[p[i]];
        r.nb[i] = t->nb[p[i]];
    }
    /* Block types keep their blocks along ne[0]. */
    if (om_type_block(t->type) > 1 && p[0] != 0)
        r.buf = NULL;
    return r;
}

int om_tensor_alloc(om_arena *a, int type, int64_t ne0, int64_t ne1, int64_t ne2,
                    int64_t ne3, om_tensor *out)
{
    const int64_t ne[4] = { ne0, ne1, ne2, ne3 };
    /* 2^40 bytes bounds any product here well inside uint64 and any real arena. */
    const uint64_t limit = (uint64_t)1 << 40;
    memset(out, 0, sizeof(*out));
    uint64_t n = om_row_bytes(type, ne0);
    if (!n || ne0 < 1 || (uint64_t)ne0 > limit)
        return OM_EINVAL;
    for (int i = 1; i < 4; i++) {
        if (ne[i] < 1 || (uint64_t)ne[i] > limit)
            return OM_EINVAL;
        if (n > limit / (uint64_t)ne[i])
            return OM_ERANGE;
        n *= (uint64_t)ne[i];
    }
    om_buf *buf;
    uint64_t off;
    int err = om_arena_alloc(a, n, &buf, &off);
    if (err < 0)
        return err;
    *out = om_tensor_make(buf, off, type, ne0, ne1, ne2, ne3);
    return 0;
}
