/* stage_llm.c: the llm stage over om_llm. Ops:
 *   generate {prompt, sampling...}             raw continuation of prompt
 *   ask      {prompt, system?, sampling...}    one user turn in the model's chat format
 *            + {video | image: bytes {"frame": k} or a URL, frames?}: the media's rows
 *              (vqa.h) go where the pack's placeholder is in the rendered prompt
 *   chat     {messages: [{role, content}], sampling...}
 * sampling: max_tokens, temperature, top_k, top_p, min_p, repeat_penalty, seed, stop[].
 * Replies: token {text, token} as generated, then done with timings (prompt_ms, gen_ms)
 * and usage (prompt_tokens, generated_tokens); with media also sample_ms, encode_ms and
 * media_rows. The request's deadline, a `cancel`, or
 * the daemon stopping ends generation early (ECANCELED / ETIMEDOUT).
 *
 * Each worker owns a device context and a model (llm.model, else the pack's), and with
 * a pack that has a video encoder also that encoder and its projection: ask with media
 * runs here, in-process, so the rows never cross a socket (docs/DAEMON.md). The KV
 * cache keeps the previous request's tokens so a chat turn that repeats the history
 * only pre-fills what is new; media rows are never reused. */
#include "om_daemon_impl.h"
#include "vqa.h"
#include "om_chat.h"
#include "om_llm.h"
#include "om_tokenizer.h"
#include "om_type.h"

#include <stdlib.h>
#include <string.h>

static const char *const llm_ops[] = { "generate", "ask", "chat", NULL };

#define LLM_MAX_PROMPT_BYTES (1u << 20)
#define LLM_MAX_MESSAGES     1024

typedef struct llm_state {
    om_gpu   *gpu;
    om_llm   *llm;
    int       chat_format;
    int       max_tokens_cap;
    int32_t  *cached;            /* tokens whose K/V are in the cache, in order */
    int       n_cached;
    int32_t  *ids;               /* scratch: the request's prompt */
    int       n_ctx;
    om_vqa   *vqa;               /* the pack's video encoder + projection, or NULL */
    float    *rows;              /* [n_rows, n_embd]: one request's media rows */
    char      placeholder[32];
    char      no_vqa[768];       /* why ask with media is not available */
    char      err[1024];
} llm_state;

static void llm_fini(void *state)
{
    llm_state *s = state;
    if (!s)
        return;
    om_vqa_close(s->vqa);
    om_llm_close(s->llm);
    if (s->gpu && om_gpu_validation_errors(s->gpu))
        om_log(OM_LOG_ERROR, "llm", "%d Vulkan validation errors", om_gpu_validation_errors(s->gpu));
    om_gpu_close(s->gpu);
    free(s->rows);
    free(s->cached);
    free(s->ids);
    free(s);
}

/* The pack's video encoder and projection on the LLM's device. A pack without them
 * leaves text ops working and ask with media answering why. */
static int open_vqa(llm_state *s, const om_config *cfg, const om_pack *p)
{
    if (!p || !om_pack_has_video(p) || !p->video_projection[0]) {
        snprintf(s->no_vqa, sizeof s->no_vqa, "%s", p ? "the model pack has no [video] encoder and projection"
                 : "no model pack is configured (omnid --pack DIR): ask takes no video or image");
        return 0;
    }
    int rc = om_vqa_open(&s->vqa, s->gpu, cfg, p, OM_VQA_PROJECTION, s->err, sizeof s->err);
    if (!rc && om_vqa_llm_width(s->vqa) != om_llm_get_hparams(s->llm)->n_embd) {
        snprintf(s->err, sizeof s->err, "%.400s projects to width %d, the LLM's n_embd is %d", p->video_projection,
                 om_vqa_llm_width(s->vqa), om_llm_get_hparams(s->llm)->n_embd);
        rc = OM_EINVAL;
    }
    if (!rc && !(s->rows = malloc(sizeof *s->rows * (size_t)om_vqa_n_rows(s->vqa) *
                                  (size_t)om_llm_get_hparams(s->llm)->n_embd)))
        rc = OM_ENOMEM;
    if (rc)
        om_log(OM_LOG_ERROR, "llm", "%s", s->err);
    snprintf(s->placeholder, sizeof s->placeholder, "%s", p->placeholder);
    return rc;
}

