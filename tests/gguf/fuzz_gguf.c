/* fuzz_gguf: libFuzzer entry for the GGUF reader (scripts/fuzz.sh, seeds in corpus/).
 * Whatever opens is walked completely, every string and tensor byte range touched, so
 * that an index or bound the reader got wrong shows up under ASan. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "om_gguf.h"
#include "om_type.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    om_gguf *g;
    char err[256];
    om_gguf_limits lim = { .max_string = 1 << 16, .max_array = 1 << 16 };
    if (om_gguf_open_mem(&g, data, size, &lim, err, sizeof err)) {
        if (!err[0] || !memchr(err, 0, sizeof err))
            abort();                                /* every error must say why */
        return 0;
    }
    volatile uint8_t sink = 0;
    for (int64_t i = 0; i < om_gguf_n_kv(g); i++) {
        const om_gguf_kv *kv = om_gguf_kv_at(g, i);
        om_gguf_str s;
        uint32_t u;
        int64_t v;
        float f;
        int b;
        char key[128];
        size_t n = kv->key.n < sizeof key - 1 ? kv->key.n : sizeof key - 1;
        memcpy(key, kv->key.p, n);
        key[n] = 0;
        if (n == kv->key.n && !memchr(key, 0, n) && om_gguf_find_kv(g, key) != kv)
            abort();                                /* lookup must find each whole key */
        om_gguf_get_u32(g, key, &u);
        om_gguf_get_i64(g, key, &v);
        om_gguf_get_f32(g, key, &f);
        om_gguf_get_bool(g, key, &b);
        if (!om_gguf_get_str(g, key, &s) && s.n)
            sink ^= (uint8_t)s.p[s.n - 1];
        if (kv->type != OM_GGUF_ARRAY)
            continue;
        for (uint64_t j = 0; j < kv->arr_n; j++) {
            int32_t iv;
            if (!om_gguf_arr_str(kv, j, &s) && s.n)
                sink ^= (uint8_t)s.p[0] ^ (uint8_t)s.p[s.n - 1];
            om_gguf_arr_f32(kv, j, &f);
            om_gguf_arr_i32(kv, j, &iv);
        }
    }
    for (int64_t i = 0; i < om_gguf_n_tensors(g); i++) {
        const om_gguf_tensor *t = om_gguf_tensor_at(g, i);
        const uint8_t *p = t->data;
        if (p < data || p + t->nbytes > data + size || t->offset % om_gguf_alignment(g))
            abort();
        sink ^= p[0] ^ p[t->nbytes - 1];
        if (om_type_name(t->type) && t->nbytes <= 4096 && t->ne[0] % om_type_block(t->type) == 0) {
            int64_t n = (int64_t)(t->nbytes / om_type_block_bytes(t->type)) * om_type_block(t->type);
            float *out = malloc((size_t)n * sizeof *out);
            if (out && om_dequantize(t->type, p, out, n))
                abort();
            free(out);
        }
    }
    (void)sink;
    om_gguf_close(g);
    return 0;
}
