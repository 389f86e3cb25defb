/* embed: the joint-space vector of a video or an image (omnid's vision stage), printed
 * as its dimension and first values, as JSON (--json: the whole vector), or written to
 * an .npy file (--out). Also the media arguments that `ask` shares: a local file is
 * uploaded as a payload frame; a URL, or with --url a path too, is opened by omnid. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "om_npy.h"
#include "omni.h"

#define EMBED_TIMEOUT_MS 120000     /* lavapipe encodes slowly */
#define EMBED_SHOW       8          /* values printed without --json */

int omni_read_file(const char *path, uint64_t max, char **buf, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "omni: cannot open '%s': %s\n", path, strerror(errno));
        return OMNI_EUSAGE;
    }
    struct stat st;
    int ret = OMNI_EUSAGE;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode))
        fprintf(stderr, "omni: '%s' is not a regular file (use --url for streams)\n", path);
    else if ((uint64_t)st.st_size > max)
        fprintf(stderr, "omni: '%s' has %lld bytes, more than a message may carry (%llu)\n", path,
                (long long)st.st_size, (unsigned long long)max);
    else if (!(*buf = malloc(st.st_size ? (size_t)st.st_size : 1)))
        fprintf(stderr, "omni: out of memory for '%s'\n", path);
    else if (fread(*buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        fprintf(stderr, "omni: cannot read '%s': %s\n", path, strerror(errno));
        free(*buf);
        *buf = NULL;
    } else {
        *size = (size_t)st.st_size;
        ret = 0;
    }
    fclose(f);
    return ret;
}

int omni_media_load(omni_ctx *c, omni_media *m)
{
    m->data = NULL;
    m->payload = (om_frame){ 0 };
    m->n_payload = 0;
    if (!m->path)
        return 0;
    if (m->url || strstr(m->path, "://")) {
        m->url = true;
        /* omnid runs elsewhere: a relative path means nothing there */
        if (!strstr(m->path, "://") && realpath(m->path, m->abs))
            m->path = m->abs;
        return 0;
    }
    /* the header needs room too: a message's total is bounded */
    int ret = omni_read_file(m->path, c->lim.max_total_bytes - 4096, &m->data, &m->payload.size);
    if (!ret) {
        m->payload.data = m->data;
        m->n_payload = 1;
    }
    return ret;
}

int omni_media_pack(msgpack_packer *pk, const omni_media *m)
{
    if (!m->path)
        return 0;
    int rc = m->url ? om_pack_kv_str(pk, m->key, m->path) : om_pack_kv_frame(pk, m->key, 1);
    if (m->frames)
        rc |= om_pack_kv_i64(pk, "frames", m->frames);
    return rc;
}

uint32_t omni_media_n_args(const omni_media *m) { return m->path ? 1u + (m->frames > 0) : 0u; }

int omni_media_opt(omni_media *m, int opt, const char *arg)
{
    char *end;
    switch (opt) {
    case 'V': case 'I':
        if (m->path) {
            fprintf(stderr, "omni: give one --video or --image\n");
            return OMNI_EUSAGE;
        }
        m->path = arg;
        m->key = opt == 'V' ? "video" : "image";
        return 0;
    case 'U': m->url = true; return 0;
    case 'F':
        m->frames = strtol(arg, &end, 10);
        if (end == arg || *end || m->frames < 1 || m->frames > 1024) {
            fprintf(stderr, "omni: --frames: '%s' is not a number in 1..1024\n", arg);
            return OMNI_EUSAGE;
        }
        return 0;
    }
    return OMNI_EUSAGE;
}

typedef struct embed_opts {
    omni_media  media;
    const char *out;
} embed_opts;

static int embed_opt(omni_ctx *c, int opt, const char *arg, void *user)
{
    embed_opts *o = user;
    (void)c;
    if (opt == 'o') {
        o->out = arg;
        return 0;
    }
    return omni_media_opt(&o->media, opt, arg);
}

