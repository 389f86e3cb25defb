/* ask, generate, chat: text requests to omnid's llm stage, answers streamed as they
 * are generated; Ctrl-C cancels the request being answered. `chat` is interactive: each line read from stdin is a user turn, the
 * history (user and assistant turns) goes with every request, "/reset" clears it and
 * "/exit" or end of input ends the session. */
#include <stdlib.h>
#include <string.h>

#include "omni.h"

#define LLM_TIMEOUT_MS   120000     /* lavapipe may take long for a first token */
#define CHAT_MAX_TURNS   256
#define CHAT_MAX_LINE    65536

typedef struct llm_opts {
    const char *stop[8];
    int         n_stop;
    const char *system;
    double      temperature, top_p, min_p, repeat_penalty;
    int64_t     max_tokens, top_k, seed;
    bool        has_temp, has_top_p, has_min_p, has_rp, has_max, has_top_k, has_seed;
    omni_media  media;              /* ask --video/--image */
} llm_opts;

static int llm_opt(omni_ctx *c, int opt, const char *arg, void *user)
{
    llm_opts *o = user;
    char *end;
    switch (opt) {
    case 'n': o->max_tokens = strtoll(arg, &end, 10); o->has_max = true; break;
    case 'T': o->temperature = strtod(arg, &end); o->has_temp = true; break;
    case 'k': o->top_k = strtoll(arg, &end, 10); o->has_top_k = true; break;
    case 'p': o->top_p = strtod(arg, &end); o->has_top_p = true; break;
    case 'm': o->min_p = strtod(arg, &end); o->has_min_p = true; break;
    case 'r': o->repeat_penalty = strtod(arg, &end); o->has_rp = true; break;
    case 's': o->seed = strtoll(arg, &end, 10); o->has_seed = true; break;
    case 'y': o->system = arg; return 0;
    case 'x':
        if (o->n_stop == 8) {
            fprintf(stderr, "omni: at most 8 --stop strings\n");
            return OMNI_EUSAGE;
        }
        o->stop[o->n_stop++] = arg;
        return 0;
    default: return omni_media_opt(&o->media, opt, arg);
    }
    if (end == arg || *end) {
        fprintf(stderr, "omni: bad number '%s'\n", arg);
        return OMNI_EUSAGE;
    }
    return 0;
}

#define LLM_LONGOPTS                                         \
    OMNI_COMMON_LONGOPTS,                                    \
    { "max-tokens", required_argument, NULL, 'n' },          \
    { "temp", required_argument, NULL, 'T' },                \
    { "top-k", required_argument, NULL, 'k' },               \
    { "top-p", required_argument, NULL, 'p' },               \
    { "min-p", required_argument, NULL, 'm' },               \
    { "repeat-penalty", required_argument, NULL, 'r' },      \
    { "seed", required_argument, NULL, 's' },                \
    { "stop", required_argument, NULL, 'x' },                \
    { "system", required_argument, NULL, 'y' },              \
    OMNI_MEDIA_LONGOPTS,                                     \
    { 0 }
#define LLM_SHORTOPTS OMNI_COMMON_SHORTOPTS "n:"

static uint32_t n_sampling_args(const llm_opts *o)
{
    return o->has_max + o->has_temp + o->has_top_k + o->has_top_p + o->has_min_p + o->has_rp + o->has_seed +
           (o->n_stop > 0);
}

static int pack_sampling(msgpack_packer *pk, const llm_opts *o)
{
    int rc = 0;
    if (o->has_max) rc |= om_pack_kv_i64(pk, "max_tokens", o->max_tokens);
    if (o->has_temp) rc |= om_pack_kv_f64(pk, "temperature", o->temperature);
    if (o->has_top_k) rc |= om_pack_kv_i64(pk, "top_k", o->top_k);
    if (o->has_top_p) rc |= om_pack_kv_f64(pk, "top_p", o->top_p);
    if (o->has_min_p) rc |= om_pack_kv_f64(pk, "min_p", o->min_p);
    if (o->has_rp) rc |= om_pack_kv_f64(pk, "repeat_penalty", o->repeat_penalty);
    if (o->has_seed) rc |= om_pack_kv_i64(pk, "seed", o->seed);
    if (o->n_stop) {
        rc |= om_pack_str(pk, "stop");
        rc |= msgpack_pack_array(pk, (size_t)o->n_stop);
        for (int i = 0; i < o->n_stop; i++)
            rc |= om_pack_str(pk, o->stop[i]);
    }
    return rc;
}

static int parse(omni_ctx *c, int argc, char **argv, llm_opts *o, int min_args, int max_args)
{
    static const struct option longopts[] = { LLM_LONGOPTS };
    if (c->timeout_ms == OMNI_DEFAULT_TIMEOUT_MS)
        c->timeout_ms = LLM_TIMEOUT_MS;
    int ret = omni_parse(c, argc, argv, LLM_SHORTOPTS, longopts, llm_opt, o, min_args, max_args);
    if (!ret && o->media.path && strcmp(argv[0], "ask")) {
        fprintf(stderr, "omni %s: --video/--image are for ask\n", argv[0]);
        return OMNI_EUSAGE;
    }
    return ret;
}

/* A one-shot text request: op is "generate" (raw prompt) or "ask" (one user turn,
 * formatted with the model's chat template). */
