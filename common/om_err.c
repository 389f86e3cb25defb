#include "om_err.h"

static const struct { int code; const char *name, *text; } om_errs[] = {
    { OM_OK,           "OK",           "success" },
    { OM_ENOMEM,       "ENOMEM",       "out of memory" },
    { OM_EINVAL,       "EINVAL",       "invalid argument" },
    { OM_EIO,          "EIO",          "input/output error" },
    { OM_EFORMAT,      "EFORMAT",      "malformed input" },
    { OM_ERANGE,       "ERANGE",       "size or count out of range" },
    { OM_EUNSUPPORTED, "EUNSUPPORTED", "not supported" },
    { OM_ENODEV,       "ENODEV",       "no usable device" },
    { OM_EVULKAN,      "EVULKAN",      "Vulkan error" },
    { OM_ENOENT,       "ENOENT",       "not found" },
    { OM_ETIMEDOUT,    "ETIMEDOUT",    "deadline exceeded" },
    { OM_EBUSY,        "EBUSY",        "busy: queue full" },
    { OM_ECANCELED,    "ECANCELED",    "canceled" },
    { OM_EMEDIA,       "EMEDIA",       "media error" },
    { OM_EPROTO,       "EPROTO",       "protocol error" },
    { OM_EINTERNAL,    "EINTERNAL",    "internal error" },
    { OM_EUNAVAILABLE, "EUNAVAILABLE", "service unavailable" },
    { OM_ESHUTDOWN,    "ESHUTDOWN",    "shutting down" },
};

const char *om_strerror(int err)
{
    for (unsigned i = 0; i < sizeof om_errs / sizeof om_errs[0]; i++)
        if (om_errs[i].code == err)
            return om_errs[i].text;
    return "unknown error";
}

const char *om_errname(int err)
{
    for (unsigned i = 0; i < sizeof om_errs / sizeof om_errs[0]; i++)
        if (om_errs[i].code == err)
            return om_errs[i].name;
    return "EUNKNOWN";
}
