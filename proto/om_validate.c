/* Limits and the raw msgpack walk that runs before msgpack-c unpacks anything.
 * msgpack-c 4.0 trusts declared sizes: the 5 bytes dd 0f ff ff ff (an array of
 * 2^28-1) make it malloc 8.6 GB before it notices that no element follows. */
#include "om_proto.h"

#include <stdio.h>
#include <string.h>

#include "om_err.h"
#include "om_proto_impl.h"

/* The walk keeps one counter per open container on the stack. */
#define DEPTH_CAP 64

void om_proto_limits_default(om_proto_limits *lim)
{
    lim->max_frames       = 16;
    lim->max_total_bytes  = 256ull << 20;
    lim->max_header_bytes = 1u << 20;
    lim->max_depth        = 16;
    lim->max_elems        = 65536;
    lim->max_str          = 1u << 20;
}

int om_proto_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

int om_msgpack_validate(const void *buf, size_t len, const om_proto_limits *lim,
                        char *err, size_t errlen)
{
    const uint8_t *p = buf;
    uint64_t stack[DEPTH_CAP];     /* elements still expected in each open container */
    unsigned depth = 0;
    unsigned max_depth = lim->max_depth < DEPTH_CAP ? lim->max_depth : DEPTH_CAP;
    size_t pos = 0;
    bool top_done = false;

    if (len == 0)
        return om_proto_fail(err, errlen, OM_EFORMAT, "empty message");

    for (;;) {
        while (depth > 0 && stack[depth - 1] == 0)
            depth--;
        if (depth == 0 && top_done)
            break;
        if (pos >= len)
            return om_proto_fail(err, errlen, OM_EFORMAT, "truncated: object expected at byte %zu of %zu", pos, len);
        if (depth > 0)
            stack[depth - 1]--;
        else
            top_done = true;

        size_t at = pos;
        uint8_t c = p[pos++];
        uint64_t count = 0;        /* container elements (map: keys + values) */
        bool container = false;
        int hdr = 0;               /* big-endian length bytes that follow c */
        uint64_t skip = 0;         /* payload bytes after the header */
        bool sized = false;        /* skip comes from a str/bin/ext length */
        const char *what = NULL;

        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
            /* fixint, nil, bool: the byte is the object */
        } else if (c <= 0x8f) {
            count = 2ull * (c & 0x0f); container = true; what = "map";
        } else if (c <= 0x9f) {
            count = c & 0x0f; container = true; what = "array";
        } else if (c <= 0xbf) {
            skip = c & 0x1f; sized = true; what = "str";
        } else if (c == 0xc1) {
            return om_proto_fail(err, errlen, OM_EFORMAT, "reserved byte 0xc1 at byte %zu", at);
        } else if (c >= 0xc4 && c <= 0xc6) {
            hdr = 1 << (c - 0xc4); sized = true; what = "bin";
        } else if (c >= 0xc7 && c <= 0xc9) {
            hdr = 1 << (c - 0xc7); sized = true; what = "ext";
        } else if (c == 0xca) {
            skip = 4;
        } else if (c == 0xcb) {
            skip = 8;
        } else if (c >= 0xcc && c <= 0xcf) {
            skip = 1ull << (c - 0xcc);
        } else if (c >= 0xd0 && c <= 0xd3) {
            skip = 1ull << (c - 0xd0);
        } else if (c >= 0xd4 && c <= 0xd8) {
            skip = 1 + (1ull << (c - 0xd4));   /* type byte + 1..16 data bytes */
            what = "ext";
        } else if (c >= 0xd9 && c <= 0xdb) {
            hdr = 1 << (c - 0xd9); sized = true; what = "str";
        } else if (c == 0xdc || c == 0xdd) {
            hdr = c == 0xdc ? 2 : 4; container = true; what = "array";
        } else {                               /* 0xde, 0xdf */
            hdr = c == 0xde ? 2 : 4; container = true; what = "map";
        }

        if (hdr) {
            if ((size_t)hdr > len - pos)
                return om_proto_fail(err, errlen, OM_EFORMAT, "truncated: %s length at byte %zu", what, at);
            uint64_t n = be(p + pos, hdr);
            pos += hdr;
            if (container)
                count = what[0] == 'm' ? 2 * n : n;
            else
                skip = n + (what[0] == 'e');   /* ext: the type byte */
        }
        if (container) {
            uint64_t entries = what[0] == 'm' ? count / 2 : count;
            if (entries > lim->max_elems)
                return om_proto_fail(err, errlen, OM_ERANGE, "%s at byte %zu has %llu entries (limit %u)",
                            what, at, (unsigned long long)entries, lim->max_elems);
            /* Every element takes at least one byte: a larger count is a lie. */
            if (count > len - pos)
                return om_proto_fail(err, errlen, OM_EFORMAT, "%s at byte %zu declares %llu entries but only %zu bytes follow",
                            what, at, (unsigned long long)entries, len - pos);
            if (depth + 1 > max_depth)
                return om_proto_fail(err, errlen, OM_ERANGE, "nesting deeper than %u at byte %zu", max_depth, at);
            stack[depth++] = count;
            continue;
        }
        if (sized && skip - (what[0] == 'e') > lim->max_str)
            return om_proto_fail(err, errlen, OM_ERANGE, "%s at byte %zu has %llu bytes (limit %u)",
                        what, at, (unsigned long long)(skip - (what[0] == 'e')), lim->max_str);
        if (skip > len - pos)
            return om_proto_fail(err, errlen, OM_EFORMAT, "truncated: %s at byte %zu needs %llu bytes, %zu left",
                        what ? what : "number", at, (unsigned long long)skip, len - pos);
        pos += skip;
    }
    if (pos != len)
        return om_proto_fail(err, errlen, OM_EFORMAT, "%zu trailing bytes after the object (at byte %zu)", len - pos, pos);
    return 0;
}

int om_proto_unpack(msgpack_unpacked *u, const void *buf, size_t len,
                    const om_proto_limits *lim, char *err, size_t errlen)
{
    int ret = om_msgpack_validate(buf, len, lim, err, errlen);
    msgpack_unpacked_init(u);
    if (ret < 0)
        return ret;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(u, buf, len, &off);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR)
        return om_proto_fail(err, errlen, OM_ENOMEM, "out of memory unpacking %zu bytes", len);
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len)
        return om_proto_fail(err, errlen, OM_EFORMAT, "msgpack-c rejected the message (%d)", (int)ur);
    return 0;
}

const char *om_proto_typename(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:              return "nil";
    case MSGPACK_OBJECT_BOOLEAN:          return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return "uint";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:          return "float";
    case MSGPACK_OBJECT_STR:              return "str";
    case MSGPACK_OBJECT_ARRAY:            return "array";
    case MSGPACK_OBJECT_MAP:              return "map";
    case MSGPACK_OBJECT_BIN:              return "bin";
    case MSGPACK_OBJECT_EXT:              return "ext";
    }
    return "unknown";
}
