/* config.c: omnid's settings: defaults, an ini file (libinih), "section.key=value"
 * overrides. Every number from outside is range-checked here, so the rest of the
 * daemon can trust om_config. */
#define _GNU_SOURCE
#include "om_daemon.h"
#include "om_err.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void om_config_init(om_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->front, sizeof cfg->front, "tcp://127.0.0.1:5555");
    snprintf(cfg->pub, sizeof cfg->pub, "tcp://127.0.0.1:5556");
    snprintf(cfg->sensors, sizeof cfg->sensors, "tcp://127.0.0.1:5557");
    snprintf(cfg->backend, sizeof cfg->backend, "tcp://127.0.0.1:5560");
    cfg->deadline_ms      = 30000;
    cfg->deadline_max_ms  = 600000;
    cfg->shutdown_ms      = 5000;
    cfg->linger_ms        = 1000;
    cfg->heartbeat_ms     = 1000;
    cfg->heartbeat_misses = 3;
    cfg->restart_max_ms   = 10000;
    cfg->max_frames       = 16;
    cfg->max_header_bytes = 64 << 10;
    cfg->max_total_bytes  = (size_t)256 << 20;
    /* Front and backend carry requests and replies: mostly small maps, some multi-MiB
     * payloads, already bounded by the per-stage queues; 1000 messages absorbs bursts
     * of 50+ clients. XPUB carries progress/events/embeddings (<= a few KiB): 1000
     * keeps a few MiB per slow subscriber before dropping. The sensor bus carries raw
     * frames (~1 MiB): 32 keeps ~32 MiB; older frames are worthless anyway. */
    cfg->hwm_front   = 1000;
    cfg->hwm_backend = 1000;
    cfg->hwm_pub     = 1000;
    cfg->hwm_sensors = 32;
    cfg->llm_ctx        = 4096;
    cfg->llm_max_tokens = 2048;
    /* The front door is loopback by default: its clients may name local files. A
     * daemon exposed on a network should set media.local = off. */
    cfg->media_local = 1;
    snprintf(cfg->media_protocols, sizeof cfg->media_protocols, "file,rtp,rtsp,srtp,tcp,udp,tls,http,https");
}

void om_config_free(om_config *cfg)
{
    for (int i = 0; i < cfg->noverrides; i++)
        free(cfg->overrides[i]);
    cfg->noverrides = 0;
}

om_stage_conf *om_config_stage(om_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->nstages; i++)
        if (!strcmp(cfg->stages[i].name, name))
            return &cfg->stages[i];
    if (cfg->nstages == OM_MAX_STAGES || strlen(name) >= sizeof cfg->stages[0].name)
        return NULL;
    om_stage_conf *s = &cfg->stages[cfg->nstages++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->mode = OM_MODE_THREAD;
    s->workers = 1;
    s->queue = 64;
    s->prefetch = 1;
    return s;
}

static int parse_int(const char *v, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return OM_ERANGE;
    *out = (int)x;
    return 0;
}

static int parse_size(const char *v, size_t lo, size_t hi, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || v[0] == '-')
        return OM_ERANGE;
    if (*end == 'k' || *end == 'K') { x <<= 10; end++; }
    else if (*end == 'M') { x <<= 20; end++; }
    else if (*end == 'G') { x <<= 30; end++; }
    if (*end || x < lo || x > hi)
        return OM_ERANGE;
    *out = (size_t)x;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
        *out = 1;
    else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
        *out = 0;
    else
        return OM_EINVAL;
    return 0;
}

