/* om_proto_impl.h: helpers shared by the proto/ sources; not part of the API. */
#ifndef OM_PROTO_IMPL_H
#define OM_PROTO_IMPL_H

#include <stddef.h>

#include <msgpack.h>

/* Formats err (when given) and returns code, so error paths are one line. */
int om_proto_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Validates then unpacks buf into u (initialised here); the whole buffer must be
 * one object. Returns 0, OM_EFORMAT, OM_ERANGE or OM_ENOMEM. */
struct om_proto_limits;
int om_proto_unpack(msgpack_unpacked *u, const void *buf, size_t len,
                    const struct om_proto_limits *lim, char *err, size_t errlen);

/* msgpack object type as a word for error messages ("str", "uint", ...). */
const char *om_proto_typename(const msgpack_object *o);

#endif
