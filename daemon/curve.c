/* curve.c: CURVE keys and the ZAP handler. A ZAP handler thread on
 * inproc://zeromq.zap.01 answers every CURVE handshake of the daemon's context:
 * 200 for a client key in the allow-list, 400 otherwise. */
#include "om_daemon_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALLOW_MAX 4096

/* The next key of an allow-list: 1, 0 at the end, OM_EFORMAT. Same format as
 * om_curve_read_key: blank lines and `#` comments skipped. */
static int read_key_line(FILE *f, char out[OM_Z85_KEY + 1], int *line_no)
{
    char line[256];
    while (fgets(line, sizeof line, f)) {
        (*line_no)++;
        char *p = line + strspn(line, " \t");
        size_t len = strcspn(p, " \t\r\n");
        if (len == 0 || *p == '#')
            continue;
        uint8_t bin[32];
        p[len] = 0;
        if (len != OM_Z85_KEY || !zmq_z85_decode(bin, p))
            return OM_EFORMAT;
        memcpy(out, p, OM_Z85_KEY + 1);
        return 1;
    }
    return 0;
}

int om_curve_load_secret(const char *path, char secret[OM_Z85_KEY + 1],
                         char public[OM_Z85_KEY + 1], char *err, size_t errlen)
{
    int rc = om_curve_read_key(path, secret, err, errlen);
    if (rc)
        return rc;
    if (zmq_curve_public(public, secret)) {
        snprintf(err, errlen, "%s: not a CURVE secret key", path);
        return OM_EFORMAT;
    }
    return 0;
}

static int write_key(const char *dir, const char *name, const char *key, mode_t mode,
                     char *err, size_t errlen)
{
    char path[OM_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return OM_EIO;
    }
    char line[OM_Z85_KEY + 2];
    int n = snprintf(line, sizeof line, "%s\n", key);
    int ok = write(fd, line, (size_t)n) == n;
    ok &= close(fd) == 0;
    if (!ok) {
        snprintf(err, errlen, "%s: write failed", path);
        return OM_EIO;
    }
    return 0;
}

int om_curve_gen_keys(const char *dir, char *err, size_t errlen)
{
    char public[OM_Z85_KEY + 1], secret[OM_Z85_KEY + 1];
    if (zmq_curve_keypair(public, secret)) {
        snprintf(err, errlen, "zmq_curve_keypair: %s (libzmq built without CURVE?)",
                 zmq_strerror(errno));
        return OM_EUNSUPPORTED;
    }
    int rc = write_key(dir, "secret.key", secret, 0600, err, errlen);
    if (!rc)
        rc = write_key(dir, "public.key", public, 0644, err, errlen);
    return rc;
}

int om_curve_server(void *sock, const char secret[OM_Z85_KEY + 1])
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, OM_Z85_KEY) ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "omnid", 5))
        return OM_EIO;
    return 0;
}

static int load_allow(om_zap *z, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return OM_EIO;
    }
    int line = 0, rc;
    char key[OM_Z85_KEY + 1];
    while ((rc = read_key_line(f, key, &line)) == 1) {
        if (z->nallow == ALLOW_MAX) {
            rc = OM_ERANGE;
            break;
        }
        void *grown = realloc(z->allow, (size_t)(z->nallow + 1) * 32);
        if (!grown) {
            rc = OM_ENOMEM;
            break;
        }
        z->allow = grown;
        zmq_z85_decode(z->allow + (size_t)z->nallow * 32, key);
        z->nallow++;
    }
    fclose(f);
    if (rc == OM_EFORMAT)
        snprintf(err, errlen, "%s:%d: expected a 40-character z85 public key", path, line);
    else if (rc == OM_ERANGE)
        snprintf(err, errlen, "%s: more than %d keys", path, ALLOW_MAX);
    else if (rc)
        snprintf(err, errlen, "%s: out of memory", path);
    return rc < 0 ? rc : 0;
}