static int llm_init(const om_config *cfg, void **state)
{
    /* Without a model the stage still runs and answers why: the daemon's other
     * stages stay available. */
    *state = NULL;
    om_pack pack;
    char err[1024];
    int rc = cfg->pack_dir[0] ? om_pack_load(&pack, cfg->pack_dir, err, sizeof err) : 0;
    if (rc) {
        om_log(OM_LOG_ERROR, "llm", "%s", err);
        return rc;
    }
    const char *model = cfg->llm_model[0] ? cfg->llm_model : cfg->pack_dir[0] ? pack.llm_model : "";
    if (!model[0])
        return 0;
    llm_state *s = calloc(1, sizeof *s);
    if (!s)
        return OM_ENOMEM;
    om_gpu_opts go = { .quiet = om_log_get_level() < OM_LOG_INFO };
    om_llm_opts lo = { .n_ctx_max = cfg->llm_ctx };
    rc = om_gpu_open(&s->gpu, &go, s->err, sizeof s->err);
    if (!rc)
        rc = om_llm_open(&s->llm, s->gpu, model, &lo, s->err, sizeof s->err);
    if (rc) {
        om_log(OM_LOG_ERROR, "llm", "%s", s->err);
        llm_fini(s);
        return rc;
    }
    s->n_ctx = om_llm_get_hparams(s->llm)->n_ctx;
    s->cached = malloc(sizeof *s->cached * (size_t)s->n_ctx);
    s->ids = malloc(sizeof *s->ids * (size_t)s->n_ctx);
    if (!s->cached || !s->ids) {
        llm_fini(s);
        return OM_ENOMEM;
    }
    if ((rc = open_vqa(s, cfg, cfg->pack_dir[0] ? &pack : NULL))) {
        llm_fini(s);
        return rc;
    }
    const om_tokenizer *tok = om_llm_get_tokenizer(s->llm);
    const char *fmt = cfg->llm_chat_format[0] ? cfg->llm_chat_format : cfg->pack_dir[0] ? pack.chat_format : "";
    s->chat_format = fmt[0] ? om_chat_from_name(fmt) : OM_CHAT_UNKNOWN;
    if (s->chat_format == OM_CHAT_UNKNOWN && om_tokenizer_chat_template(tok))
        s->chat_format = om_chat_detect(om_tokenizer_chat_template(tok));
    if (s->chat_format == OM_CHAT_UNKNOWN)
        s->chat_format = OM_CHAT_CHATML;    /* what llama.cpp assumes without a template */
    s->max_tokens_cap = cfg->llm_max_tokens;
    const om_llm_hparams *hp = om_llm_get_hparams(s->llm);
    om_log(OM_LOG_INFO, "llm", "%s: %d layers, n_embd %d, %s, ctx %d, chat format %s", model,
           hp->n_layer, hp->n_embd, om_type_name(hp->ftype), hp->n_ctx, om_chat_name(s->chat_format));
    *state = s;
    return 0;
}

