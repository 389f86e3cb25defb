/* om_gguf.h: GGUF files (versions 2 and 3), read by mmap and written for tools/tests.
 * The reader validates everything it takes from the file (counts, string lengths,
 * array sizes, tensor dims, types, offsets, alignment) before use: a truncated or
 * hostile file yields OM_EFORMAT/OM_ERANGE and a message naming the field and offset,
 * never an out-of-bounds read. Strings point into the mapping (not NUL-terminated).
 * Valid files we do not read give OM_EUNSUPPORTED: versions other than 2 and 3, big-endian
 * files, arrays of arrays. Tensors of any ggml type are read (om_ggml_type_name); those
 * omnid does not compute have om_type_name(type) == NULL. */
#ifndef OM_GGUF_H
#define OM_GGUF_H

#include <stddef.h>
#include <stdint.h>

enum om_gguf_vtype {
    OM_GGUF_U8 = 0, OM_GGUF_I8 = 1, OM_GGUF_U16 = 2, OM_GGUF_I16 = 3, OM_GGUF_U32 = 4,
    OM_GGUF_I32 = 5, OM_GGUF_F32 = 6, OM_GGUF_BOOL = 7, OM_GGUF_STRING = 8,
    OM_GGUF_ARRAY = 9, OM_GGUF_U64 = 10, OM_GGUF_I64 = 11, OM_GGUF_F64 = 12,
};

typedef struct om_gguf_str { const char *p; uint64_t n; } om_gguf_str;

typedef struct om_gguf_kv {
    om_gguf_str key;
    int type;                       /* enum om_gguf_vtype */
    int arr_type;                   /* element type when type == ARRAY */
    uint64_t arr_n;                 /* element count when type == ARRAY */
    const uint8_t *data;            /* raw value (scalars) or first element (arrays) */
    const uint64_t *str_off;        /* string arrays: element i starts at data + str_off[i]
                                     * (index built by the reader at open); NULL otherwise */
} om_gguf_kv;

typedef struct om_gguf_tensor {
    om_gguf_str name;
    int n_dims;
    int64_t ne[4];                  /* unused dims are 1 */
    int type;                       /* ggml type id (enum om_type) */
    uint64_t offset;                /* from the start of the data section */
    uint64_t nbytes;
    const void *data;               /* into the mapping */
} om_gguf_tensor;

typedef struct om_gguf om_gguf;

/* Limits applied while reading (0 = default). */
typedef struct om_gguf_limits {
    uint64_t max_kv;                /* default 65536 */
    uint64_t max_tensors;           /* default 65536 */
    uint64_t max_string;            /* default 16 MiB */
    uint64_t max_array;             /* default 16M elements */
} om_gguf_limits;

int  om_gguf_open(om_gguf **out, const char *path, const om_gguf_limits *lim, char *err, size_t errlen);
/* Parses an in-memory image (the fuzzer's entry); buf must outlive the handle. */
int  om_gguf_open_mem(om_gguf **out, const void *buf, size_t size, const om_gguf_limits *lim,
                      char *err, size_t errlen);
void om_gguf_close(om_gguf *g);

uint32_t om_gguf_version(const om_gguf *g);
uint64_t om_gguf_alignment(const om_gguf *g);
uint64_t om_gguf_data_offset(const om_gguf *g);  /* file offset of the data section */
const char *om_gguf_vtype_name(int vtype);       /* "u32", "string", ...; NULL if invalid */
int64_t  om_gguf_n_kv(const om_gguf *g);
const om_gguf_kv *om_gguf_kv_at(const om_gguf *g, int64_t i);
const om_gguf_kv *om_gguf_find_kv(const om_gguf *g, const char *key);   /* NULL if absent */
int64_t  om_gguf_n_tensors(const om_gguf *g);
const om_gguf_tensor *om_gguf_tensor_at(const om_gguf *g, int64_t i);
const om_gguf_tensor *om_gguf_find_tensor(const om_gguf *g, const char *name);

/* Typed getters: OM_ENOENT when absent, OM_EFORMAT when of another type (integers
 * convert between widths when the value fits). */
int om_gguf_get_u32(const om_gguf *g, const char *key, uint32_t *v);
int om_gguf_get_i64(const om_gguf *g, const char *key, int64_t *v);
int om_gguf_get_f32(const om_gguf *g, const char *key, float *v);
int om_gguf_get_bool(const om_gguf *g, const char *key, int *v);
int om_gguf_get_str(const om_gguf *g, const char *key, om_gguf_str *v);
/* Array access: the array kv, then elements by index. */
int om_gguf_get_arr(const om_gguf *g, const char *key, const om_gguf_kv **kv);
int om_gguf_arr_str(const om_gguf_kv *kv, uint64_t i, om_gguf_str *v);  /* O(1) after open */
int om_gguf_arr_f32(const om_gguf_kv *kv, uint64_t i, float *v);
int om_gguf_arr_i32(const om_gguf_kv *kv, uint64_t i, int32_t *v);

/* ---- writer (tools and tests) ---- */
typedef struct om_gguf_writer om_gguf_writer;
int  om_gguf_writer_open(om_gguf_writer **out, uint32_t alignment);
void om_gguf_writer_free(om_gguf_writer *w);
int  om_gguf_set_u32(om_gguf_writer *w, const char *key, uint32_t v);
int  om_gguf_set_i32(om_gguf_writer *w, const char *key, int32_t v);
int  om_gguf_set_u64(om_gguf_writer *w, const char *key, uint64_t v);
int  om_gguf_set_f32(om_gguf_writer *w, const char *key, float v);
int  om_gguf_set_bool(om_gguf_writer *w, const char *key, int v);
int  om_gguf_set_str(om_gguf_writer *w, const char *key, const char *v);
/* Any scalar value type (not STRING/ARRAY) from its little-endian bytes at v. */
int  om_gguf_set_val(om_gguf_writer *w, const char *key, int type, const void *v);
/* Arrays of a scalar type (elem_size bytes each) or of NUL-terminated strings. */
int  om_gguf_set_arr(om_gguf_writer *w, const char *key, int elem_type, const void *data, uint64_t n);
int  om_gguf_set_arr_str(om_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
/* Adds a tensor; data (om_row_bytes(type, ne0) * rows bytes) is copied. */
int  om_gguf_add_tensor(om_gguf_writer *w, const char *name, int type, int n_dims,
                        const int64_t *ne, const void *data);
int  om_gguf_write_file(om_gguf_writer *w, const char *path);
/* The same bytes in memory: *buf (malloc'ed, caller frees) of *size bytes. */
int  om_gguf_write_mem(om_gguf_writer *w, void **buf, size_t *size);

#endif