static int allowed(const om_zap *z, const void *key, size_t len)
{
    if (len != 32)
        return 0;
    for (int i = 0; i < z->nallow; i++)
        if (!memcmp(z->allow + (size_t)i * 32, key, 32))
            return 1;
    return 0;
}

/* ZAP request (RFC 27): version, request id, domain, address, identity, mechanism,
 * credentials; for CURVE one credential, the client's 32-byte public key. */
static void close_parts(zmq_msg_t *part, int n)
{
    for (int i = 0; i < n; i++)
        zmq_msg_close(&part[i]);
}

static void *zap_main(void *arg)
{
    om_zap *z = arg;
    for (;;) {
        zmq_msg_t part[8];
        int n = 0, extra = 0, more = 1;
        while (more) {
            zmq_msg_t tmp;
            zmq_msg_init(&tmp);
            if (zmq_msg_recv(&tmp, z->sock, 0) < 0) {
                zmq_msg_close(&tmp);
                close_parts(part, n);
                if (errno == EINTR)
                    break;
                return NULL;   /* ETERM: the daemon is closing */
            }
            more = zmq_msg_more(&tmp);
            if (n < 8) {
                zmq_msg_init(&part[n]);
                zmq_msg_move(&part[n++], &tmp);
            } else {
                extra = 1;
            }
            zmq_msg_close(&tmp);
        }
        if (more)
            continue;
        int ok = n == 7 && !extra && zmq_msg_size(&part[5]) == 5 &&
                 !memcmp(zmq_msg_data(&part[5]), "CURVE", 5) &&
                 allowed(z, zmq_msg_data(&part[6]), zmq_msg_size(&part[6]));
        char addr[64] = "?";
        if (n >= 4)
            snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&part[3]),
                     (const char *)zmq_msg_data(&part[3]));
        if (!ok)
            om_log(OM_LOG_WARN, "zap", "refused client from %s: key not in allow-list", addr);
        else
            om_log(OM_LOG_DEBUG, "zap", "accepted client from %s", addr);
        zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE);
        if (n > 1)
            zmq_send(z->sock, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), ZMQ_SNDMORE);
        else
            zmq_send(z->sock, "", 0, ZMQ_SNDMORE);
        zmq_send(z->sock, ok ? "200" : "400", 3, ZMQ_SNDMORE);
        zmq_send(z->sock, ok ? "OK" : "unknown key", ok ? 2 : 11, ZMQ_SNDMORE);
        zmq_send(z->sock, "", 0, ZMQ_SNDMORE);
        zmq_send(z->sock, "", 0, 0);
        close_parts(part, n);
    }
}

int om_zap_start(om_zap *z, void *ctx, const char *allow_path, char *err, size_t errlen)
{
    memset(z, 0, sizeof *z);
    int rc = load_allow(z, allow_path, err, errlen);
    if (rc)
        goto fail;
    z->sock = zmq_socket(ctx, ZMQ_REP);
    int linger = 0;
    if (!z->sock || zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_bind(z->sock, "inproc://zeromq.zap.01")) {
        snprintf(err, errlen, "zap: %s", zmq_strerror(errno));
        rc = OM_EIO;
        goto fail;
    }
    if (pthread_create(&z->thread, NULL, zap_main, z)) {
        snprintf(err, errlen, "zap: cannot start thread");
        rc = OM_ENOMEM;
        goto fail;
    }
    z->running = 1;
    om_log(OM_LOG_INFO, "zap", "CURVE on, %d client keys allowed", z->nallow);
    return 0;
fail:
    if (z->sock)
        zmq_close(z->sock);
    free(z->allow);
    memset(z, 0, sizeof *z);
    return rc;
}

void om_zap_join(om_zap *z)
{
    if (z->running)
        pthread_join(z->thread, NULL);
    if (z->sock)
        zmq_close(z->sock);
    free(z->allow);
    memset(z, 0, sizeof *z);
}
