/* sampler.c: the sampling chain and its PRNG (see om_sampler.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "om_err.h"
#include "om_sampler.h"
#include "om_tokenizer.h"

typedef struct cand { int32_t id; float logit; } cand;

struct om_sampler {
    om_sampler_params p;
    int       n_vocab;
    cand     *c;
    float    *prob;
    uint32_t *seen;                 /* stamp per id: dedupes the penalty window */
    uint32_t  stamp;
    int32_t  *hist;                 /* ring of the last repeat_last_n accepted tokens */
    int       hist_n, hist_pos;
    int       n_accepted;
    uint64_t  rng[4];
};

om_sampler_params om_sampler_default_params(void)
{
    return (om_sampler_params){ .temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                                .repeat_penalty = 1.0f, .repeat_last_n = 64, .max_tokens = 0,
                                .seed = 0 };
}

/* ---- xoshiro256** seeded by splitmix64 ---- */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro(uint64_t *s)
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double uniform(om_sampler *s) { return (double)(xoshiro(s->rng) >> 11) * 0x1.0p-53; }

void om_sampler_reset(om_sampler *s)
{
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
    s->hist_n = s->hist_pos = s->n_accepted = 0;
}

int om_sampler_open(om_sampler **out, const om_sampler_params *p, int n_vocab)
{
    *out = NULL;
    if (!p || n_vocab < 1 || n_vocab > OM_TOK_MAX_VOCAB || isnan(p->temperature) ||
        isnan(p->top_p) || isnan(p->min_p) || !(p->repeat_penalty > 0) || isinf(p->repeat_penalty) ||
        p->repeat_last_n < 0 || p->repeat_last_n > OM_SAMPLER_MAX_WINDOW)
        return OM_EINVAL;
    om_sampler *s = calloc(1, sizeof(*s));
    if (!s)
        return OM_ENOMEM;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->c = malloc((size_t)n_vocab * sizeof(*s->c));
    s->prob = malloc((size_t)n_vocab * sizeof(*s->prob));
    s->seen = calloc((size_t)n_vocab, sizeof(*s->seen));
    s->hist = malloc(((size_t)p->repeat_last_n + 1) * sizeof(*s->hist));
    if (!s->c || !s->prob || !s->seen || !s->hist) {
        om_sampler_close(s);
        return OM_ENOMEM;
    }
    om_sampler_reset(s);
    *out = s;
    return 0;
}

void om_sampler_close(om_sampler *s)
{
    if (!s)
        return;
    free(s->c);
    free(s->prob);
    free(s->seen);
    free(s->hist);
    free(s);
}

int om_sampler_accept(om_sampler *s, int32_t token)
{
    if (token < 0 || token >= s->n_vocab)
        return OM_EINVAL;
    if (s->p.repeat_last_n > 0) {
        s->hist[s->hist_pos] = token;
        s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
        if (s->hist_n < s->p.repeat_last_n)
            s->hist_n++;
    }
    s->n_accepted++;
    return s->p.max_tokens > 0 && s->n_accepted >= s->p.max_tokens;
}

/* Most probable first; equal logits by id, so the order never depends on qsort. */
static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Min-heap on cand_cmp (the worst candidate at the root). */
static void sift_down(cand *h, int n, int i)
{
    for (;;) {
        int w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && cand_cmp(&h[l], &h[w]) > 0)
            w = l;
        if (r < n && cand_cmp(&h[r], &h[w]) > 0)
            w = r;
        if (w == i)
            return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* Moves the k best of c[0..n) to c[0..k), sorted: O(n log k) instead of a full sort. */
static void top_k_sorted(cand *c, int n, int k)
{
    for (int i = k / 2 - 1; i >= 0; i--)
        sift_down(c, k, i);
    for (int i = k; i < n; i++) {
        if (cand_cmp(&c[i], &c[0]) < 0) {
            c[0] = c[i];
            sift_down(c, k, 0);
        }
    }
    qsort(c, (size_t)k, sizeof(*c), cand_cmp);
}

/* Softmax of c[0..n) (sorted, so c[0] is the max) into prob. An infinite max shares
 * the mass among the candidates equal to it (+inf logits, or all -inf). */
static void softmax(const cand *c, int n, float *prob)
{
    double sum = 0;
    for (int i = 0; i < n; i++) {
        if (isinf(c[0].logit))
            prob[i] = c[i].logit == c[0].logit;
        else
            prob[i] = expf(c[i].logit - c[0].logit);
        sum += prob[i];
    }
    for (int i = 0; i < n; i++)
        prob[i] = (float)(prob[i] / sum);
}

/* Runs the chain on logits; leaves c[0..n) sorted with prob filled. Returns n. */
static int chain(om_sampler *s, const float *logits)
{
    int n = s->n_vocab;
    for (int i = 0; i < n; i++)
        s->c[i] = (cand){ i, isnan(logits[i]) ? -INFINITY : logits[i] };
    if (s->p.repeat_penalty != 1.0f && s->hist_n > 0) {
        if (++s->stamp == 0) {
            memset(s->seen, 0, (size_t)n * sizeof(*s->seen));
            s->stamp = 1;
        }
        for (int i = 0; i < s->hist_n; i++) {
            int32_t id = s->hist[i];
            if (s->seen[id] == s->stamp)
                continue;
            s->seen[id] = s->stamp;
            float *l = &s->c[id].logit;
            *l = *l > 0 ? *l / s->p.repeat_penalty : *l * s->p.repeat_penalty;
        }
    }
    if (s->p.temperature <= 0) {
        int best = 0;
        float top = s->c[0].logit;
        for (int i = 1; i < n; i++) {
            if (s->c[i].logit > top) {
                top = s->c[i].logit;
                best = i;
            }
        }
        s->c[0] = s->c[best];
        s->prob[0] = 1.0f;
        return 1;
    }
    if (s->p.top_k > 0 && s->p.top_k < n) {
        top_k_sorted(s->c, n, s->p.top_k);
        n = s->p.top_k;
    } else {
        qsort(s->c, (size_t)n, sizeof(*s->c), cand_cmp);
    }
    if (s->p.top_p < 1.0f) {
        softmax(s->c, n, s->prob);
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += s->prob[i];
            if (cum >= s->p.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (s->p.min_p > 0) {
        float cut = s->c[0].logit + logf(s->p.min_p);
        int k = 1;
        while (k < n && s->c[k].logit >= cut)
            k++;
        n = k;
    }
    for (int i = 0; i < n; i++)
        s->c[i].logit /= s->p.temperature;
    softmax(s->c, n, s->prob);
    return n;
}

int om_sampler_dist(om_sampler *s, const float *logits, int32_t *ids, float *probs, int max)
{
    if (!s || !logits || max < 0 || (max && (!ids || !probs)))
        return OM_EINVAL;
    int n = chain(s, logits);
    for (int i = 0; i < n && i < max; i++) {
        ids[i] = s->c[i].id;
        probs[i] = s->prob[i];
    }
    return n;
}

int om_sampler_sample(om_sampler *s, const float *logits, int32_t *token)
{
    if (!s || !logits || !token)
        return OM_EINVAL;
    int n = chain(s, logits);
    double u = uniform(s), cum = 0;
    int pick = n - 1;               /* rounding can leave u just above the last sum */
    for (int i = 0; i < n; i++) {
        cum += s->prob[i];
        if (u < cum) {
            pick = i;
            break;
        }
    }
    *token = s->c[pick].id;
    return 0;
}
