/* unicode.h: what the tokenizers need of Unicode: UTF-8 decoding and the class of a code
 * point (general-category group and White_Space), from the table tools/gen_unicode.py
 * generates into unicode_data.c. Internal to om_llm. */
#ifndef OM_UNICODE_H
#define OM_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum {
    OM_UC_UNDEFINED  = 1 << 0,      /* unassigned (Cn) */
    OM_UC_NUMBER     = 1 << 1,      /* \p{N} */
    OM_UC_LETTER     = 1 << 2,      /* \p{L} */
    OM_UC_SEPARATOR  = 1 << 3,      /* \p{Z} */
    OM_UC_MARK       = 1 << 4,      /* \p{M} */
    OM_UC_PUNCT      = 1 << 5,      /* \p{P} */
    OM_UC_SYMBOL     = 1 << 6,      /* \p{S} */
    OM_UC_CONTROL    = 1 << 7,      /* \p{C} other than Cn */
    OM_UC_WHITESPACE = 1 << 8,      /* \s (White_Space) */
};

extern const uint32_t om_unicode_ranges[];
extern const int      om_unicode_n_ranges;

/* Class bits of cp; code points above U+10FFFF are UNDEFINED. */
unsigned om_unicode_flags(uint32_t cp);

/* Length of the UTF-8 sequence a lead byte starts (1 for a stray continuation byte,
 * as llama.cpp counts it). */
int om_utf8_len(uint8_t lead);

/* Decodes the code point at s[0..n); sets *len to the bytes used (>= 1). An invalid or
 * truncated sequence decodes as U+FFFD with *len = 1 (llama.cpp's recovery), so every
 * input makes progress. */
uint32_t om_utf8_decode(const uint8_t *s, size_t n, int *len);

/* Encodes cp (<= 0x10FFFF) into out[4]; returns the byte count. */
int om_utf8_encode(uint32_t cp, char *out);

#endif
