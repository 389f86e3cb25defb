/* Sensor topics from robots and the streams omnid publishes: topic names, the
 * sensor_msgs/Imu map, the embedding map. */
#include "om_proto.h"

#include <math.h>
#include <string.h>

#include "om_err.h"
#include "om_proto_impl.h"

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

/* Copies the part s[0..n) into dst after checking it is a name. */
static int take_name(const char *s, size_t n, const char *what, char dst[OM_PROTO_MAX_NAME],
                     char *err, size_t errlen)
{
    if (n == 0 || n >= OM_PROTO_MAX_NAME)
        return om_proto_fail(err, errlen, OM_EFORMAT, "topic: %s must have 1..%d characters, has %zu", what,
                             OM_PROTO_MAX_NAME - 1, n);
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]))
            return om_proto_fail(err, errlen, OM_EFORMAT, "topic: %s has a character outside [A-Za-z0-9_.-] at %zu",
                                 what, i);
    memcpy(dst, s, n);
    dst[n] = 0;
    return 0;
}

int om_topic_parse_sensor(const void *topic, size_t len, char robot[OM_PROTO_MAX_NAME],
                          char kind[OM_PROTO_MAX_NAME], char *err, size_t errlen)
{
    const char *t = topic;
    static const char prefix[] = "sensor/";
    if (len < sizeof prefix - 1 || memcmp(t, prefix, sizeof prefix - 1))
        return om_proto_fail(err, errlen, OM_EFORMAT, "topic: does not start with 'sensor/'");
    t += sizeof prefix - 1;
    len -= sizeof prefix - 1;
    const char *slash = memchr(t, '/', len);
    if (!slash)
        return om_proto_fail(err, errlen, OM_EFORMAT, "topic: expected sensor/<robot>/<kind>");
    int ret = take_name(t, (size_t)(slash - t), "robot", robot, err, errlen);
    if (ret < 0)
        return ret;
    return take_name(slash + 1, len - (size_t)(slash - t) - 1, "kind", kind, err, errlen);
}

static int pack_vec(msgpack_packer *pk, const char *key, const double *v, int n)
{
    static const char *const axes[] = { "x", "y", "z", "w" };
    int r = om_pack_str(pk, key) | msgpack_pack_map(pk, n);
    for (int i = 0; i < n; i++)
        r |= om_pack_kv_f64(pk, axes[i], v[i]);
    return r;
}

static int pack_cov(msgpack_packer *pk, const char *key, const double *c)
{
    int r = om_pack_str(pk, key) | msgpack_pack_array(pk, 9);
    for (int i = 0; i < 9; i++)
        r |= msgpack_pack_double(pk, c[i]);
    return r;
}

int om_imu_encode(om_msgbuf *b, const om_imu_sample *s)
{
    msgpack_packer *pk = &b->pk;
    msgpack_sbuffer_clear(&b->sb);
    int r = msgpack_pack_map(pk, 7) | om_pack_str(pk, "header") | msgpack_pack_map(pk, 2) |
            om_pack_kv_u64(pk, "stamp_ns", s->stamp_ns) | om_pack_kv_str(pk, "frame_id", s->frame_id) |
            pack_vec(pk, "orientation", s->orientation, 4) |
            pack_cov(pk, "orientation_covariance", s->orientation_cov) |
            pack_vec(pk, "angular_velocity", s->angular_velocity, 3) |
            pack_cov(pk, "angular_velocity_covariance", s->angular_velocity_cov) |
            pack_vec(pk, "linear_acceleration", s->linear_acceleration, 3) |
            pack_cov(pk, "linear_acceleration_covariance", s->linear_acceleration_cov);
    return r ? OM_ENOMEM : 0;
}

static int finite_f64(const msgpack_object *map, const char *path, const char *key, double *v,
                      char *err, size_t errlen)
{
    int ret = om_map_f64(map, path, key, v, err, errlen);
    if (ret == 0 && !isfinite(*v))
        return om_proto_fail(err, errlen, OM_EFORMAT, "%s.%s: not a finite number", path, key);
    return ret;
}

