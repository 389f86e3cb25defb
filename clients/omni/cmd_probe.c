/* probe: what omnid's ingest sees in a media file or stream URL. A path is sent as
 * an absolute path for omnid to open (same host or shared disk); --upload sends
 * the file's bytes as a payload frame instead. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "omni.h"

typedef struct probe_opts {
    bool upload;
} probe_opts;

static int probe_opt(omni_ctx *c, int opt, const char *arg, void *user)
{
    if (opt != 'u')
        return OMNI_EUSAGE;
    ((probe_opts *)user)->upload = true;
    return 0;
}

/* Reads a whole regular file of at most max bytes into *buf (caller frees). */
static int read_file(const char *path, uint64_t max, char **buf, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "omni probe: cannot open '%s': %s\n", path, strerror(errno));
        return OMNI_EUSAGE;
    }
    struct stat st;
    int ret = OMNI_EUSAGE;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode))
        fprintf(stderr, "omni probe: '%s' is not a regular file (use a URL for streams)\n", path);
    else if ((uint64_t)st.st_size > max)
        fprintf(stderr, "omni probe: '%s' has %lld bytes, more than a message may carry (%llu)\n", path,
                (long long)st.st_size, (unsigned long long)max);
    else if (!(*buf = malloc(st.st_size ? (size_t)st.st_size : 1)))
        fprintf(stderr, "omni probe: out of memory for '%s'\n", path);
    else if (fread(*buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        fprintf(stderr, "omni probe: cannot read '%s': %s\n", path, strerror(errno));
        free(*buf);
        *buf = NULL;
    } else {
        *size = (size_t)st.st_size;
        ret = 0;
    }
    fclose(f);
    return ret;
}

int omni_cmd_probe(omni_ctx *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        OMNI_COMMON_LONGOPTS,
        { "upload", no_argument, NULL, 'u' },
        { 0 },
    };
    probe_opts po = { 0 };
    int ret = omni_parse(c, argc, argv, OMNI_COMMON_SHORTOPTS "u", longopts, probe_opt, &po, 1, 1);
    if (ret)
        return ret < 0 ? OMNI_OK : ret;
    const char *target = argv[optind];
    bool is_url = strstr(target, "://") != NULL;

    om_msgbuf b;
    om_msgbuf_init(&b);
    uint64_t id = omni_next_id();
    om_frame payload;
    char *data = NULL;
    char path[PATH_MAX];
    if (po.upload) {
        if (is_url) {
            fprintf(stderr, "omni probe: --upload takes a file, not a URL\n");
            om_msgbuf_free(&b);
            return OMNI_EUSAGE;
        }
        /* the header needs room too: a message's total is bounded */
        if ((ret = read_file(target, c->lim.max_total_bytes - 4096, &data, &payload.size)) != 0) {
            om_msgbuf_free(&b);
            return ret;
        }
        payload.data = data;
        const char *base = strrchr(target, '/');
        ret = om_req_build(&b, "probe", id, c->deadline_ms, 2) | om_pack_kv_frame(&b.pk, "media", 1) |
              om_pack_kv_str(&b.pk, "name", base ? base + 1 : target);
    } else {
        /* omnid runs elsewhere: a relative path means nothing there */
        const char *url = is_url || !realpath(target, path) ? target : path;
        ret = om_req_build(&b, "probe", id, c->deadline_ms, 1) | om_pack_kv_str(&b.pk, "url", url);
    }
    if (ret) {
        fprintf(stderr, "omni: out of memory\n");
        ret = OMNI_EUSAGE;
    } else {
        ret = omni_call(c, &b, &payload, po.upload ? 1 : 0, id, NULL, NULL);
    }
    free(data);
    om_msgbuf_free(&b);
    return ret;
}
