/* proto/: sensor topic names, the IMU sensor message (also as the Python client
 * writes it) and the published embedding map. */
#define _GNU_SOURCE    /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "om_err.h"
#include "om_proto.h"

static om_proto_limits lim;
static char err[256];

static int setup(void **state)
{
    om_proto_limits_default(&lim);
    err[0] = 0;
    return 0;
}

static void assert_err_has(const char *needle)
{
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_topic_parse(void **state)
{
    char robot[OM_PROTO_MAX_NAME], kind[OM_PROTO_MAX_NAME];
    const char *t = "sensor/r1-arm.2/imu";
    assert_int_equal(om_topic_parse_sensor(t, strlen(t), robot, kind, err, sizeof err), 0);
    assert_string_equal(robot, "r1-arm.2");
    assert_string_equal(kind, "imu");
    static const char *const bad[] = { "sensor/", "sensor/r1", "sensor//imu", "sensor/r1/", "omni/r1/imu",
                                       "sensor/r 1/imu", "sensor/r1/imu/extra", "sens" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(om_topic_parse_sensor(bad[i], strlen(bad[i]), robot, kind, err, sizeof err), OM_EFORMAT);
    char longname[200] = "sensor/";
    memset(longname + 7, 'a', 100);
    strcpy(longname + 107, "/imu");
    assert_int_equal(om_topic_parse_sensor(longname, strlen(longname), robot, kind, err, sizeof err), OM_EFORMAT);
    assert_err_has("robot must have 1..63 characters, has 100");
    /* not NUL-terminated input: the length rules */
    assert_int_equal(om_topic_parse_sensor("sensor/r2/audioXYZ", 15, robot, kind, err, sizeof err), 0);
    assert_string_equal(kind, "audio");
}

static void test_imu_roundtrip(void **state)
{
    om_imu_sample s = { .stamp_ns = 1764140000123456789ull, .frame_id = "r1/imu_link",
                        .orientation = { 0, 0, 0.38268343, 0.92387953 },
                        .angular_velocity = { 0.01, -0.02, 0.3 }, .linear_acceleration = { 0.1, 0, 9.81 } };
    s.angular_velocity_cov[0] = s.angular_velocity_cov[4] = s.angular_velocity_cov[8] = 0.001;
    om_msgbuf b;
    om_msgbuf_init(&b);
    assert_int_equal(om_imu_encode(&b, &s), 0);
    om_imu_sample d;
    assert_int_equal(om_imu_decode(b.sb.data, b.sb.size, &lim, &d, err, sizeof err), 0);
    assert_memory_equal(&d, &s, sizeof s);
    om_msgbuf_free(&b);
}

/* What the Python client writes (tests/proto/make_test_data.py), read by C. */
static void test_imu_from_python(void **state)
{
    FILE *f = fopen(OM_PROTO_TEST_DIR "/imu_python.msgpack", "rb");
    assert_non_null(f);
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    om_imu_sample s;
    assert_int_equal(om_imu_decode(buf, n, &lim, &s, err, sizeof err), 0);
    assert_true(s.stamp_ns == 1764140000123456789ull);
    assert_string_equal(s.frame_id, "r1/imu_link");
    assert_true(s.angular_velocity[2] == 0.3 && s.angular_velocity[1] == -0.02);
    assert_true(s.linear_acceleration[2] == 9.81);
    assert_true(s.orientation[3] == 0.92387953);
    assert_true(s.orientation_cov[0] == 0.0);
    assert_true(s.angular_velocity_cov[4] == 0.001);
}

static void test_imu_hostile(void **state)
{
    om_msgbuf b;
    om_msgbuf_init(&b);
    msgpack_packer *pk = &b.pk;
    om_imu_sample s;

    /* minimal: no orientation, no covariances */
    msgpack_pack_map(pk, 3);
    om_pack_str(pk, "header");
    msgpack_pack_map(pk, 2);
    om_pack_kv_u64(pk, "stamp_ns", 5);
    om_pack_kv_str(pk, "frame_id", "f");
    om_pack_str(pk, "angular_velocity");
    msgpack_pack_map(pk, 3);
    om_pack_kv_f64(pk, "x", 0);
    om_pack_kv_i64(pk, "y", -1);
    om_pack_kv_f64(pk, "z", 0);
    om_pack_str(pk, "linear_acceleration");
    msgpack_pack_map(pk, 3);
    om_pack_kv_f64(pk, "x", 0);
    om_pack_kv_f64(pk, "y", 0);
    om_pack_kv_f64(pk, "z", 0.0 / 0.0);
    assert_int_equal(om_imu_decode(b.sb.data, b.sb.size, &lim, &s, err, sizeof err), OM_EFORMAT);
    assert_err_has("linear_acceleration.z: not a finite number");

    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_map(pk, 2);
    om_pack_str(pk, "header");
    msgpack_pack_map(pk, 2);
    om_pack_kv_u64(pk, "stamp_ns", 5);
    om_pack_kv_str(pk, "frame_id", "f");
    om_pack_str(pk, "angular_velocity");
    msgpack_pack_map(pk, 3);
    om_pack_kv_f64(pk, "x", 0);
    om_pack_kv_f64(pk, "y", 0);
    om_pack_kv_str(pk, "z", "fast");
    assert_int_equal(om_imu_decode(b.sb.data, b.sb.size, &lim, &s, err, sizeof err), OM_EFORMAT);
    assert_err_has("angular_velocity.z: expected number, got str");

    om_imu_sample ok = { .stamp_ns = 1, .frame_id = "f" };
    om_imu_encode(&b, &ok);
    /* the covariance array is 9 doubles (9 x cb + 8 bytes); shorten it to 8 by editing its header */
    char *cov = memmem(b.sb.data, b.sb.size, "orientation_covariance\x99", 23);
    assert_non_null(cov);
    cov[22] = (char)0x98;
    assert_int_equal(om_imu_decode(b.sb.data, b.sb.size, &lim, &s, err, sizeof err), OM_EFORMAT);
    assert_err_has("trailing");            /* the walk sees a 9th number left over */

    om_imu_encode(&b, &ok);
    assert_int_equal(om_imu_decode(b.sb.data, b.sb.size, &lim, &s, err, sizeof err), 0);
    assert_int_equal(om_imu_decode(b.sb.data, b.sb.size - 3, &lim, &s, err, sizeof err), OM_EFORMAT);

    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_map(pk, 1);
    om_pack_str(pk, "header");
    msgpack_pack_map(pk, 2);
    om_pack_kv_u64(pk, "stamp_ns", 5);
    char longid[100];
    memset(longid, 'x', sizeof longid - 1);
    longid[99] = 0;
    om_pack_kv_str(pk, "frame_id", longid);
    assert_int_equal(om_imu_decode(b.sb.data, b.sb.size, &lim, &s, err, sizeof err), OM_ERANGE);
    assert_err_has("header.frame_id");

    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_map(pk, 0);
    assert_int_equal(om_imu_decode(b.sb.data, b.sb.size, &lim, &s, err, sizeof err), OM_EFORMAT);
    assert_err_has("header: missing");
    om_msgbuf_free(&b);
}

static void test_pub_embedding(void **state)
{
    om_msgbuf b;
    om_msgbuf_init(&b);
    assert_int_equal(om_pub_embedding(&b, 99, "imu", 4), 0);
    const float v[4] = { 1, 0, 0, 0 };
    om_frame frames[2] = { om_msgbuf_frame(&b), { v, sizeof v } };
    assert_int_equal(om_msgpack_validate(b.sb.data, b.sb.size, &lim, err, sizeof err), 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, b.sb.data, b.sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    uint64_t stamp;
    om_tensor_view t;
    assert_int_equal(om_map_u64(&u.data, "", "stamp_ns", &stamp, err, sizeof err), 0);
    assert_int_equal(stamp, 99);
    assert_int_equal(om_map_tensor(&u.data, "", "tensor", frames, 2, &t, err, sizeof err), 0);
    assert_int_equal(t.shape[0], 4);
    assert_ptr_equal(t.data, v);
    msgpack_unpacked_destroy(&u);
    om_msgbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_topic_parse, setup),
        cmocka_unit_test_setup(test_imu_roundtrip, setup),
        cmocka_unit_test_setup(test_imu_from_python, setup),
        cmocka_unit_test_setup(test_imu_hostile, setup),
        cmocka_unit_test_setup(test_pub_embedding, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
