/* om_err.h: the error codes every omnid module returns, and their strings.
 *
 * Convention (as FFmpeg's AVERROR): functions return 0 on success and a negative
 * OM_E* code on failure; callers check every return. A module that can say more
 * than the code (which field, which offset, FFmpeg's or Vulkan's message) writes
 * it to an `char *err, size_t errlen` buffer its caller passes, or to its own
 * context's last-error string. */
#ifndef OM_ERR_H
#define OM_ERR_H

enum {
    OM_OK           = 0,
    OM_ENOMEM       = -1,   /* allocation failed */
    OM_EINVAL       = -2,   /* bad argument from the caller */
    OM_EIO          = -3,   /* read/write/mmap failed */
    OM_EFORMAT      = -4,   /* malformed input: file, message, tensor */
    OM_ERANGE       = -5,   /* a size, count or offset beyond its limit */
    OM_EUNSUPPORTED = -6,   /* valid input we do not handle (type, arch, op) */
    OM_ENODEV       = -7,   /* no usable device (Vulkan, camera) */
    OM_EVULKAN      = -8,   /* a Vulkan call failed */
    OM_ENOENT       = -9,   /* no such file, key, tensor, model */
    OM_ETIMEDOUT    = -10,  /* a deadline passed */
    OM_EBUSY        = -11,  /* a bounded queue is full: retry later */
    OM_ECANCELED    = -12,  /* the client cancelled or went away */
    OM_EMEDIA       = -13,  /* FFmpeg could not open/decode the media */
    OM_EPROTO       = -14,  /* a peer broke the wire protocol */
    OM_EINTERNAL    = -15,  /* a bug: an invariant did not hold */
    OM_EUNAVAILABLE = -16,  /* no worker can serve it (stage off, worker died twice) */
    OM_ESHUTDOWN    = -17,  /* the daemon is shutting down */
};

/* A static, human-readable string for an OM_E* code ("unknown error" otherwise). */
const char *om_strerror(int err);

/* The short stable name used on the wire as an error `code` ("ENOMEM", ...). */
const char *om_errname(int err);

#endif
