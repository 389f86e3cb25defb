/* libFuzzer target for everything proto/ parses from outside: the raw validator,
 * request decoding with every typed accessor, reply decoding, om_req_peek_id, the
 * IMU sensor message and sensor topic names.
 * Input: byte 0 picks how many payload frames follow frame 0 (0..3, of 0, 8 and 16
 * zero bytes, so frame references and tensors by frame resolve); the rest is frame 0.
 * Also checks the validator's promise: what it accepts, msgpack-c unpacks whole. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "om_proto.h"

static void use_args(const om_req *r)
{
    char err[256], s[64];
    const char *p;
    size_t len;
    uint64_t u;
    int64_t i;
    double d;
    bool b;
    const msgpack_object *m;
    om_frame f;
    om_tensor_view t;
    if (r->args.type != MSGPACK_OBJECT_MAP)
        return;
    for (uint32_t k = 0; k < r->args.via.map.size; k++) {
        const msgpack_object *key = &r->args.via.map.ptr[k].key;
        char name[32];
        size_t n = key->via.str.size < sizeof name - 1 ? key->via.str.size : sizeof name - 1;
        memcpy(name, key->via.str.ptr, n);
        name[n] = 0;
        om_req_arg_str(r, name, &p, &len, err, sizeof err);
        om_req_arg_strcpy(r, name, s, sizeof s, err, sizeof err);
        om_req_arg_u64(r, name, &u, err, sizeof err);
        om_req_arg_i64(r, name, &i, err, sizeof err);
        om_req_arg_f64(r, name, &d, err, sizeof err);
        om_req_arg_bool(r, name, &b, err, sizeof err);
        if (om_req_arg_map(r, name, &m, err, sizeof err) == 0)
            om_map_u64(m, "args.x", "frame", &u, err, sizeof err);
        if (om_req_arg_frame(r, name, &f, err, sizeof err) == 0 && f.size)
            (void)((volatile const uint8_t *)f.data)[f.size - 1];
        if (om_req_arg_tensor(r, name, &t, err, sizeof err) == 0 && t.nbytes)
            (void)((volatile const uint8_t *)t.data)[t.nbytes - 1];
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t zeros[16];
    if (size < 1)
        return 0;
    om_proto_limits lim;
    om_proto_limits_default(&lim);
    lim.max_elems = 4096;                  /* keep single runs fast */
    om_frame frames[4] = { { data + 1, size - 1 }, { zeros, 0 }, { zeros, 8 }, { zeros, 16 } };
    size_t n = 1 + data[0] % 4;
    char err[256];

    if (om_msgpack_validate(data + 1, size - 1, &lim, err, sizeof err) == 0) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        if (msgpack_unpack_next(&u, (const char *)data + 1, size - 1, &off) != MSGPACK_UNPACK_SUCCESS ||
            off != size - 1)
            abort();
        msgpack_unpacked_destroy(&u);
    }

    om_req r;
    if (om_req_decode(&r, frames, n, &lim, err, sizeof err) == 0)
        use_args(&r);
    om_req_free(&r);

    om_reply_msg rep;
    if (om_reply_decode(&rep, frames, n, &lim, err, sizeof err) == 0 && rep.type == OM_REPLY_IMAGE &&
        rep.image_data.size)
        (void)((volatile const uint8_t *)rep.image_data.data)[rep.image_data.size - 1];
    om_reply_msg_free(&rep);

    uint64_t id;
    om_req_peek_id(data + 1, size - 1, &lim, &id);

    om_imu_sample imu;
    om_imu_decode(data + 1, size - 1, &lim, &imu, err, sizeof err);
    char robot[OM_PROTO_MAX_NAME], kind[OM_PROTO_MAX_NAME];
    om_topic_parse_sensor(data + 1, size - 1 < 160 ? size - 1 : 160, robot, kind, err, sizeof err);
    return 0;
}
