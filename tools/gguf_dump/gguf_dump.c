/* omni-gguf-dump: prints a GGUF file's header, its metadata (arrays abridged unless
 * --full) and its tensor table, through the same reader omnid loads models with, so a
 * file it rejects is shown with the reader's error. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "om_err.h"
#include "om_gguf.h"
#include "om_type.h"

/* Prints s quoted, escaping what a terminal should not interpret; at most max bytes. */
static void print_str(om_gguf_str s, uint64_t max)
{
    putchar('"');
    for (uint64_t i = 0; i < s.n && i < max; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            printf("\\n");
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
    if (s.n > max)
        printf("...(%" PRIu64 " bytes)", s.n);
}

static void print_scalar(int type, const uint8_t *p)
{
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; float f32;
            uint64_t u64; int64_t i64; double f64; } v;
    static const size_t size[13] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };
    memcpy(&v, p, size[type]);
    switch (type) {
    case OM_GGUF_U8:   printf("%" PRIu8, v.u8); break;
    case OM_GGUF_I8:   printf("%" PRId8, v.i8); break;
    case OM_GGUF_U16:  printf("%" PRIu16, v.u16); break;
    case OM_GGUF_I16:  printf("%" PRId16, v.i16); break;
    case OM_GGUF_U32:  printf("%" PRIu32, v.u32); break;
    case OM_GGUF_I32:  printf("%" PRId32, v.i32); break;
    case OM_GGUF_F32:  printf("%.9g", v.f32); break;
    case OM_GGUF_BOOL: printf("%s", v.u8 ? "true" : "false"); break;
    case OM_GGUF_U64:  printf("%" PRIu64, v.u64); break;
    case OM_GGUF_I64:  printf("%" PRId64, v.i64); break;
    case OM_GGUF_F64:  printf("%.17g", v.f64); break;
    }
}

static void print_kv(const om_gguf_kv *kv, int full)
{
    static const size_t size[13] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };
    print_str(kv->key, 256);
    if (kv->type == OM_GGUF_STRING) {
        om_gguf_str s;
        memcpy(&s.n, kv->data, 8);
        s.p = (const char *)kv->data + 8;
        printf(" string = ");
        print_str(s, full ? UINT64_MAX : 120);
    } else if (kv->type == OM_GGUF_ARRAY) {
        uint64_t show = full ? kv->arr_n : (kv->arr_n < 6 ? kv->arr_n : 6);
        printf(" array[%s] n=%" PRIu64 " = [", om_gguf_vtype_name(kv->arr_type), kv->arr_n);
        for (uint64_t i = 0; i < show; i++) {
            om_gguf_str s;
            printf(i ? ", " : "");
            if (!om_gguf_arr_str(kv, i, &s))
                print_str(s, 64);
            else
                print_scalar(kv->arr_type, kv->data + i * size[kv->arr_type]);
        }
        printf("%s]", show < kv->arr_n ? ", ..." : "");
    } else {
        printf(" %s = ", om_gguf_vtype_name(kv->type));
        print_scalar(kv->type, kv->data);
    }
    putchar('\n');
}

int main(int argc, char **argv)
{
    int full = argc == 3 && !strcmp(argv[1], "--full");
    if (argc != 2 + full || argv[1 + full][0] == '-') {
        fprintf(stderr, "usage: omni-gguf-dump [--full] FILE.gguf\n");
        return 2;
    }
    const char *path = argv[1 + full];
    om_gguf *g;
    char err[1024];
    int rc = om_gguf_open(&g, path, NULL, err, sizeof err);
    if (rc) {
        fprintf(stderr, "omni-gguf-dump: %s [%s]\n", err, om_errname(rc));
        return 1;
    }
    printf("%s: GGUF v%" PRIu32 ", alignment %" PRIu64 ", %" PRId64 " kv, %" PRId64
           " tensors, data at offset %" PRIu64 "\n", path, om_gguf_version(g), om_gguf_alignment(g),
           om_gguf_n_kv(g), om_gguf_n_tensors(g), om_gguf_data_offset(g));
    for (int64_t i = 0; i < om_gguf_n_kv(g); i++) {
        printf("kv %4" PRId64 ": ", i);
        print_kv(om_gguf_kv_at(g, i), full);
    }
    if (om_gguf_n_tensors(g))
        printf("%6s %-40s %-8s %-28s %12s %12s\n", "#", "name", "type", "ne", "offset", "bytes");
    uint64_t total = 0;
    int foreign = 0;
    for (int64_t i = 0; i < om_gguf_n_tensors(g); i++) {
        const om_gguf_tensor *t = om_gguf_tensor_at(g, i);
        char ne[64];
        int n = 0;
        for (int j = 0; j < t->n_dims; j++)
            n += snprintf(ne + n, sizeof ne - (size_t)n, "%s%" PRId64, j ? " x " : "", t->ne[j]);
        printf("%6" PRId64 " %-40.*s %-7s%s %-28s %12" PRIu64 " %12" PRIu64 "\n", i,
               (int)(t->name.n < 200 ? t->name.n : 200), t->name.p, om_ggml_type_name(t->type),
               om_type_name(t->type) ? " " : "*", ne, t->offset, t->nbytes);
        total += t->nbytes;
        foreign |= !om_type_name(t->type);
    }
    if (om_gguf_n_tensors(g))
        printf("tensor data: %" PRIu64 " bytes%s\n", total,
               foreign ? " (* = a type omnid reads but does not compute)" : "");
    om_gguf_close(g);
    return 0;
}
