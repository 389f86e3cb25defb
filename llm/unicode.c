/* unicode.c: UTF-8 and code-point classes for the tokenizers (see unicode.h). */
#include "unicode.h"

unsigned om_unicode_flags(uint32_t cp)
{
    if (cp > 0x10FFFF)
        return OM_UC_UNDEFINED;
    /* Last range starting at or before cp; the table starts at U+0000. */
    int lo = 0, hi = om_unicode_n_ranges - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if ((om_unicode_ranges[mid] >> 11) <= cp)
            lo = mid;
        else
            hi = mid - 1;
    }
    return om_unicode_ranges[lo] & 0x7FF;
}

int om_utf8_len(uint8_t lead)
{
    static const uint8_t len[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    return len[lead >> 4];
}

static int is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

uint32_t om_utf8_decode(const uint8_t *s, size_t n, int *len)
{
    uint8_t c = s[0];
    *len = 1;
    if (c < 0x80)
        return c;
    if ((c & 0xE0) == 0xC0 && n >= 2 && is_cont(s[1])) {
        *len = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if ((c & 0xF0) == 0xE0 && n >= 3 && is_cont(s[1]) && is_cont(s[2])) {
        *len = 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    if ((c & 0xF8) == 0xF0 && n >= 4 && is_cont(s[1]) && is_cont(s[2]) && is_cont(s[3])) {
        *len = 4;
        return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
               ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
    return 0xFFFD;
}

int om_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
