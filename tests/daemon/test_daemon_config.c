/* Config: defaults, ini files, --set overrides, and errors that name the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "om_daemon.h"
#include "om_err.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_defaults(void **state)
{
    om_config c;
    om_config_init(&c);
    assert_string_equal(c.front, "tcp://127.0.0.1:5555");
    assert_string_equal(c.pub, "tcp://127.0.0.1:5556");
    assert_string_equal(c.sensors, "tcp://127.0.0.1:5557");
    assert_string_equal(c.backend, "tcp://127.0.0.1:5560");
    assert_int_equal(c.heartbeat_ms, 1000);
    assert_int_equal(c.heartbeat_misses, 3);
    assert_int_equal(c.shutdown_ms, 5000);
    assert_int_equal(c.curve, 0);
    om_config_free(&c);
}

static void test_ini_and_overrides(void **state)
{
    char path[] = "/tmp/omnid-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "[daemon]\nfront = tcp://127.0.0.1:7000\ndeadline_ms = 1234\n"
                     "[stage.ingest]\nmode = process\nworkers = 3\nqueue = 9\n"
                     "[limits]\nmax_total_bytes = 8M\n[security]\ncurve = on\n");
    om_config c;
    char err[256];
    om_config_init(&c);
    assert_int_equal(om_config_load(&c, path, err, sizeof err), 0);
    assert_string_equal(c.front, "tcp://127.0.0.1:7000");
    assert_int_equal(c.deadline_ms, 1234);
    assert_int_equal(c.max_total_bytes, 8 << 20);
    assert_int_equal(c.curve, 1);
    om_stage_conf *s = om_config_stage(&c, "ingest");
    assert_int_equal(s->mode, OM_MODE_PROCESS);
    assert_int_equal(s->workers, 3);
    assert_int_equal(s->queue, 9);
    /* Overrides win over the file and are remembered for stage processes. */
    assert_int_equal(om_config_set(&c, "stage.ingest.workers=5", err, sizeof err), 0);
    assert_int_equal(om_config_set(&c, "daemon.front=tcp://127.0.0.1:7001", err, sizeof err), 0);
    assert_int_equal(s->workers, 5);
    assert_string_equal(c.front, "tcp://127.0.0.1:7001");
    assert_int_equal(c.noverrides, 2);
    assert_string_equal(c.overrides[0], "stage.ingest.workers=5");
    om_config_free(&c);
    unlink(path);
}

static void test_errors_name_the_key(void **state)
{
    om_config c;
    char err[256];
    om_config_init(&c);
    assert_int_equal(om_config_set(&c, "daemon.nope=1", err, sizeof err), OM_ENOENT);
    assert_non_null(strstr(err, "daemon.nope"));
    assert_int_equal(om_config_set(&c, "daemon.heartbeat_ms=abc", err, sizeof err), OM_ERANGE);
    assert_non_null(strstr(err, "heartbeat_ms"));
    assert_int_equal(om_config_set(&c, "daemon.heartbeat_ms=0", err, sizeof err), OM_ERANGE);
    assert_int_equal(om_config_set(&c, "stage.nosuch.workers=1", err, sizeof err), OM_ENOENT);
    assert_non_null(strstr(err, "nosuch"));
    assert_int_equal(om_config_set(&c, "stage.ingest.mode=sometimes", err, sizeof err), OM_EINVAL);
    assert_int_equal(om_config_set(&c, "noequals", err, sizeof err), OM_EINVAL);
    assert_int_equal(om_config_set(&c, "security.curve=maybe", err, sizeof err), OM_EINVAL);
    assert_int_equal(c.noverrides, 0);

    char path[] = "/tmp/omnid-config-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    write_file(path, "[daemon]\nshutdown_ms = 10\n\n[daemon]\nbogus = 3\n");
    assert_int_equal(om_config_load(&c, path, err, sizeof err), OM_ENOENT);
    assert_non_null(strstr(err, ":5:"));
    assert_non_null(strstr(err, "daemon.bogus"));
    unlink(path);
    assert_int_equal(om_config_load(&c, "/nonexistent/omnid.ini", err, sizeof err), OM_EIO);
    om_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_ini_and_overrides),
        cmocka_unit_test(test_errors_name_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