/* Sampling arguments, each optional, each range-checked. */
static int parse_sampling(llm_state *s, const om_req *req, om_sampler_params *p, const char **stop,
                          int *n_stop, char *stop_buf, size_t stop_buf_size, om_sink *sink)
{
    char err[256];
    *p = om_sampler_default_params();
    p->max_tokens = 256 < s->max_tokens_cap ? 256 : s->max_tokens_cap;
    int64_t i64;
    double f;
    int rc;
#define ARG_I(key, lo, hi, field)                                                                      \
    if ((rc = om_req_arg_i64(req, key, &i64, err, sizeof err)) == 0) {                                 \
        if (i64 < (lo) || i64 > (hi))                                                                  \
            return om_sink_fail(sink, OM_ERANGE, "args." key " = %lld is outside [%lld, %lld]",         \
                                (long long)i64, (long long)(lo), (long long)(hi));                     \
        p->field = i64;                                                                                \
    } else if (rc != OM_ENOENT)                                                                        \
        return om_sink_fail(sink, rc, "%s", err);
#define ARG_F(key, lo, hi, field)                                                                      \
    if ((rc = om_req_arg_f64(req, key, &f, err, sizeof err)) == 0) {                                   \
        if (!(f >= (lo) && f <= (hi)))                                                                 \
            return om_sink_fail(sink, OM_ERANGE, "args." key " = %g is outside [%g, %g]", f,            \
                                (double)(lo), (double)(hi));                                           \
        p->field = (float)f;                                                                           \
    } else if (rc != OM_ENOENT)                                                                        \
        return om_sink_fail(sink, rc, "%s", err);
    ARG_I("max_tokens", 1, s->max_tokens_cap, max_tokens)
    ARG_I("top_k", 0, 1 << 20, top_k)
    ARG_I("seed", 0, INT64_MAX, seed)
    ARG_F("temperature", 0, 100, temperature)
    ARG_F("top_p", 0, 1, top_p)
    ARG_F("min_p", 0, 1, min_p)
    ARG_F("repeat_penalty", 0.01, 100, repeat_penalty)
#undef ARG_I
#undef ARG_F
    *n_stop = 0;
    const msgpack_object *st = req->args.type == MSGPACK_OBJECT_MAP ? om_map_get(&req->args, "stop") : NULL;
    if (!st)
        return 0;
    if (st->type != MSGPACK_OBJECT_ARRAY || st->via.array.size > OM_STOP_MAX)
        return om_sink_fail(sink, OM_EFORMAT, "args.stop: expected an array of at most %d strings", OM_STOP_MAX);
    size_t used = 0;
    for (uint32_t i = 0; i < st->via.array.size; i++) {
        const msgpack_object *o = &st->via.array.ptr[i];
        if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 || o->via.str.size > OM_STOP_MAX_LEN ||
            used + o->via.str.size + 1 > stop_buf_size)
            return om_sink_fail(sink, OM_EFORMAT, "args.stop[%u]: expected a string of 1..%d bytes", i,
                                OM_STOP_MAX_LEN);
        memcpy(stop_buf + used, o->via.str.ptr, o->via.str.size);
        stop_buf[used + o->via.str.size] = 0;
        stop[(*n_stop)++] = stop_buf + used;
        used += o->via.str.size + 1;
    }
    return 0;
}

/* "PLACEHOLDER\nPROMPT": a media question whose prompt does not say where the media
 * goes gets it before the user's text. */
static char *with_placeholder(char *user, const char *placeholder)
{
    if (!user || !placeholder || strstr(user, placeholder))
        return user;
    size_t n = strlen(placeholder) + 1 + strlen(user) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s\n%s", placeholder, user);
    free(user);
    return p;
}

/* The prompt text of a request: generate's raw prompt, or the chat format's rendering
 * of ask's one turn / chat's messages. Sets *special when the text carries the chat
 * format's control tokens. placeholder (ask with media, else NULL) is put in the user
 * turn when the prompt lacks it. */
