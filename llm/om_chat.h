/* om_chat.h: chat prompt formats. A model's tokenizer.chat_template (Jinja) is not
 * executed: it is recognised by substring fingerprints, as llama.cpp's
 * llm_chat_detect_template does, and the format is rendered by C code that produces
 * the same text. Formats: llama-2 (and its <<SYS>> / BOS-in-history / strip variants),
 * llama-3, chatml, zephyr (turns end in <|endoftext|>), tinyllama (zephyr's layout,
 * turns end in </s>), phi-3.
 * The rendered text contains the special tokens as text; tokenize it with
 * parse_special = 1 and add_special = 1 (the BOS comes from the tokenizer). */
#ifndef OM_CHAT_H
#define OM_CHAT_H

#include <stddef.h>

enum om_chat_format {
    OM_CHAT_UNKNOWN = 0,
    OM_CHAT_LLAMA2,                 /* no system support: system text leads the first turn */
    OM_CHAT_LLAMA2_SYS,             /* <<SYS>> block */
    OM_CHAT_LLAMA2_SYS_BOS,         /* ... and "<s>" before every later [INST] */
    OM_CHAT_LLAMA2_SYS_STRIP,       /* ... contents stripped of surrounding whitespace */
    OM_CHAT_LLAMA3,
    OM_CHAT_CHATML,
    OM_CHAT_ZEPHYR,
    OM_CHAT_TINYLLAMA,
    OM_CHAT_PHI3,
    OM_CHAT_COUNT_
};

typedef struct om_chat_msg {
    const char *role;               /* "system", "user" or "assistant" */
    const char *content;            /* UTF-8, NUL-terminated */
} om_chat_msg;

#define OM_CHAT_MAX_MSGS 4096

/* Recognises a Jinja chat template; OM_CHAT_UNKNOWN when no fingerprint matches. */
int om_chat_detect(const char *tmpl);
/* By name: "llama2", "llama2-sys", "llama2-sys-bos", "llama2-sys-strip", "llama3",
 * "chatml", "zephyr", "tinyllama", "phi3"; OM_CHAT_UNKNOWN otherwise. */
int om_chat_from_name(const char *name);
const char *om_chat_name(int format);

/* Renders msgs (and, when add_generation_prompt, the opening of the assistant's turn;
 * llama-2 has none, its user turn already ends in "[/INST]").
 * Returns the byte count; the text is written and NUL-terminated when count < size
 * (buf may be NULL with size 0 to ask for the count). OM_EINVAL names no format or a
 * role other than system/user/assistant; OM_ERANGE past OM_CHAT_MAX_MSGS or 1 GiB. */
int om_chat_render(int format, const om_chat_msg *msgs, int n, int add_generation_prompt,
                   char *buf, size_t size);

#endif