typedef struct embed_state {
    const embed_opts *o;
    int               got;
} embed_state;

static int embed_reply(omni_ctx *c, const om_reply_msg *r, void *user)
{
    embed_state *s = user;
    if (r->type != OM_REPLY_EMBEDDING)
        return OMNI_DEFAULT;
    const om_tensor_view *t = &r->tensor;
    if (t->dtype != OM_DTYPE_F32 || t->ndim != 1 || t->shape[0] == 0) {
        fprintf(stderr, "omni embed: expected an f32 vector, got %s with %u dims\n",
                om_dtype_name(t->dtype) ? om_dtype_name(t->dtype) : "?", t->ndim);
        return OMNI_EPROTO;
    }
    size_t dim = (size_t)t->shape[0];
    float *v = malloc(dim * sizeof *v);
    if (!v)
        return OMNI_EUSAGE;
    memcpy(v, t->data, dim * sizeof *v);     /* the frame may be unaligned */
    s->got = 1;
    int ret = OMNI_OK;
    if (s->o->out) {
        int64_t shape = (int64_t)dim;
        if (om_npy_write(s->o->out, OM_DTYPE_F32, 1, &shape, v)) {
            fprintf(stderr, "omni embed: cannot write '%s'\n", s->o->out);
            ret = OMNI_EUSAGE;
        }
    }
    double norm = 0;
    for (size_t i = 0; i < dim; i++)
        norm += (double)v[i] * v[i];
    if (c->json) {
        printf("{\"type\":\"embedding\",\"modality\":\"%.*s\",\"dim\":%zu,\"vector\":[", (int)r->modality_len,
               r->modality, dim);
        for (size_t i = 0; i < dim; i++)
            printf("%s%.9g", i ? "," : "", v[i]);
        printf("]}\n");
    } else {
        printf("%.*s embedding: dim %zu, norm %.6f\n ", (int)r->modality_len, r->modality, dim, sqrt(norm));
        for (size_t i = 0; i < dim && i < EMBED_SHOW; i++)
            printf(" %.6f", v[i]);
        printf("%s\n", dim > EMBED_SHOW ? " ..." : "");
    }
    free(v);
    return ret;
}

int omni_cmd_embed(omni_ctx *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        OMNI_COMMON_LONGOPTS,
        OMNI_MEDIA_LONGOPTS,
        { "out", required_argument, NULL, 'o' },
        { 0 },
    };
    embed_opts o = { 0 };
    if (c->timeout_ms == OMNI_DEFAULT_TIMEOUT_MS)
        c->timeout_ms = EMBED_TIMEOUT_MS;
    int ret = omni_parse(c, argc, argv, OMNI_COMMON_SHORTOPTS "o:", longopts, embed_opt, &o, 0, 0);
    if (ret)
        return ret < 0 ? OMNI_OK : ret;
    if (!o.media.path) {
        fprintf(stderr, "omni embed: --video FILE or --image FILE is required\n");
        return OMNI_EUSAGE;
    }
    if ((ret = omni_media_load(c, &o.media)))
        return ret;
    om_msgbuf b;
    om_msgbuf_init(&b);
    uint64_t id = omni_next_id();
    int rc = om_req_build(&b, "embed", id, c->deadline_ms, omni_media_n_args(&o.media));
    rc = rc ? rc : omni_media_pack(&b.pk, &o.media);
    if (rc) {
        fprintf(stderr, "omni: out of memory\n");
        ret = OMNI_EUSAGE;
    } else {
        embed_state st = { .o = &o };
        ret = omni_call(c, &b, &o.media.payload, o.media.n_payload, id, embed_reply, &st);
        if (ret == OMNI_OK && !st.got) {
            fprintf(stderr, "omni embed: omnid answered without an embedding\n");
            ret = OMNI_EPROTO;
        }
    }
    free(o.media.data);
    om_msgbuf_free(&b);
    return ret;
}
