/* Chat formats: detection from real templates' fingerprints and rendering against
 * the exact expected prompt text (llama.cpp's test-chat-template conversation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "om_chat.h"
#include "om_err.h"
#include "om_tokenizer.h"

static const om_chat_msg conv[] = {
    { "system", "You are a helpful assistant" },
    { "user", "Hello" },
    { "assistant", "Hi there" },
    { "user", "Who are you" },
    { "assistant", "   I am an assistant   " },
    { "user", "Another question" },
};
#define NCONV ((int)(sizeof(conv) / sizeof(conv[0])))

static void expect(int f, const char *want)
{
    char buf[2048];
    int n = om_chat_render(f, conv, NCONV, 1, buf, sizeof(buf));
    if (n != (int)strlen(want) || strcmp(buf, want))
        fail_msg("%s rendered:\n%s\n---want:\n%s", om_chat_name(f), n > 0 ? buf : "(error)", want);
    /* Sizing: the count with no buffer, and a buffer one byte short. */
    assert_int_equal(om_chat_render(f, conv, NCONV, 1, NULL, 0), n);
    assert_int_equal(om_chat_render(f, conv, NCONV, 1, buf, (size_t)n), n);
}

static void test_render(void **state)
{
    expect(OM_CHAT_CHATML,
           "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
           "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
           "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n"
           "<|im_start|>assistant\n");
    expect(OM_CHAT_LLAMA2,
           "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]"
           "   I am an assistant   </s>[INST] Another question [/INST]");
    expect(OM_CHAT_LLAMA2_SYS,
           "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>"
           "[INST] Who are you [/INST]   I am an assistant   </s>[INST] Another question [/INST]");
    expect(OM_CHAT_LLAMA2_SYS_BOS,
           "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>"
           "<s>[INST] Who are you [/INST]   I am an assistant   </s><s>[INST] Another question [/INST]");
    expect(OM_CHAT_LLAMA2_SYS_STRIP,
           "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>"
           "[INST] Who are you [/INST]I am an assistant</s>[INST] Another question [/INST]");
    expect(OM_CHAT_LLAMA3,
           "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect(OM_CHAT_ZEPHYR,
           "<|system|>\nYou are a helpful assistant<|endoftext|>\n<|user|>\nHello<|endoftext|>\n"
           "<|assistant|>\nHi there<|endoftext|>\n<|user|>\nWho are you<|endoftext|>\n"
           "<|assistant|>\n   I am an assistant   <|endoftext|>\n<|user|>\nAnother question<|endoftext|>\n"
           "<|assistant|>\n");
    expect(OM_CHAT_TINYLLAMA,
           "<|system|>\nYou are a helpful assistant</s>\n<|user|>\nHello</s>\n"
           "<|assistant|>\nHi there</s>\n<|user|>\nWho are you</s>\n"
           "<|assistant|>\n   I am an assistant   </s>\n<|user|>\nAnother question</s>\n"
           "<|assistant|>\n");
    expect(OM_CHAT_PHI3,
           "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n"
           "<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n"
           "<|assistant|>\n   I am an assistant   <|end|>\n<|user|>\nAnother question<|end|>\n"
           "<|assistant|>\n");

    char buf[256];
    /* Without the generation prompt. */
    const om_chat_msg one[] = { { "user", "Hi" } };
    assert_int_equal(om_chat_render(OM_CHAT_CHATML, one, 1, 0, buf, sizeof(buf)), 30);
    assert_string_equal(buf, "<|im_start|>user\nHi<|im_end|>\n");
    /* Refusals. */
    const om_chat_msg badrole[] = { { "tool", "x" } };
    assert_int_equal(om_chat_render(OM_CHAT_CHATML, badrole, 1, 1, buf, sizeof(buf)), OM_EINVAL);
    assert_int_equal(om_chat_render(OM_CHAT_UNKNOWN, one, 1, 1, buf, sizeof(buf)), OM_EINVAL);
    assert_int_equal(om_chat_render(OM_CHAT_COUNT_, one, 1, 1, buf, sizeof(buf)), OM_EINVAL);
    assert_int_equal(om_chat_render(OM_CHAT_CHATML, one, OM_CHAT_MAX_MSGS + 1, 1, buf, sizeof(buf)), OM_ERANGE);
}

