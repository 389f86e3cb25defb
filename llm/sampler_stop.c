/* sampler_stop.c: stop strings over streamed text (see om_sampler.h). Text is held
 * back while its tail could still grow into a stop string or completes a UTF-8
 * sequence, so a client never sees part of a stop string or half a character. */
#include <stdlib.h>
#include <string.h>

#include "om_err.h"
#include "om_sampler.h"
#include "unicode.h"

struct om_stop {
    char   stop[OM_STOP_MAX][OM_STOP_MAX_LEN];
    size_t len[OM_STOP_MAX];
    int    n;
    char  *hold;                    /* undecided text */
    size_t n_hold, cap;
    int    stopped;
};

int om_stop_open(om_stop **out, const char *const *stops, int n)
{
    *out = NULL;
    if (n < 0 || n > OM_STOP_MAX || (n && !stops))
        return OM_EINVAL;
    for (int i = 0; i < n; i++)
        if (!stops[i] || !stops[i][0] || strlen(stops[i]) > OM_STOP_MAX_LEN)
            return OM_EINVAL;
    om_stop *s = calloc(1, sizeof(*s));
    if (!s)
        return OM_ENOMEM;
    for (int i = 0; i < n; i++) {
        s->len[i] = strlen(stops[i]);
        memcpy(s->stop[i], stops[i], s->len[i]);
    }
    s->n = n;
    *out = s;
    return 0;
}

void om_stop_close(om_stop *s)
{
    if (!s)
        return;
    free(s->hold);
    free(s);
}

/* Bytes at the end of h[0..n) that start a UTF-8 sequence not yet complete. */
static size_t utf8_partial_tail(const char *h, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        uint8_t c = (uint8_t)h[n - k];
        if ((c & 0xC0) == 0x80)
            continue;               /* continuation byte: look further back */
        int need = c >= 0xC0 ? om_utf8_len(c) : 1;
        return (size_t)need > k ? k : 0;
    }
    return 0;
}

int om_stop_feed(om_stop *s, const char *text, size_t n, char *out, size_t out_size, size_t *n_out)
{
    *n_out = 0;
    if (s->stopped)
        return 1;
    if (n > (1u << 24) || s->n_hold + n > out_size)
        return OM_ERANGE;
    if (s->n_hold + n > s->cap) {
        size_t cap = s->n_hold + n + 64;
        char *h = realloc(s->hold, cap);
        if (!h)
            return OM_ENOMEM;
        s->hold = h;
        s->cap = cap;
    }
    if (n > 0)
        memcpy(s->hold + s->n_hold, text, n);
    s->n_hold += n;
    /* Earliest complete stop string. Held text from before had none, so a match
     * may end only in the new bytes, but may start in the held ones. */
    size_t cut = s->n_hold;
    for (int i = 0; i < s->n; i++) {
        for (size_t p = 0; p + s->len[i] <= s->n_hold && p < cut; p++) {
            if (!memcmp(s->hold + p, s->stop[i], s->len[i])) {
                cut = p;
                break;
            }
        }
    }
    size_t emit, keep;
    if (cut < s->n_hold) {
        s->stopped = 1;
        emit = cut;
        keep = 0;
    } else {
        /* Longest tail that is a proper prefix of some stop string. */
        size_t tail = 0;
        for (int i = 0; i < s->n; i++) {
            size_t max = s->len[i] - 1 < s->n_hold ? s->len[i] - 1 : s->n_hold;
            for (size_t k = max; k > tail; k--) {
                if (!memcmp(s->hold + s->n_hold - k, s->stop[i], k)) {
                    tail = k;
                    break;
                }
            }
        }
        size_t part = utf8_partial_tail(s->hold, s->n_hold);
        keep = tail > part ? tail : part;
        emit = s->n_hold - keep;
    }
    if (emit > 0)
        memcpy(out, s->hold, emit);
    *n_out = emit;
    memmove(s->hold, s->hold + emit, keep);
    s->n_hold = keep;
    return s->stopped;
}

size_t om_stop_flush(om_stop *s, char *out, size_t out_size)
{
    size_t n = s->stopped || s->n_hold > out_size ? 0 : s->n_hold;
    if (n > 0)
        memcpy(out, s->hold, n);
    s->n_hold = 0;
    return n;
}