static int build_prompt(llm_state *s, const om_req *req, om_sink *sink, const char *placeholder, char **text,
                        int *special)
{
    char err[256];
    const char *p;
    size_t len;
    *text = NULL;
    *special = req->op != OM_OP_GENERATE;
    om_chat_msg msgs[LLM_MAX_MESSAGES];
    int n = 0, rc = 0;
    char *own[LLM_MAX_MESSAGES * 2];
    int n_own = 0;
    if (req->op == OM_OP_GENERATE || req->op == OM_OP_ASK) {
        if ((rc = om_req_arg_str(req, "prompt", &p, &len, err, sizeof err)))
            return om_sink_fail(sink, rc == OM_ENOENT ? OM_EINVAL : rc, "%s",
                                rc == OM_ENOENT ? "args.prompt is required" : err);
        if (len > LLM_MAX_PROMPT_BYTES)
            return om_sink_fail(sink, OM_ERANGE, "args.prompt has %zu bytes, more than %u", len,
                                LLM_MAX_PROMPT_BYTES);
        if (req->op == OM_OP_GENERATE) {
            *text = strndup(p, len);
            return *text ? 0 : OM_ENOMEM;
        }
        const char *sys;
        size_t sys_len;
        if ((rc = om_req_arg_str(req, "system", &sys, &sys_len, err, sizeof err)) == 0) {
            msgs[n++] = (om_chat_msg){ "system", own[n_own++] = strndup(sys, sys_len) };
        } else if (rc != OM_ENOENT) {
            return om_sink_fail(sink, rc, "%s", err);
        }
        rc = 0;
        msgs[n++] = (om_chat_msg){ "user", own[n_own++] = with_placeholder(strndup(p, len), placeholder) };
    } else {
        const msgpack_object *m = req->args.type == MSGPACK_OBJECT_MAP ? om_map_get(&req->args, "messages") : NULL;
        if (!m || m->type != MSGPACK_OBJECT_ARRAY || m->via.array.size == 0 ||
            m->via.array.size > LLM_MAX_MESSAGES)
            return om_sink_fail(sink, OM_EFORMAT, "args.messages: expected an array of 1..%d {role, content}",
                                LLM_MAX_MESSAGES);
        size_t total = 0;
        for (uint32_t i = 0; i < m->via.array.size && !rc; i++) {
            const msgpack_object *e = &m->via.array.ptr[i];
            const char *role, *content;
            size_t rl, cl;
            if (e->type != MSGPACK_OBJECT_MAP ||
                om_map_str(e, "args.messages[]", "role", &role, &rl, err, sizeof err) ||
                om_map_str(e, "args.messages[]", "content", &content, &cl, err, sizeof err)) {
                rc = om_sink_fail(sink, OM_EFORMAT, "args.messages[%u]: expected {role: str, content: str}", i);
                break;
            }
            total += cl;
            if (total > LLM_MAX_PROMPT_BYTES) {
                rc = om_sink_fail(sink, OM_ERANGE, "args.messages: more than %u bytes of content",
                                  LLM_MAX_PROMPT_BYTES);
                break;
            }
            msgs[n].role = own[n_own++] = strndup(role, rl);
            msgs[n].content = own[n_own++] = strndup(content, cl);
            n++;
        }
    }
    for (int i = 0; i < n_own && !rc; i++)
        if (!own[i])
            rc = OM_ENOMEM;
    int need = rc ? rc : om_chat_render(s->chat_format, msgs, n, 1, NULL, 0);
    if (!rc && need < 0)
        rc = om_sink_fail(sink, need, "messages: roles must be system, user or assistant");
    if (!rc && !(*text = malloc((size_t)need + 1)))
        rc = OM_ENOMEM;
    if (!rc)
        om_chat_render(s->chat_format, msgs, n, 1, *text, (size_t)need + 1);
    for (int i = 0; i < n_own; i++)
        free(own[i]);
    return rc;
}

typedef struct stream_ctx {
    llm_state     *s;
    const om_req  *req;
    om_sink       *sink;
    int            send_rc, cancelled;
} stream_ctx;

static int on_token(void *user, int32_t token, const char *text, size_t n)
{
    stream_ctx *c = user;
    if (token >= 0 && c->s->n_cached < c->s->n_ctx)
        c->s->cached[c->s->n_cached++] = token;
    if (n || token >= 0) {
        char buf[1024];
        size_t m = n < sizeof buf - 1 ? n : sizeof buf - 1;
        memcpy(buf, text, m);
        buf[m] = 0;
        om_msgbuf *b = om_sink_buf(c->sink);
        int rc = om_reply_token(b, c->req->id, om_sink_seq(c->sink), buf, token);
        if (!rc)
            rc = om_sink_send(c->sink, NULL, 0);
        if (rc) {
            c->send_rc = rc;
            return 1;
        }
    }
    if (om_sink_cancelled(c->sink)) {
        c->cancelled = 1;
        return 1;
    }
    return 0;
}

/* Tokenizes the prompt into s->ids; with a placeholder, the text is split at its first
 * occurrence and n_rows ids of -1 (om_llm's "take the next embedding row") go between
 * the parts. Returns the count, or an OM_E* code. */
static int tokenize(llm_state *s, const char *text, int special, const char *placeholder, int n_rows)
{
    const om_tokenizer *tok = om_llm_get_tokenizer(s->llm);
    const char *at = placeholder ? strstr(text, placeholder) : NULL;
    if (!at)
        return om_tokenize(tok, text, strlen(text), 1, special, s->ids, s->n_ctx);
    int n1 = om_tokenize(tok, text, (size_t)(at - text), 1, special, s->ids, s->n_ctx);
    if (n1 < 0)
        return n1;
    if (n1 + n_rows >= s->n_ctx)
        return OM_ERANGE;
    for (int i = 0; i < n_rows; i++)
        s->ids[n1 + i] = -1;
    const char *rest = at + strlen(placeholder);
    int n2 = om_tokenize(tok, rest, strlen(rest), 0, special, s->ids + n1 + n_rows, s->n_ctx - n1 - n_rows);
    return n2 < 0 ? n2 : n1 + n_rows + n2;
}