static int one_shot(omni_ctx *c, int argc, char **argv, const char *op)
{
    llm_opts o = { 0 };
    int ret = parse(c, argc, argv, &o, 1, 1);
    if (ret)
        return ret < 0 ? OMNI_OK : ret;
    if ((ret = omni_media_load(c, &o.media)))
        return ret;
    om_msgbuf b;
    om_msgbuf_init(&b);
    uint64_t id = omni_next_id();
    int rc = om_req_build(&b, op, id, c->deadline_ms,
                          1 + (o.system != NULL) + n_sampling_args(&o) + omni_media_n_args(&o.media));
    rc = rc < 0 ? rc : om_pack_kv_str(&b.pk, "prompt", argv[optind]);
    if (!rc && o.system)
        rc = om_pack_kv_str(&b.pk, "system", o.system);
    rc = rc ? rc : pack_sampling(&b.pk, &o);
    rc = rc ? rc : omni_media_pack(&b.pk, &o.media);
    if (rc) {
        free(o.media.data);
        om_msgbuf_free(&b);
        fprintf(stderr, "omni: out of memory\n");
        return OMNI_EUSAGE;
    }
    omni_catch_sigint();
    ret = omni_call(c, &b, &o.media.payload, o.media.n_payload, id, NULL, NULL);
    if (!c->json && c->mid_line) {
        fputc('\n', stdout);
        c->mid_line = false;
    }
    free(o.media.data);
    om_msgbuf_free(&b);
    return ret;
}

int omni_cmd_ask(omni_ctx *c, int argc, char **argv) { return one_shot(c, argc, argv, "ask"); }
int omni_cmd_generate(omni_ctx *c, int argc, char **argv) { return one_shot(c, argc, argv, "generate"); }

/* ---- chat ---- */

typedef struct chat_turn { const char *role; char *content; } chat_turn;

typedef struct chat_state {
    char  *reply;            /* the assistant's text being streamed */
    size_t len, cap;
} chat_state;

static int chat_reply(omni_ctx *c, const om_reply_msg *r, void *user)
{
    chat_state *s = user;
    if (r->type == OM_REPLY_TOKEN && r->text_len) {
        if (s->len + r->text_len + 1 > s->cap) {
            size_t cap = (s->len + r->text_len + 1) * 2;
            char *p = realloc(s->reply, cap);
            if (!p)
                return OMNI_EUSAGE;
            s->reply = p;
            s->cap = cap;
        }
        memcpy(s->reply + s->len, r->text, r->text_len);
        s->len += r->text_len;
        s->reply[s->len] = 0;
    }
    return OMNI_DEFAULT;
}

static int chat_send(omni_ctx *c, const llm_opts *o, const chat_turn *turns, int n, chat_state *st)
{
    om_msgbuf b;
    om_msgbuf_init(&b);
    uint64_t id = omni_next_id();
    int rc = om_req_build(&b, "chat", id, c->deadline_ms, 1 + n_sampling_args(o));
    rc |= om_pack_str(&b.pk, "messages");
    rc |= msgpack_pack_array(&b.pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        rc |= msgpack_pack_map(&b.pk, 2);
        rc |= om_pack_kv_str(&b.pk, "role", turns[i].role);
        rc |= om_pack_kv_str(&b.pk, "content", turns[i].content);
    }
    rc |= pack_sampling(&b.pk, o);
    int ret = rc ? OMNI_EUSAGE : omni_call(c, &b, NULL, 0, id, chat_reply, st);
    if (!c->json && c->mid_line) {
        fputc('\n', stdout);
        c->mid_line = false;
    }
    om_msgbuf_free(&b);
    return ret;
}

int omni_cmd_chat(omni_ctx *c, int argc, char **argv)
{
    llm_opts o = { 0 };
    int ret = parse(c, argc, argv, &o, 0, 0);
    if (ret)
        return ret < 0 ? OMNI_OK : ret;
    chat_turn turns[CHAT_MAX_TURNS];
    int n = 0, first = 0;
    if (o.system)
        turns[n++] = (chat_turn){ "system", strdup(o.system) };
    first = n;
    char *line = malloc(CHAT_MAX_LINE);
    if (!line)
        return OMNI_EUSAGE;
    /* Ctrl-C cancels the answer being generated and ends the session; at the
     * prompt it ends it like end of input. */
    omni_catch_sigint();
    ret = OMNI_OK;
    for (;;) {
        if (c->tty) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        if (!fgets(line, CHAT_MAX_LINE, stdin))
            break;
        line[strcspn(line, "\n")] = 0;
        if (!strcmp(line, "/exit"))
            break;
        if (!strcmp(line, "/reset")) {
            while (n > first)
                free(turns[--n].content);
            continue;
        }
        if (!line[0])
            continue;
        /* The oldest exchange goes when the history is full. */
        if (n + 2 > CHAT_MAX_TURNS) {
            free(turns[first].content);
            free(turns[first + 1].content);
            memmove(turns + first, turns + first + 2, (size_t)(n - first - 2) * sizeof *turns);
            n -= 2;
        }
        turns[n++] = (chat_turn){ "user", strdup(line) };
        chat_state st = { 0 };
        ret = chat_send(c, &o, turns, n, &st);
        if (ret != OMNI_OK) {
            free(st.reply);
            free(turns[--n].content);
            if (ret != OMNI_EREPLY)
                break;
            continue;
        }
        turns[n++] = (chat_turn){ "assistant", st.reply ? st.reply : strdup("") };
    }
    while (n > 0)
        free(turns[--n].content);
    free(line);
    return ret;
}
