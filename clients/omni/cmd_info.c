/* health, status, metrics: requests without arguments that answer with one result. */
#include <string.h>

#include "omni.h"

static int simple(omni_ctx *c, int argc, char **argv, const char *op, omni_reply_fn fn)
{
    static const struct option longopts[] = { OMNI_COMMON_LONGOPTS, { 0 } };
    int ret = omni_parse(c, argc, argv, OMNI_COMMON_SHORTOPTS, longopts, NULL, NULL, 0, 0);
    if (ret)
        return ret < 0 ? OMNI_OK : ret;
    om_msgbuf b;
    om_msgbuf_init(&b);
    uint64_t id = omni_next_id();
    if (om_req_build(&b, op, id, c->deadline_ms, 0) < 0) {
        om_msgbuf_free(&b);
        fprintf(stderr, "omni: out of memory\n");
        return OMNI_EUSAGE;
    }
    ret = omni_call(c, &b, NULL, 0, id, fn, NULL);
    om_msgbuf_free(&b);
    return ret;
}

/* health exits 1 unless omnid says status "ok", so scripts can wait on it. */
static int health_reply(omni_ctx *c, const om_reply_msg *r, void *user)
{
    if (r->type != OM_REPLY_RESULT)
        return OMNI_DEFAULT;
    /* {"status": "ok", ...}; anything else there is unhealthy */
    const char *st;
    size_t len;
    bool ok = om_map_str(r->result, "result", "status", &st, &len, NULL, 0) == 0 && len == 2 &&
              !memcmp(st, "ok", 2);
    if (c->json) {
        omni_json_object(stdout, &r->body);
        fputc('\n', stdout);
    } else {
        printf("omnid at %s: %s\n", c->endpoint, ok ? "ok" : "NOT ok");
        omni_human_map(stdout, r->result, 2);
    }
    return ok ? OMNI_OK : OMNI_EREPLY;
}

int omni_cmd_health(omni_ctx *c, int argc, char **argv)
{
    return simple(c, argc, argv, "health", health_reply);
}

int omni_cmd_status(omni_ctx *c, int argc, char **argv)
{
    return simple(c, argc, argv, "status", NULL);
}

int omni_cmd_metrics(omni_ctx *c, int argc, char **argv)
{
    return simple(c, argc, argv, "metrics", NULL);
}
