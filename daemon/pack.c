/* pack.c: model packs, a directory whose pack.ini names files that fit together (an LLM,
 * a video encoder, its projection to the LLM width, its joint-space head). The widths
 * are checked where the files are opened (om_videnc, om_bind, om_llm); here only that
 * the manifest is well-formed and its files exist. */
#include "om_daemon.h"
#include "om_err.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct pack_ctx {
    om_pack *p;
    int      rc;
    char     msg[OM_PATH_LEN + 128];
};

/* A file named by the manifest: relative to the pack, and there. */
static int pack_path(struct pack_ctx *c, char *dst, const char *value, const char *what)
{
    struct stat st;
    if (!value[0] || value[0] == '/') {
        snprintf(c->msg, sizeof c->msg, "%s: expected a file name relative to the pack, got '%s'", what, value);
        return OM_EINVAL;
    }
    if ((size_t)snprintf(dst, OM_PATH_LEN, "%s/%s", c->p->dir, value) >= OM_PATH_LEN) {
        snprintf(c->msg, sizeof c->msg, "%s: path too long", what);
        return OM_ERANGE;
    }
    if (stat(dst, &st) || !S_ISREG(st.st_mode)) {
        snprintf(c->msg, sizeof c->msg, "%s: '%s' is not a file (%s)", what, dst,
                 errno ? strerror(errno) : "not regular");
        return OM_ENOENT;
    }
    return 0;
}

static int copy(struct pack_ctx *c, char *dst, size_t cap, const char *value, const char *what)
{
    if (strlen(value) >= cap) {
        snprintf(c->msg, sizeof c->msg, "%s: longer than %zu bytes", what, cap - 1);
        return OM_ERANGE;
    }
    memcpy(dst, value, strlen(value) + 1);
    return 0;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    struct pack_ctx *c = user;
    om_pack *p = c->p;
    char what[96];
    snprintf(what, sizeof what, "%s.%s", section, key);
    int rc = OM_ENOENT;
    errno = 0;
    if (!strcmp(section, "pack") && !strcmp(key, "name"))
        rc = copy(c, p->name, sizeof p->name, value, what);
    else if (!strcmp(section, "pack") && !strcmp(key, "random")) {
        rc = 0;
        if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1"))
            p->random = 1;
        else if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "0"))
            p->random = 0;
        else
            rc = OM_EINVAL;
    } else if (!strcmp(section, "llm") && !strcmp(key, "model"))
        rc = pack_path(c, p->llm_model, value, what);
    else if (!strcmp(section, "llm") && !strcmp(key, "chat_format"))
        rc = copy(c, p->chat_format, sizeof p->chat_format, value, what);
    else if (!strcmp(section, "video") && !strcmp(key, "vision"))
        rc = pack_path(c, p->video_vision, value, what);
    else if (!strcmp(section, "video") && !strcmp(key, "model"))
        rc = pack_path(c, p->video_model, value, what);
    else if (!strcmp(section, "video") && !strcmp(key, "projection"))
        rc = pack_path(c, p->video_projection, value, what);
    else if (!strcmp(section, "video") && !strcmp(key, "head"))
        rc = pack_path(c, p->video_head, value, what);
    else if (!strcmp(section, "video") && !strcmp(key, "placeholder"))
        rc = value[0] ? copy(c, p->placeholder, sizeof p->placeholder, value, what) : OM_EINVAL;
    else if (!strcmp(section, "video") && !strcmp(key, "frames")) {
        char *end;
        long n = strtol(value, &end, 10);
        rc = end == value || *end || n < 1 || n > OM_PACK_MAX_FRAMES ? OM_ERANGE : 0;
        p->video_frames = (int)n;
    }
    if (rc == OM_ENOENT && !c->msg[0])
        snprintf(c->msg, sizeof c->msg, "unknown key '%s'", what);
    else if (rc && !c->msg[0])
        snprintf(c->msg, sizeof c->msg, "bad value '%s' for %s", value, what);
    if (rc && !c->rc)
        c->rc = rc;
    return rc == 0;
}

int om_pack_load(om_pack *p, const char *dir, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->video_frames = 8;
    snprintf(p->placeholder, sizeof p->placeholder, "<video>");
    if (strlen(dir) + sizeof "/pack.ini" > sizeof p->dir) {
        snprintf(err, errlen, "pack '%s': path too long", dir);
        return OM_ERANGE;
    }
    snprintf(p->dir, sizeof p->dir, "%s", dir);
    char ini[OM_PATH_LEN + 16];
    snprintf(ini, sizeof ini, "%s/pack.ini", dir);
    struct pack_ctx c = { .p = p };
    int line = ini_parse(ini, on_key, &c);
    if (line < 0) {
        snprintf(err, errlen, "%s: cannot read the pack manifest", ini);
        return OM_ENOENT;
    }
    if (line > 0) {
        snprintf(err, errlen, "%s:%d: %s", ini, line, c.rc ? c.msg : "syntax error");
        return c.rc ? c.rc : OM_EFORMAT;
    }
    int vid = p->video_vision[0] || p->video_model[0];
    if (vid && !(p->video_vision[0] && p->video_model[0])) {
        snprintf(err, errlen, "%s: [video] needs both vision and model", ini);
        return OM_EINVAL;
    }
    if ((p->video_projection[0] || p->video_head[0]) && !vid) {
        snprintf(err, errlen, "%s: [video] projection/head without an encoder (vision, model)", ini);
        return OM_EINVAL;
    }
    return 0;
}

int om_pack_has_video(const om_pack *p) { return p->video_vision[0] && p->video_model[0]; }
