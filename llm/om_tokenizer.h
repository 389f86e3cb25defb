/* om_tokenizer.h: the LLM's tokenizer, read from a llama.cpp GGUF's tokenizer.* keys.
 * Owns a copy of the vocabulary (token texts, scores, types, BPE merges), so the GGUF
 * may be closed after om_tokenizer_from_gguf.
 *
 * Two models, as llama.cpp implements them (and tested against its test cases):
 *   "llama": SentencePiece-style: spaces become U+2581, a leading-space prefix, merging
 *            by token score, byte fallback to <0xXX> tokens.
 *   "gpt2":  byte-level BPE: a pre-tokenizer splits text into words (by
 *            tokenizer.ggml.pre: default/gpt-2 -> GPT-2 regex; llama-bpe/llama3 -> the
 *            llama-3 regex; smollm -> single digits, then the GPT-2 regex), bytes are
 *            mapped to GPT-2's printable code points, merges by rank.
 * Special tokens (control, user-defined, unknown) are found in text before either
 * model runs: user-defined ones always, control/unknown ones only with parse_special
 * (for a model named Phi-3 they also take the whitespace after them, as in llama.cpp).
 * Read-only after creation: one tokenizer may be used by many threads at once. */
#ifndef OM_TOKENIZER_H
#define OM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct om_tokenizer om_tokenizer;
struct om_gguf;

enum om_tok_model { OM_TOK_SPM = 0, OM_TOK_BPE = 1 };

/* Token types as GGUF stores them (tokenizer.ggml.token_type). */
enum om_tok_type {
    OM_TOKT_NORMAL = 1, OM_TOKT_UNKNOWN = 2, OM_TOKT_CONTROL = 3,
    OM_TOKT_USER_DEFINED = 4, OM_TOKT_UNUSED = 5, OM_TOKT_BYTE = 6,
};

/* Limits on what a file may declare. */
#define OM_TOK_MAX_VOCAB   (1 << 22)
#define OM_TOK_MAX_MERGES  (1 << 22)
#define OM_TOK_MAX_TOKLEN  65536          /* bytes of one token's text */
#define OM_TOK_MAX_TEXT    (16u << 20)    /* bytes om_tokenize accepts */

typedef struct om_tok_special {
    int32_t bos, eos, unk, pad, eot;      /* -1 when the vocabulary has none */
    int     add_bos, add_eos;             /* tokenizer.ggml.add_{bos,eos}_token (or model default) */
    int     add_space_prefix;             /* SPM only */
} om_tok_special;

/* Reads tokenizer.ggml.* from g. OM_EUNSUPPORTED names an unknown model or pre-tokenizer;
 * OM_EFORMAT/OM_ERANGE name the key that was wrong. */
int  om_tokenizer_from_gguf(om_tokenizer **out, const struct om_gguf *g, char *err, size_t errlen);
/* Opens a GGUF file, reads its tokenizer and closes the file. */
int  om_tokenizer_open(om_tokenizer **out, const char *path, char *err, size_t errlen);
void om_tokenizer_close(om_tokenizer *t);

int  om_tokenizer_model(const om_tokenizer *t);             /* enum om_tok_model */
int  om_tokenizer_n_vocab(const om_tokenizer *t);
const om_tok_special *om_tokenizer_special(const om_tokenizer *t);
/* tokenizer.chat_template (NUL-terminated), or NULL when the file has none. */
const char *om_tokenizer_chat_template(const om_tokenizer *t);
/* Id of the token whose text is exactly text[0..len), or OM_ENOENT. */
int  om_tokenizer_find(const om_tokenizer *t, const char *text, size_t len);
/* Raw token text (not NUL-terminated) and its type; NULL / 0 for a bad id. */
const char *om_token_text(const om_tokenizer *t, int32_t id, size_t *len);
int  om_token_type(const om_tokenizer *t, int32_t id);
/* End of generation: eos, eot, or a control token that ends a turn
 * (<|eot_id|>, <|im_end|>, <|end|>, <|endoftext|>). */
int  om_token_is_eog(const om_tokenizer *t, int32_t id);

/* Tokenizes text[0..len). add_special adds BOS/EOS as the vocabulary's flags say;
 * parse_special turns control-token text ("<s>", "<|im_start|>") into those tokens.
 * Returns the number of ids, writing them to ids when it is <= max_ids; ids may be
 * NULL (max_ids 0) to ask for the count. OM_ERANGE when max_ids is too small or len
 * exceeds OM_TOK_MAX_TEXT; OM_EFORMAT when an SPM vocabulary has neither a <0xXX>
 * token nor <unk> for a byte it must fall back to; OM_ENOMEM. Every input byte gives at most 3 ids (a space
 * is 3 bytes of U+2581 for SPM, an invalid byte 3 bytes of U+FFFD for BPE), plus BOS/EOS
 * and an SPM prefix (<= 3 ids) at the start and after each special token: 4 * len + 5
 * always suffices. */
int  om_tokenize(const om_tokenizer *t, const char *text, size_t len, int add_special,
                 int parse_special, int32_t *ids, int max_ids);

/* The bytes one token stands for (SPM: U+2581 -> ' ', <0xXX> -> byte; BPE: GPT-2 byte
 * decoding). Control and unknown tokens give their text only when special != 0, else
 * nothing. Returns the byte count (written when <= size), or OM_EINVAL for a bad id. */
int  om_token_to_piece(const om_tokenizer *t, int32_t id, int special, char *buf, size_t size);

/* Concatenates the pieces of ids, as llama.cpp's detokenize: remove_special drops a
 * leading BOS / trailing EOS the vocabulary adds; for SPM the first piece loses one
 * leading space (the prefix tokenization added). unparse_special renders control
 * tokens' text. Returns the byte count (the text is written and NUL-terminated when
 * count < size), or OM_EINVAL for a bad id. */
int  om_detokenize(const om_tokenizer *t, const int32_t *ids, int n, int remove_special,
                   int unparse_special, char *buf, size_t size);

#endif
