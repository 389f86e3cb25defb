/* chat.c: chat format detection and rendering (see om_chat.h). The layouts follow
 * llama.cpp's llm_chat_apply_template for the formats both have. */
#include <ctype.h>
#include <string.h>

#include "om_chat.h"
#include "om_err.h"

static const char *const names[OM_CHAT_COUNT_] = {
    [OM_CHAT_UNKNOWN] = "unknown",
    [OM_CHAT_LLAMA2] = "llama2",
    [OM_CHAT_LLAMA2_SYS] = "llama2-sys",
    [OM_CHAT_LLAMA2_SYS_BOS] = "llama2-sys-bos",
    [OM_CHAT_LLAMA2_SYS_STRIP] = "llama2-sys-strip",
    [OM_CHAT_LLAMA3] = "llama3",
    [OM_CHAT_CHATML] = "chatml",
    [OM_CHAT_ZEPHYR] = "zephyr",
    [OM_CHAT_TINYLLAMA] = "tinyllama",
    [OM_CHAT_PHI3] = "phi3",
};

const char *om_chat_name(int format)
{
    return format >= 0 && format < OM_CHAT_COUNT_ ? names[format] : names[OM_CHAT_UNKNOWN];
}

int om_chat_from_name(const char *name)
{
    for (int i = 1; name && i < OM_CHAT_COUNT_; i++)
        if (!strcmp(name, names[i]))
            return i;
    return OM_CHAT_UNKNOWN;
}

int om_chat_detect(const char *t)
{
    if (!t)
        return OM_CHAT_UNKNOWN;
#define HAS(s) (strstr(t, s) != NULL)
    /* Same order and fingerprints as llama.cpp, for the formats we render. */
    if (HAS("<|im_start|>"))
        return HAS("<|im_sep|>") || HAS("<end_of_utterance>") ? OM_CHAT_UNKNOWN : OM_CHAT_CHATML;
    if (!strncmp(t, "mistral", 7) || HAS("[INST]")) {
        if (HAS("[SYSTEM_PROMPT]") || HAS("' [INST] ' + system_message") || HAS("[AVAILABLE_TOOLS]"))
            return OM_CHAT_UNKNOWN;                         /* mistral v1/v3/v7 */
        if (HAS("content.strip()"))
            return OM_CHAT_LLAMA2_SYS_STRIP;
        if (HAS("bos_token + '[INST]"))
            return OM_CHAT_LLAMA2_SYS_BOS;
        return HAS("<<SYS>>") ? OM_CHAT_LLAMA2_SYS : OM_CHAT_LLAMA2;
    }
    if (HAS("<|assistant|>") && HAS("<|end|>"))
        return OM_CHAT_PHI3;
    /* llama.cpp takes <|user|> + <|assistant|> without "</s>" for GLM-Edge; TinyLlama's
     * template has both and ends turns with eos_token, which is "</s>". */
    if (HAS("<|user|>") && HAS("<|assistant|>") && HAS("eos_token") && !HAS("<|endoftext|>"))
        return OM_CHAT_TINYLLAMA;
    if (HAS("<|user|>") && HAS("<|endoftext|>"))
        return OM_CHAT_ZEPHYR;
    if (HAS("<|start_header_id|>") && HAS("<|end_header_id|>"))
        return OM_CHAT_LLAMA3;
#undef HAS
    return OM_CHAT_UNKNOWN;
}

typedef struct out { char *buf; size_t size, pos; } out;

static void put(out *o, const char *s, size_t n)
{
    if (n > 0 && o->pos + n < o->size)
        memcpy(o->buf + o->pos, s, n);
    o->pos += n;
}

static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

/* Content without leading/trailing whitespace (C isspace, as llama.cpp's trim). */
static void put_trimmed(out *o, const char *s)
{
    size_t a = 0, b = strlen(s);
    while (a < b && isspace((unsigned char)s[a]))
        a++;
    while (b > a && isspace((unsigned char)s[b - 1]))
        b--;
    put(o, s + a, b - a);
}

static void render_llama2(out *o, int f, const om_chat_msg *m, int n)
{
    int sys = f != OM_CHAT_LLAMA2, bos = f == OM_CHAT_LLAMA2_SYS_BOS, strip = f == OM_CHAT_LLAMA2_SYS_STRIP;
    int inside = 1;                 /* the first [INST] follows the tokenizer's BOS */
    puts_(o, "[INST] ");
    for (int i = 0; i < n; i++) {
        if (!inside) {
            inside = 1;
            puts_(o, bos ? "<s>[INST] " : "[INST] ");
        }
        const char *r = m[i].role;
        if (!strcmp(r, "system"))
            puts_(o, sys ? "<<SYS>>\n" : "");
        if (strip)
            put_trimmed(o, m[i].content);
        else
            puts_(o, m[i].content);
        if (!strcmp(r, "system")) {
            puts_(o, sys ? "\n<</SYS>>\n\n" : "\n");
        } else if (!strcmp(r, "user")) {
            puts_(o, " [/INST]");
        } else {
            puts_(o, "</s>");
            inside = 0;
        }
    }
}

int om_chat_render(int f, const om_chat_msg *m, int n, int add_gen, char *buf, size_t size)
{
    if (f <= OM_CHAT_UNKNOWN || f >= OM_CHAT_COUNT_ || n < 0 || (n && !m) || (!buf && size))
        return OM_EINVAL;
    if (n > OM_CHAT_MAX_MSGS)
        return OM_ERANGE;
    for (int i = 0; i < n; i++) {
        if (!m[i].role || !m[i].content)
            return OM_EINVAL;
        if (strcmp(m[i].role, "system") && strcmp(m[i].role, "user") && strcmp(m[i].role, "assistant"))
            return OM_EINVAL;
    }
    out o = { buf, size, 0 };
    if (f >= OM_CHAT_LLAMA2 && f <= OM_CHAT_LLAMA2_SYS_STRIP) {
        render_llama2(&o, f, m, n);                         /* no generation prompt */
    } else if (f == OM_CHAT_LLAMA3) {
        for (int i = 0; i < n; i++) {
            puts_(&o, "<|start_header_id|>");
            puts_(&o, m[i].role);
            puts_(&o, "<|end_header_id|>\n\n");
            put_trimmed(&o, m[i].content);
            puts_(&o, "<|eot_id|>");
        }
        if (add_gen)
            puts_(&o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    } else if (f == OM_CHAT_CHATML) {
        for (int i = 0; i < n; i++) {
            puts_(&o, "<|im_start|>");
            puts_(&o, m[i].role);
            puts_(&o, "\n");
            puts_(&o, m[i].content);
            puts_(&o, "<|im_end|>\n");
        }
        if (add_gen)
            puts_(&o, "<|im_start|>assistant\n");
    } else {
        /* zephyr, tinyllama, phi-3: "<|role|>\n" content end "\n" */
        const char *end = f == OM_CHAT_ZEPHYR ? "<|endoftext|>" : f == OM_CHAT_PHI3 ? "<|end|>" : "</s>";
        for (int i = 0; i < n; i++) {
            puts_(&o, "<|");
            puts_(&o, m[i].role);
            puts_(&o, "|>\n");
            puts_(&o, m[i].content);
            puts_(&o, end);
            puts_(&o, "\n");
        }
        if (add_gen)
            puts_(&o, "<|assistant|>\n");
    }
    if (o.pos > (1u << 30))
        return OM_ERANGE;
    if (o.pos < size)
        buf[o.pos] = 0;
    return (int)o.pos;
}
