/* Printing replies: JSON lines for scripts, indented key: value text for people,
 * and a one-line progress bar on a terminal's stderr. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "omni.h"

static void json_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch == '\t')
            fputs("\\t", f);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_double(FILE *f, double d)
{
    if (isfinite(d))
        fprintf(f, "%.17g", d);
    else
        fputs("null", f);                  /* JSON has no NaN or infinity */
}

void omni_json_object(FILE *f, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:              fputs("null", f); break;
    case MSGPACK_OBJECT_BOOLEAN:          fputs(o->via.boolean ? "true" : "false", f); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: fprintf(f, "%llu", (unsigned long long)o->via.u64); break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: fprintf(f, "%lld", (long long)o->via.i64); break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:          json_double(f, o->via.f64); break;
    case MSGPACK_OBJECT_STR:              json_string(f, o->via.str.ptr, o->via.str.size); break;
    case MSGPACK_OBJECT_BIN:              fprintf(f, "{\"bin_bytes\":%u}", o->via.bin.size); break;
    case MSGPACK_OBJECT_EXT:              fprintf(f, "{\"ext_bytes\":%u}", o->via.ext.size); break;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', f);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                fputc(',', f);
            omni_json_object(f, &o->via.array.ptr[i]);
        }
        fputc(']', f);
        break;
    case MSGPACK_OBJECT_MAP:
        fputc('{', f);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (i)
                fputc(',', f);
            if (kv->key.type == MSGPACK_OBJECT_STR)
                json_string(f, kv->key.via.str.ptr, kv->key.via.str.size);
            else {                         /* JSON keys are strings: quote the key's JSON */
                fputc('"', f);
                omni_json_object(f, &kv->key);
                fputc('"', f);
            }
            fputc(':', f);
            omni_json_object(f, &kv->val);
        }
        fputc('}', f);
        break;
    }
}

static void human_scalar(FILE *f, const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_STR)
        fwrite(o->via.str.ptr, 1, o->via.str.size, f);
    else if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
        fprintf(f, "%g", o->via.f64);
    else
        omni_json_object(f, o);
}

/* One "key: value" whose key starts at column col (already indented); nested maps
 * and lists of maps go below it, YAML-like. */
static void human_kv(FILE *f, const msgpack_object_kv *kv, int col)
{
    const msgpack_object *v = &kv->val;
    human_scalar(f, &kv->key);
    fputc(':', f);
    if (v->type == MSGPACK_OBJECT_MAP && v->via.map.size > 0) {
        fputc('\n', f);
        omni_human_map(f, v, col + 2);
    } else if (v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size > 0 &&
               v->via.array.ptr[0].type == MSGPACK_OBJECT_MAP) {
        fputc('\n', f);
        for (uint32_t j = 0; j < v->via.array.size; j++) {
            const msgpack_object *e = &v->via.array.ptr[j];
            fprintf(f, "%*s- ", col + 2, "");
            if (e->type != MSGPACK_OBJECT_MAP || e->via.map.size == 0) {
                human_scalar(f, e);
                fputc('\n', f);
                continue;
            }
            for (uint32_t i = 0; i < e->via.map.size; i++) {
                if (i)
                    fprintf(f, "%*s", col + 4, "");
                human_kv(f, &e->via.map.ptr[i], col + 4);
            }
        }
    } else {
        fputc(' ', f);
        human_scalar(f, v);
        fputc('\n', f);
    }
}

void omni_human_map(FILE *f, const msgpack_object *map, int indent)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        fprintf(f, "%*s", indent, "");
        human_kv(f, &map->via.map.ptr[i], indent);
    }
}

void omni_progress(omni_ctx *c, const om_reply_msg *r)
{
    if (!isatty(STDERR_FILENO))
        return;
    enum { W = 30 };
    int fill = r->total ? (int)(W * (r->current < r->total ? r->current : r->total) / r->total) : 0;
    char bar[W + 1];
    memset(bar, '#', fill);
    memset(bar + fill, '.', W - fill);
    bar[W] = 0;
    fprintf(stderr, "\r\033[K%.*s [%s] %llu/%llu", (int)(r->stage_len < 24 ? r->stage_len : 24), r->stage,
            bar, (unsigned long long)r->current, (unsigned long long)r->total);
    fflush(stderr);
    c->bar_shown = true;
}

void omni_progress_clear(omni_ctx *c)
{
    if (c->bar_shown)
        fputs("\r\033[K", stderr);
    c->bar_shown = false;
}

int omni_print_reply(omni_ctx *c, const om_reply_msg *r)
{
    if (r->type == OM_REPLY_PROGRESS && !c->json) {
        omni_progress(c, r);
        return OMNI_OK;
    }
    omni_progress_clear(c);
    if (c->json) {
        omni_json_object(stdout, &r->body);
        fputc('\n', stdout);
        fflush(stdout);
        if (r->type == OM_REPLY_ERROR)
            fprintf(stderr, "omni: %s: %.*s\n", r->code_name, (int)r->message_len, r->message);
        return r->type == OM_REPLY_ERROR ? OMNI_EREPLY : OMNI_OK;
    }
    if (c->mid_line && r->type != OM_REPLY_TOKEN) {
        fputc('\n', stdout);
        c->mid_line = false;
    }
    switch (r->type) {
    case OM_REPLY_TOKEN:
        fwrite(r->text, 1, r->text_len, stdout);
        fflush(stdout);
        c->mid_line = r->text_len > 0 && r->text[r->text_len - 1] != '\n';
        break;
    case OM_REPLY_RESULT:
        omni_human_map(stdout, r->result, 0);
        break;
    case OM_REPLY_EMBEDDING:
        printf("embedding %.*s: %s[%llu]\n", (int)r->modality_len, r->modality, om_dtype_name(r->tensor.dtype),
               (unsigned long long)r->tensor.shape[0]);
        break;
    case OM_REPLY_IMAGE:
        printf("image %ux%u %.*s, %zu bytes\n", r->width, r->height, (int)r->mime_len, r->mime, r->image_data.size);
        break;
    case OM_REPLY_ERROR:
        fprintf(stderr, "omni: %s: %.*s\n", r->code_name, (int)r->message_len, r->message);
        return OMNI_EREPLY;
    default:
        break;
    }
    return OMNI_OK;
}
