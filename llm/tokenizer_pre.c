/* tokenizer_pre.c: the BPE pre-tokenizer regexes, as hand-written matchers with the
 * exact semantics of llama.cpp's unicode_regex_split_custom_{gpt2,llama3}:
 *   GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   llama-3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *            ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *   smollm:  \p{N} (each digit a word), then GPT-2 on the rest. */
#include "om_err.h"
#include "tokenizer_impl.h"
#include "unicode.h"

#define OUT_OF_RANGE 0xFFFFFFFFu

typedef struct span {
    const uint32_t *c;
    size_t ini, end, prev_end;
    i32vec *words;
    int err;
} span;

static uint32_t cpt_at(const span *s, size_t pos)
{
    return pos >= s->ini && pos < s->end ? s->c[pos] : OUT_OF_RANGE;
}

/* Outside the span a position has no class at all (not even "undefined"). */
static unsigned flags_at(const span *s, size_t pos)
{
    return pos >= s->ini && pos < s->end ? om_unicode_flags(s->c[pos]) : 0;
}

static size_t add_word(span *s, size_t end)
{
    size_t len = end - s->prev_end;
    if (len > 0 && om_i32vec_push(s->words, (int32_t)len) < 0)
        s->err = OM_ENOMEM;
    s->prev_end = end;
    return len;
}

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's 't 're 've 'm 'll 'd at pos: returns the match length (0 = none). */
static size_t contraction(const span *s, size_t pos, int fold)
{
    if (cpt_at(s, pos) != '\'' || pos + 1 >= s->end)
        return 0;
    uint32_t a = cpt_at(s, pos + 1), b = pos + 2 < s->end ? cpt_at(s, pos + 2) : 0;
    if (fold) {
        a = ascii_lower(a);
        b = ascii_lower(b);
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (pos + 2 < s->end && ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')))
        return 3;
    return 0;
}

#define WLN (OM_UC_WHITESPACE | OM_UC_LETTER | OM_UC_NUMBER)

/* Whitespace tails shared by both regexes: \s+(?!\S) then \s+. */
static void whitespace(span *s, size_t *pos, size_t nws)
{
    if (nws > 1 && cpt_at(s, *pos + nws) != OUT_OF_RANGE) {
        *pos += nws - 1;
        add_word(s, *pos);
    } else if (nws > 0) {
        *pos += nws;
        add_word(s, *pos);
    } else {
        add_word(s, ++*pos);
    }
}

static void split_gpt2(span *s)
{
    for (size_t pos = s->ini; pos < s->end;) {
        uint32_t cpt = cpt_at(s, pos);
        size_t n = contraction(s, pos, 0);
        if (n) {
            pos += add_word(s, pos + n);
            continue;
        }
        unsigned f2 = cpt == ' ' ? flags_at(s, pos + 1) : flags_at(s, pos);
        unsigned cls = f2 & OM_UC_LETTER ? OM_UC_LETTER : f2 & OM_UC_NUMBER ? OM_UC_NUMBER : 0;
        if (cls) {                                         /* ' ?\p{L}+' and ' ?\p{N}+' */
            pos += cpt == ' ';
            while (f2 & cls)
                f2 = flags_at(s, ++pos);
            add_word(s, pos);
            continue;
        }
        if (!(f2 & WLN) && f2) {                           /* ' ?[^\s\p{L}\p{N}]+' */
            pos += cpt == ' ';
            while (!(f2 & WLN) && f2)
                f2 = flags_at(s, ++pos);
            add_word(s, pos);
            continue;
        }
        size_t nws = 0;
        while (flags_at(s, pos + nws) & OM_UC_WHITESPACE)
            nws++;
        whitespace(s, &pos, nws);
    }
}

static void split_llama3(span *s)
{
    for (size_t pos = s->ini; pos < s->end;) {
        uint32_t cpt = cpt_at(s, pos);
        unsigned f = flags_at(s, pos);
        size_t n = contraction(s, pos, 1);
        if (n) {
            pos += add_word(s, pos + n);
            continue;
        }
        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (!(cpt == '\r' || cpt == '\n' || (f & OM_UC_NUMBER)) &&
            ((f & OM_UC_LETTER) || (flags_at(s, pos + 1) & OM_UC_LETTER))) {
            pos++;
            while (flags_at(s, pos) & OM_UC_LETTER)
                pos++;
            add_word(s, pos);
            continue;
        }
        if (f & OM_UC_NUMBER) {                            /* \p{N}{1,3} */
            size_t ini = pos;
            while (flags_at(s, pos) & OM_UC_NUMBER) {
                if (++pos - ini >= 3) {
                    add_word(s, pos);
                    ini = pos;
                }
            }
            add_word(s, pos);
            continue;
        }
        /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
        unsigned f2 = cpt == ' ' ? flags_at(s, pos + 1) : f;
        if (!(f2 & WLN) && f) {
            pos += cpt == ' ';
            while (!(f2 & WLN) && f2)
                f2 = flags_at(s, ++pos);
            for (uint32_t c = cpt_at(s, pos); c == '\r' || c == '\n'; c = cpt_at(s, ++pos))
                ;
            add_word(s, pos);
            continue;
        }
        size_t nws = 0, last_rn = 0;
        while (flags_at(s, pos + nws) & OM_UC_WHITESPACE) {
            uint32_t c = cpt_at(s, pos + nws);
            if (c == '\r' || c == '\n')
                last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn > 0) {                                 /* \s*[\r\n]+ */
            pos = last_rn;
            add_word(s, pos);
            continue;
        }
        whitespace(s, &pos, nws);
    }
}

static int run(void (*split)(span *), const uint32_t *c, size_t ini, size_t end, i32vec *words)
{
    span s = { c, ini, end, ini, words, 0 };
    split(&s);
    return s.err;
}

int om_tok_pretokenize(int pre, const uint32_t *cpts, size_t n, i32vec *words)
{
    if (pre == PRE_LLAMA3)
        return run(split_llama3, cpts, 0, n, words);
    if (pre == PRE_GPT2)
        return run(split_gpt2, cpts, 0, n, words);
    /* smollm: every number code point stands alone; the runs between go through GPT-2. */
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && !(om_unicode_flags(cpts[i]) & OM_UC_NUMBER))
            continue;
        int rc = run(split_gpt2, cpts, start, i, words);
        if (rc < 0)
            return rc;
        if (i < n && om_i32vec_push(words, 1) < 0)
            return OM_ENOMEM;
        start = i + 1;
    }
    return 0;
}
