/* stages.c: the stage registry. A new stage (llm, encoders) is one om_stage in
 * its own file plus one line in `registry` below. */
#include "om_daemon_impl.h"

#include <stdlib.h>
#include <string.h>

extern const om_stage om_stage_ingest;
extern const om_stage om_stage_test;
extern const om_stage om_stage_llm;
extern const om_stage om_stage_vision;

static const om_stage *const registry[] = {
    &om_stage_ingest,
    &om_stage_llm,
    &om_stage_vision,
    &om_stage_test,
};

int om_stage_count(void) { return (int)(sizeof registry / sizeof registry[0]); }

const om_stage *om_stage_at(int i)
{
    return i >= 0 && i < om_stage_count() ? registry[i] : NULL;
}

const om_stage *om_stage_find(const char *name)
{
    for (int i = 0; i < om_stage_count(); i++)
        if (!strcmp(registry[i]->name, name))
            return registry[i];
    return NULL;
}

const om_stage *om_stage_for_op(const char *op, int test_ops)
{
    for (int i = 0; i < om_stage_count(); i++) {
        if (registry[i]->test_only && !test_ops)
            continue;
        for (const char *const *o = registry[i]->ops; *o; o++)
            if (!strcmp(*o, op))
                return registry[i];
    }
    return NULL;
}

/* The wire protocol's op list (om_proto) has no test ops, and om_req_decode rejects
 * unknown ops; with test_ops on, a request for a test op is decoded here with the
 * same checks (validated frame 0, v, id, op, args map, deadline_ms), into the same
 * om_req, released with om_req_free. */
static int decode_test_op(om_req *r, const om_frame *frames, size_t n,
                          const om_proto_limits *lim, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->args.type = MSGPACK_OBJECT_NIL;
    int rc = om_msgpack_validate(frames[0].data, frames[0].size, lim, err, errlen);
    if (rc)
        return rc;
    msgpack_unpacked_init(&r->unpacked);
    r->live = true;
    size_t off = 0;
    if (msgpack_unpack_next(&r->unpacked, frames[0].data, frames[0].size, &off) !=
        MSGPACK_UNPACK_SUCCESS) {
        snprintf(err, errlen, "frame 0: cannot unpack");
        return OM_EFORMAT;
    }
    const msgpack_object *root = &r->unpacked.data;
    const char *op;
    size_t oplen;
    uint64_t v;
    const msgpack_object *args = NULL;
    if (root->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "frame 0: expected map");
        return OM_EFORMAT;
    }
    if ((rc = om_map_u64(root, "", "v", &v, err, errlen)) ||
        (rc = om_map_u64(root, "", "id", &r->id, err, errlen)) ||
        (rc = om_map_str(root, "", "op", &op, &oplen, err, errlen)))
        return rc == OM_ENOENT ? OM_EFORMAT : rc;
    if (v != OM_PROTO_VERSION) {
        snprintf(err, errlen, "v: version %llu not supported", (unsigned long long)v);
        return OM_EUNSUPPORTED;
    }
    if (om_map_get(root, "deadline_ms") &&
        (rc = om_map_u64(root, "", "deadline_ms", &r->deadline_ms, err, errlen)))
        return rc;
    if (om_map_get(root, "args") && (rc = om_map_map(root, "", "args", &args, err, errlen)))
        return rc;
    if (args)
        r->args = *args;
    if (oplen > OM_PROTO_MAX_OP) {
        snprintf(err, errlen, "op: too long");
        return OM_EUNSUPPORTED;
    }
    memcpy(r->op_name, op, oplen);
    r->op_name[oplen] = 0;
    const om_stage *st = om_stage_for_op(r->op_name, 1);
    if (!st || !st->test_only) {
        snprintf(err, errlen, "op: unknown op '%s'", r->op_name);
        return OM_EUNSUPPORTED;
    }
    r->op = -1;
    if (!(r->frames = malloc(n * sizeof *r->frames))) {
        snprintf(err, errlen, "out of memory");
        return OM_ENOMEM;
    }
    memcpy(r->frames, frames, n * sizeof *frames);
    r->n_frames = n - 1;
    return 0;
}

int om_stage_req_decode(om_req *r, const om_frame *frames, size_t n,
                        const om_proto_limits *lim, int test_ops, char *err, size_t errlen)
{
    char first[256];
    int rc = om_req_decode(r, frames, n, lim, first, sizeof first);
    if (rc != OM_EUNSUPPORTED || !test_ops || n == 0 || n > lim->max_frames)
        goto out;
    om_req_free(r);
    char second[256];
    if (decode_test_op(r, frames, n, lim, second, sizeof second) == 0)
        return 0;
    /* Report om_proto's own message: it names the unknown op or the bad field. */
    om_req_free(r);
out:
    if (rc)
        snprintf(err, errlen, "%s", first);
    return rc;
}