static void test_detect(void **state)
{
    /* Excerpts of the models' tokenizer.chat_template with their fingerprints. */
    const char *llama2 =
        "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
        "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
        "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
        "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + "
        "system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = "
        "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
        "content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + "
        "content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
    const char *llama3 =
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
        "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim "
        "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
        "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant"
        "<|end_header_id|>\\n\\n' }}{% endif %}";
    const char *chatml =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
        "+ '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    const char *zephyr =
        "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + "
        "message['content'] + '<|endoftext|>' }}\n{% elif message['role'] == 'assistant' %}\n"
        "{{ '<|assistant|>\\n'  + message['content'] + '<|endoftext|>' }}\n{% endif %}\n{% endfor %}";
    const char *tinyllama =
        "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + "
        "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + "
        "message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n"
        "{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n{% endif %}\n"
        "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";
    const char *mistral_v7 = "{%- if messages[0]['role'] == 'system' %}[SYSTEM_PROMPT]{{ x }}[/SYSTEM_PROMPT][INST]";
    assert_int_equal(om_chat_detect(llama2), OM_CHAT_LLAMA2_SYS_STRIP);
    assert_int_equal(om_chat_detect("[INST] {{ m }} [/INST]"), OM_CHAT_LLAMA2);
    assert_int_equal(om_chat_detect("<<SYS>> [INST]"), OM_CHAT_LLAMA2_SYS);
    assert_int_equal(om_chat_detect("<<SYS>> {{ bos_token + '[INST] ' }}"), OM_CHAT_LLAMA2_SYS_BOS);
    assert_int_equal(om_chat_detect(llama3), OM_CHAT_LLAMA3);
    assert_int_equal(om_chat_detect(chatml), OM_CHAT_CHATML);
    assert_int_equal(om_chat_detect(zephyr), OM_CHAT_ZEPHYR);
    assert_int_equal(om_chat_detect(tinyllama), OM_CHAT_TINYLLAMA);
    assert_int_equal(om_chat_detect(mistral_v7), OM_CHAT_UNKNOWN);
    assert_int_equal(om_chat_detect("{{ messages }}"), OM_CHAT_UNKNOWN);
    assert_int_equal(om_chat_detect(NULL), OM_CHAT_UNKNOWN);

    /* The template stored in the phi-3 vocabulary. */
    char path[1024], err[256];
    snprintf(path, sizeof(path), "%s/conformance/tokenizer/ggml-vocab-phi-3.gguf", OMNID_SHARED_DIR);
    om_tokenizer *t;
    if (om_tokenizer_open(&t, path, err, sizeof(err)) < 0)
        fail_msg("%s: %s", path, err);
    assert_int_equal(om_chat_detect(om_tokenizer_chat_template(t)), OM_CHAT_PHI3);
    /* Rendered then tokenized with parse_special, the turn markers are single tokens. */
    char buf[256];
    const om_chat_msg one[] = { { "user", "Hi" } };
    int n = om_chat_render(OM_CHAT_PHI3, one, 1, 1, buf, sizeof(buf));
    assert_true(n > 0);
    int32_t ids[64];
    int ni = om_tokenize(t, buf, (size_t)n, 1, 1, ids, 64);
    assert_true(ni >= 4);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], om_tokenizer_find(t, "<|user|>", 8));
    int end = om_tokenizer_find(t, "<|end|>", 7), found = 0;
    for (int i = 0; i < ni; i++) {
        found += ids[i] == end;
        /* Phi-3's special tokens eat the newline after them (llama.cpp's rstrip). */
        assert_int_not_equal(ids[i], 13);
    }
    assert_int_equal(found, 1);
    assert_int_equal(ids[ni - 1], om_tokenizer_find(t, "<|assistant|>", 13));
    om_tokenizer_close(t);
}

static void test_names(void **state)
{
    for (int f = 1; f < OM_CHAT_COUNT_; f++)
        assert_int_equal(om_chat_from_name(om_chat_name(f)), f);
    assert_int_equal(om_chat_from_name("vicuna"), OM_CHAT_UNKNOWN);
    assert_int_equal(om_chat_from_name(NULL), OM_CHAT_UNKNOWN);
    assert_string_equal(om_chat_name(-3), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