static int llm_handle(void *state, const om_req *req, om_sink *sink)
{
    llm_state *s = state;
    if (!s)
        return om_sink_fail(sink, OM_ENOENT, "no LLM model is configured: start omnid with "
                            "--pack DIR or --set llm.model=PATH.gguf (or [llm] model = ... in its config)");
    om_llm_gen g = { 0 };
    char stop_buf[OM_STOP_MAX * (OM_STOP_MAX_LEN + 1)];
    const char *stop[OM_STOP_MAX];
    int rc = parse_sampling(s, req, &g.sampling, stop, &g.n_stop, stop_buf, sizeof stop_buf, sink);
    if (rc)
        return rc;
    g.stop = stop;
    int media = om_vqa_has_media(req), n_rows = 0;
    om_vqa_result vr = { 0 };
    if (media && req->op != OM_OP_ASK)
        return om_sink_fail(sink, OM_EINVAL, "args.video/args.image: only ask takes media");
    if (media && !s->vqa)
        return om_sink_fail(sink, OM_ENOENT, "args.video/args.image: %s", s->no_vqa);
    if (media) {
        if ((rc = om_vqa_encode(s->vqa, req, sink, s->rows, NULL, &vr)))
            return rc;
        n_rows = om_vqa_n_rows(s->vqa);
    }
    char *text;
    int special;
    if ((rc = build_prompt(s, req, sink, media ? s->placeholder : NULL, &text, &special)))
        return rc;
    int n = tokenize(s, text, special, media ? s->placeholder : NULL, n_rows);
    free(text);
    if (n == OM_ERANGE || n >= s->n_ctx)
        return om_sink_fail(sink, OM_ERANGE, "the prompt%s does not fit the context of %d tokens",
                            media ? " with the media's rows" : "", s->n_ctx);
    if (n <= 0)
        return om_sink_fail(sink, n < 0 ? n : OM_EINVAL, "the prompt is empty or cannot be tokenized");
    /* Reuse the cached prefix, up to the first media row (rows differ between requests
     * while their ids do not); at least the last prompt token is evaluated again so
     * there are logits to sample from. */
    int keep = 0;
    while (keep < s->n_cached && keep < n - 1 && s->ids[keep] >= 0 && s->cached[keep] == s->ids[keep])
        keep++;
    om_llm_truncate(s->llm, keep);
    memcpy(s->cached + keep, s->ids + keep, sizeof *s->ids * (size_t)(n - keep));
    s->n_cached = n;
    stream_ctx c = { .s = s, .req = req, .sink = sink };
    g.on_token = on_token;
    g.user = &c;
    om_llm_stats st;
    rc = om_llm_generate(s->llm, s->ids + keep, n - keep, n_rows ? s->rows : NULL, n_rows, &g, &st);
    /* The last sampled token was not fed back: the cache holds n_past tokens. */
    s->n_cached = om_llm_n_past(s->llm);
    if (rc) {
        s->n_cached = 0;
        om_llm_truncate(s->llm, 0);
        return om_sink_fail(sink, rc, "generation failed: %s", om_llm_last_error(s->llm));
    }
    if (c.send_rc)
        return c.send_rc;
    if (c.cancelled)
        return om_sink_fail(sink, OM_ECANCELED, "generation cancelled after %d tokens", st.n_gen);
    om_kv_f64 t[4] = { { "prompt_ms", st.prompt_ms }, { "gen_ms", st.gen_ms },
                       { "sample_ms", vr.sample_ms }, { "encode_ms", vr.encode_ms } };
    om_kv_u64 u[5] = { { "prompt_tokens", (uint64_t)n }, { "cached_tokens", (uint64_t)keep },
                       { "generated_tokens", (uint64_t)st.n_gen }, { "media_rows", (uint64_t)n_rows },
                       { "frames", (uint64_t)vr.n_frames } };
    om_sink_set_done(sink, t, media ? 4 : 2, u, media ? 5 : 3);
    return 0;
}

const om_stage om_stage_llm = {
    .name   = "llm",
    .ops    = llm_ops,
    .init   = llm_init,
    .handle = llm_handle,
    .fini   = llm_fini,
};