static int copy_str(char *dst, size_t cap, const char *v)
{
    if (strlen(v) >= cap)
        return OM_ERANGE;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static const struct int_key {
    const char *section, *key;
    size_t off;
    long lo, hi;
} int_keys[] = {
    { "daemon", "deadline_ms",      offsetof(om_config, deadline_ms),      1, 86400000 },
    { "daemon", "deadline_max_ms",  offsetof(om_config, deadline_max_ms),  1, 86400000 },
    { "daemon", "shutdown_ms",      offsetof(om_config, shutdown_ms),      0, 600000 },
    { "daemon", "linger_ms",        offsetof(om_config, linger_ms),        0, 60000 },
    { "daemon", "heartbeat_ms",     offsetof(om_config, heartbeat_ms),     10, 60000 },
    { "daemon", "heartbeat_misses", offsetof(om_config, heartbeat_misses), 2, 100 },
    { "daemon", "restart_max_ms",   offsetof(om_config, restart_max_ms),   10, 3600000 },
    { "limits", "max_frames",       offsetof(om_config, max_frames),       1, 1024 },
    { "hwm",    "front",            offsetof(om_config, hwm_front),        1, 1000000 },
    { "hwm",    "backend",          offsetof(om_config, hwm_backend),      1, 1000000 },
    { "hwm",    "pub",              offsetof(om_config, hwm_pub),          1, 1000000 },
    { "hwm",    "sensors",          offsetof(om_config, hwm_sensors),      1, 1000000 },
    { "llm",    "ctx",              offsetof(om_config, llm_ctx),          16, 1 << 20 },
    { "llm",    "max_tokens",       offsetof(om_config, llm_max_tokens),   1, 1 << 20 },
};

static const struct str_key {
    const char *section, *key;
    size_t off, cap;
} str_keys[] = {
    { "daemon",   "front",      offsetof(om_config, front),      OM_EP_LEN },
    { "daemon",   "pub",        offsetof(om_config, pub),        OM_EP_LEN },
    { "daemon",   "sensors",    offsetof(om_config, sensors),    OM_EP_LEN },
    { "daemon",   "backend",    offsetof(om_config, backend),    OM_EP_LEN },
    { "daemon",   "ready_file", offsetof(om_config, ready_file), OM_PATH_LEN },
    { "security", "secret_key", offsetof(om_config, secret_key), OM_PATH_LEN },
    { "security", "allow",      offsetof(om_config, allow),      OM_PATH_LEN },
    { "security", "worker_key", offsetof(om_config, worker_key), OM_PATH_LEN },
    { "security", "server_key", offsetof(om_config, server_key), OM_PATH_LEN },
    { "llm",      "model",      offsetof(om_config, llm_model),  OM_PATH_LEN },
    { "llm",      "chat_format", offsetof(om_config, llm_chat_format), 32 },
    { "media",    "protocols",  offsetof(om_config, media_protocols), 128 },
    { "pack",     "dir",        offsetof(om_config, pack_dir),   OM_PATH_LEN },
};

static int set_stage(om_config *cfg, const char *name, const char *key, const char *value,
                     char *err, size_t errlen)
{
    if (!om_stage_find(name)) {
        snprintf(err, errlen, "unknown stage '%s'", name);
        return OM_ENOENT;
    }
    om_stage_conf *s = om_config_stage(cfg, name);
    if (!s) {
        snprintf(err, errlen, "too many stages configured");
        return OM_ERANGE;
    }
    int rc = OM_EINVAL;
    if (!strcmp(key, "mode")) {
        static const char *modes[] = { "thread", "process", "remote", "off" };
        for (int m = 0; m < 4; m++)
            if (!strcmp(value, modes[m])) {
                s->mode = m;
                rc = 0;
            }
    } else if (!strcmp(key, "workers")) {
        rc = parse_int(value, 0, 64, &s->workers);
    } else if (!strcmp(key, "queue")) {
        rc = parse_int(value, 1, 100000, &s->queue);
    } else if (!strcmp(key, "prefetch")) {
        rc = parse_int(value, 1, OM_MAX_PREFETCH, &s->prefetch);
    } else {
        snprintf(err, errlen, "unknown key 'stage.%s.%s'", name, key);
        return OM_ENOENT;
    }
    if (rc)
        snprintf(err, errlen, "bad value '%s' for stage.%s.%s", value, name, key);
    return rc;
}

int om_config_set_kv(om_config *cfg, const char *section, const char *key,
                     const char *value, char *err, size_t errlen)
{
    if (!strncmp(section, "stage.", 6))
        return set_stage(cfg, section + 6, key, value, err, errlen);

    int rc = OM_ENOENT;
    for (size_t i = 0; i < sizeof int_keys / sizeof int_keys[0]; i++)
        if (!strcmp(section, int_keys[i].section) && !strcmp(key, int_keys[i].key))
            rc = parse_int(value, int_keys[i].lo, int_keys[i].hi,
                           (int *)((char *)cfg + int_keys[i].off));
    for (size_t i = 0; i < sizeof str_keys / sizeof str_keys[0]; i++)
        if (!strcmp(section, str_keys[i].section) && !strcmp(key, str_keys[i].key))
            rc = copy_str((char *)cfg + str_keys[i].off, str_keys[i].cap, value);
    if (!strcmp(section, "daemon") && !strcmp(key, "test_ops"))
        rc = parse_bool(value, &cfg->test_ops);
    if (!strcmp(section, "media") && !strcmp(key, "local"))
        rc = parse_bool(value, &cfg->media_local);
    if (!strcmp(section, "security") && !strcmp(key, "curve"))
        rc = parse_bool(value, &cfg->curve);
    if (!strcmp(section, "limits") && !strcmp(key, "max_header_bytes"))
        rc = parse_size(value, 64, 16 << 20, &cfg->max_header_bytes);
    if (!strcmp(section, "limits") && !strcmp(key, "max_total_bytes"))
        rc = parse_size(value, 1024, (size_t)4 << 30, &cfg->max_total_bytes);

    if (rc == OM_ENOENT)
        snprintf(err, errlen, "unknown key '%s.%s'", section, key);
    else if (rc)
        snprintf(err, errlen, "bad value '%s' for %s.%s", value, section, key);
    return rc;
}

int om_config_set(om_config *cfg, const char *assignment, char *err, size_t errlen)
{
    const char *eq = strchr(assignment, '=');
    const char *dot = eq ? memrchr(assignment, '.', (size_t)(eq - assignment)) : NULL;
    if (!eq || !dot || dot == assignment || dot + 1 == eq) {
        snprintf(err, errlen, "expected section.key=value, got '%s'", assignment);
        return OM_EINVAL;
    }
    char section[128], key[64];
    size_t ls = (size_t)(dot - assignment), lk = (size_t)(eq - dot - 1);
    if (ls >= sizeof section || lk >= sizeof key) {
        snprintf(err, errlen, "key too long in '%s'", assignment);
        return OM_ERANGE;
    }
    memcpy(section, assignment, ls);
    section[ls] = 0;
    memcpy(key, dot + 1, lk);
    key[lk] = 0;
    int rc = om_config_set_kv(cfg, section, key, eq + 1, err, errlen);
    if (rc)
        return rc;
    if (cfg->noverrides == OM_MAX_OVERRIDES) {
        snprintf(err, errlen, "more than %d overrides", OM_MAX_OVERRIDES);
        return OM_ERANGE;
    }
    if (!(cfg->overrides[cfg->noverrides] = strdup(assignment)))
        return OM_ENOMEM;
    cfg->noverrides++;
    return 0;
}

struct load_ctx {
    om_config *cfg;
    int rc;
    char msg[256];
};

static int on_ini(void *user, const char *section, const char *key, const char *value)
{
    struct load_ctx *lc = user;
    int rc = om_config_set_kv(lc->cfg, section, key, value, lc->msg, sizeof lc->msg);
    if (rc && !lc->rc)
        lc->rc = rc;
    return rc == 0;
}

int om_config_load(om_config *cfg, const char *path, char *err, size_t errlen)
{
    struct load_ctx lc = { .cfg = cfg };
    int line = ini_parse(path, on_ini, &lc);
    if (line < 0) {
        snprintf(err, errlen, "%s: cannot read config", path);
        return OM_EIO;
    }
    if (line > 0) {
        snprintf(err, errlen, "%s:%d: %s", path, line, lc.rc ? lc.msg : "syntax error");
        return lc.rc ? lc.rc : OM_EFORMAT;
    }
    return copy_str(cfg->config_path, sizeof cfg->config_path, path);
}
