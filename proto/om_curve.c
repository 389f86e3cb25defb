/* CURVE for clients: key files as omnid --gen-keys writes them, and the socket
 * options of a CURVE client. */
#include "om_proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "om_err.h"
#include "om_proto_impl.h"

int om_curve_read_key(const char *path, char key[OM_CURVE_KEY_LEN + 1], char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return om_proto_fail(err, errlen, OM_EIO, "%s: %s", path, strerror(errno));
    char line[256];
    int line_no = 0, ret = OM_EFORMAT;
    while (fgets(line, sizeof line, f)) {
        line_no++;
        char *p = line + strspn(line, " \t");
        size_t len = strcspn(p, " \t\r\n");
        if (len == 0 || *p == '#')
            continue;
        uint8_t bin[32];
        p[len] = 0;
        if (len == OM_CURVE_KEY_LEN && zmq_z85_decode(bin, p)) {
            memcpy(key, p, OM_CURVE_KEY_LEN + 1);
            ret = 0;
        }
        break;
    }
    fclose(f);
    if (ret < 0)
        return om_proto_fail(err, errlen, ret, "%s:%d: expected a 40-character z85 key", path, line_no);
    return 0;
}

int om_curve_client(void *sock, const char server_public[OM_CURVE_KEY_LEN + 1],
                    const char client_secret[OM_CURVE_KEY_LEN + 1], char *err, size_t errlen)
{
    if (!zmq_has("curve"))
        return om_proto_fail(err, errlen, OM_EUNSUPPORTED, "this libzmq has no CURVE support");
    char client_public[OM_CURVE_KEY_LEN + 1];
    if (zmq_curve_public(client_public, client_secret))
        return om_proto_fail(err, errlen, OM_EFORMAT, "the client secret key is not a CURVE key");
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_public, OM_CURVE_KEY_LEN) ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, client_public, OM_CURVE_KEY_LEN) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, client_secret, OM_CURVE_KEY_LEN))
        return om_proto_fail(err, errlen, OM_EFORMAT, "CURVE keys rejected: %s", zmq_strerror(errno));
    return 0;
}
