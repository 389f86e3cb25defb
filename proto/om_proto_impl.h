/* om_proto_impl.h: helpers shared by the proto/ sources; not part of the API. */
#ifndef OM_PROTO_IMPL_H
#define OM_PROTO_IMPL_H

#include <stdbool.h>
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

/* Frame 0 of a request or reply: checks the frame count and frame 0's size against lim,
 * then unpacks it into u, which needs destroying from then on (*live is set even when
 * unpacking fails), and requires a map there (*root). */
struct om_frame;
int om_proto_decode_head(msgpack_unpacked *u, bool *live, const struct om_frame *frames,
                         size_t n, const struct om_proto_limits *lim,
                         const msgpack_object **root, char *err, size_t errlen);

/* A malloc'ed copy of frames[0..n), which the decoded message keeps. */
int om_proto_copy_frames(struct om_frame **out, const struct om_frame *frames, size_t n,
                         char *err, size_t errlen);

/* The index of name[0..len) in names[0..count), or -1. */
int om_proto_name_index(const char *const *names, int count, const char *name, size_t len);

#endif