static int get_vec(const msgpack_object *root, const char *key, double *v, int n, char *err, size_t errlen)
{
    static const char *const axes[] = { "x", "y", "z", "w" };
    const msgpack_object *m;
    int ret = om_map_map(root, "", key, &m, err, errlen);
    for (int i = 0; i < n && ret == 0; i++)
        ret = finite_f64(m, key, axes[i], &v[i], err, errlen);
    return ret;
}

static int get_cov(const msgpack_object *root, const char *key, double *c, char *err, size_t errlen)
{
    const msgpack_object *a = om_map_get(root, key);
    if (!a)
        return 0;                        /* stays zero: "unknown covariance" */
    if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != 9)
        return om_proto_fail(err, errlen, OM_EFORMAT, "%s: expected an array of 9 numbers", key);
    for (int i = 0; i < 9; i++) {
        const msgpack_object *e = &a->via.array.ptr[i];
        switch (e->type) {
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:          c[i] = e->via.f64; break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER: c[i] = (double)e->via.u64; break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: c[i] = (double)e->via.i64; break;
        default:
            return om_proto_fail(err, errlen, OM_EFORMAT, "%s[%d]: expected number, got %s", key, i,
                                 om_proto_typename(e));
        }
        if (!isfinite(c[i]))
            return om_proto_fail(err, errlen, OM_EFORMAT, "%s[%d]: not a finite number", key, i);
    }
    return 0;
}

static int imu_decode(const msgpack_object *root, om_imu_sample *s, char *err, size_t errlen)
{
    if (root->type != MSGPACK_OBJECT_MAP)
        return om_proto_fail(err, errlen, OM_EFORMAT, "imu: expected map, got %s", om_proto_typename(root));
    const msgpack_object *hdr;
    const char *fid;
    size_t fidlen;
    int ret;
    if ((ret = om_map_map(root, "", "header", &hdr, err, errlen)) < 0 ||
        (ret = om_map_u64(hdr, "header", "stamp_ns", &s->stamp_ns, err, errlen)) < 0 ||
        (ret = om_map_str(hdr, "header", "frame_id", &fid, &fidlen, err, errlen)) < 0)
        return ret;
    if (fidlen >= sizeof s->frame_id || memchr(fid, 0, fidlen))
        return om_proto_fail(err, errlen, OM_ERANGE, "header.frame_id: %zu bytes (limit %zu, no NUL)", fidlen,
                             sizeof s->frame_id - 1);
    memcpy(s->frame_id, fid, fidlen);
    s->frame_id[fidlen] = 0;
    if ((ret = get_vec(root, "angular_velocity", s->angular_velocity, 3, err, errlen)) < 0 ||
        (ret = get_vec(root, "linear_acceleration", s->linear_acceleration, 3, err, errlen)) < 0 ||
        (ret = get_cov(root, "orientation_covariance", s->orientation_cov, err, errlen)) < 0 ||
        (ret = get_cov(root, "angular_velocity_covariance", s->angular_velocity_cov, err, errlen)) < 0 ||
        (ret = get_cov(root, "linear_acceleration_covariance", s->linear_acceleration_cov, err, errlen)) < 0)
        return ret;
    if (om_map_get(root, "orientation"))
        return get_vec(root, "orientation", s->orientation, 4, err, errlen);
    s->orientation[3] = 1.0;
    s->orientation_cov[0] = -1.0;
    return 0;
}

int om_imu_decode(const void *buf, size_t len, const om_proto_limits *lim, om_imu_sample *s,
                  char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    msgpack_unpacked u;
    int ret = om_proto_unpack(&u, buf, len, lim, err, errlen);
    if (ret == 0)
        ret = imu_decode(&u.data, s, err, errlen);
    msgpack_unpacked_destroy(&u);
    return ret == OM_ENOENT ? OM_EFORMAT : ret;
}

int om_pub_embedding(om_msgbuf *b, uint64_t stamp_ns, const char *modality, uint64_t dim)
{
    msgpack_sbuffer_clear(&b->sb);
    int r = msgpack_pack_map(&b->pk, 3) | om_pack_kv_u64(&b->pk, "stamp_ns", stamp_ns) |
            om_pack_kv_str(&b->pk, "modality", modality) | om_pack_str(&b->pk, "tensor");
    if (r)
        return OM_ENOMEM;
    return om_pack_tensor(&b->pk, OM_DTYPE_F32, 1, &dim, NULL, 0, 1);
}
