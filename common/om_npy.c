#include "om_npy.h"
#include "om_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds: a golden file or an omni-run input is small; 2^31 elements is a clear refusal. */
#define OM_NPY_MAX_ELEMS (1LL << 31)
#define OM_NPY_MAX_HEADER 65536u

static const struct { const char *descr; int dtype; int size; } om_npy_types[] = {
    { "<f4", OM_NPY_F32, 4 }, { "<f2", OM_NPY_F16, 2 }, { "<i4", OM_NPY_I32, 4 },
};

static int dtype_size(int dtype)
{
    for (unsigned i = 0; i < sizeof om_npy_types / sizeof om_npy_types[0]; i++)
        if (om_npy_types[i].dtype == dtype)
            return om_npy_types[i].size;
    return 0;
}

static int fail(char *err, size_t errlen, int code, const char *path, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: %s", path, what);
    return code;
}

/* Finds the value text after 'key': in the header dict. */
static const char *dict_value(const char *hdr, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s':", key);
    const char *p = strstr(hdr, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    return p;
}

static int parse_header(const char *hdr, om_npy *a)
{
    const char *d = dict_value(hdr, "descr");
    if (!d || *d != '\'')
        return -1;
    a->dtype = -1;
    for (unsigned i = 0; i < sizeof om_npy_types / sizeof om_npy_types[0]; i++) {
        size_t l = strlen(om_npy_types[i].descr);
        if (!strncmp(d + 1, om_npy_types[i].descr, l) && d[1 + l] == '\'')
            a->dtype = om_npy_types[i].dtype;
    }
    if (a->dtype < 0)
        return -2;
    const char *f = dict_value(hdr, "fortran_order");
    if (!f || strncmp(f, "False", 5))
        return -3;
    const char *s = dict_value(hdr, "shape");
    if (!s || *s != '(')
        return -4;
    s++;
    a->ndim = 0;
    a->n = 1;
    for (;;) {
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == ')')
            break;
        if (*s < '0' || *s > '9' || a->ndim == 8)
            return -4;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (v < 0 || v > OM_NPY_MAX_ELEMS || (v && a->n > OM_NPY_MAX_ELEMS / v))
            return -5;
        a->shape[a->ndim++] = v;
        a->n *= v;
        s = end;
    }
    return 0;
}

int om_npy_read(const char *path, om_npy *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return fail(err, errlen, OM_ENOENT, path, "cannot open");
    unsigned char pre[10];
    int rc = OM_EFORMAT;
    char *hdr = NULL;
    if (fread(pre, 1, 8, fp) != 8 || memcmp(pre, "\x93NUMPY", 6)) {
        rc = fail(err, errlen, OM_EFORMAT, path, "not a .npy file (bad magic)");
        goto out;
    }
    uint32_t hlen;
    if (pre[6] == 1) {
        if (fread(pre + 8, 1, 2, fp) != 2)
            goto trunc;
        hlen = pre[8] | (uint32_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        unsigned char l[4];
        if (fread(l, 1, 4, fp) != 4)
            goto trunc;
        hlen = l[0] | (uint32_t)l[1] << 8 | (uint32_t)l[2] << 16 | (uint32_t)l[3] << 24;
    } else {
        rc = fail(err, errlen, OM_EFORMAT, path, "unsupported .npy version");
        goto out;
    }
    if (hlen > OM_NPY_MAX_HEADER) {
        rc = fail(err, errlen, OM_ERANGE, path, "header too long");
        goto out;
    }
    hdr = malloc(hlen + 1);
    if (!hdr) {
        rc = OM_ENOMEM;
        goto out;
    }
    if (fread(hdr, 1, hlen, fp) != hlen)
        goto trunc;
    hdr[hlen] = 0;
    switch (parse_header(hdr, out)) {
    case 0: break;
    case -2: rc = fail(err, errlen, OM_EUNSUPPORTED, path, "dtype is not <f4, <f2 or <i4"); goto out;
    case -3: rc = fail(err, errlen, OM_EUNSUPPORTED, path, "fortran_order arrays are not supported"); goto out;
    case -5: rc = fail(err, errlen, OM_ERANGE, path, "shape too large"); goto out;
    default: rc = fail(err, errlen, OM_EFORMAT, path, "malformed header dict"); goto out;
    }
    size_t bytes = (size_t)out->n * dtype_size(out->dtype);
    out->data = malloc(bytes ? bytes : 1);
    if (!out->data) {
        rc = OM_ENOMEM;
        goto out;
    }
    if (fread(out->data, 1, bytes, fp) != bytes)
        goto trunc;
    if (fgetc(fp) != EOF) {
        rc = fail(err, errlen, OM_EFORMAT, path, "trailing bytes after the array data");
        goto out;
    }
    rc = OM_OK;
    goto out;
trunc:
    rc = fail(err, errlen, OM_EFORMAT, path, "truncated");
out:
    free(hdr);
    fclose(fp);
    if (rc != OM_OK)
        om_npy_free(out);
    return rc;
}

void om_npy_free(om_npy *a)
{
    free(a->data);
    a->data = NULL;
}

int om_npy_write(const char *path, int dtype, int ndim, const int64_t *shape, const void *data)
{
    int size = dtype_size(dtype);
    if (!size || ndim < 0 || ndim > 8)
        return OM_EINVAL;
    const char *descr = NULL;
    for (unsigned i = 0; i < sizeof om_npy_types / sizeof om_npy_types[0]; i++)
        if (om_npy_types[i].dtype == dtype)
            descr = om_npy_types[i].descr;
    char dict[256];
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        len += snprintf(dict + len, sizeof dict - len, "%lld,%s", (long long)shape[i],
                        i + 1 < ndim ? " " : "");
        n *= shape[i];
    }
    len += snprintf(dict + len, sizeof dict - len, "), }");
    /* The header (10 bytes + dict + padding + '\n') is padded to a multiple of 64. */
    int total = (10 + len + 1 + 63) / 64 * 64;
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return OM_EIO;
    unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                              (unsigned char)((total - 10) & 0xff), (unsigned char)((total - 10) >> 8) };
    int ok = fwrite(pre, 1, 10, fp) == 10 && fwrite(dict, 1, len, fp) == (size_t)len;
    for (int i = 10 + len; ok && i < total - 1; i++)
        ok = fputc(' ', fp) != EOF;
    ok = ok && fputc('\n', fp) != EOF;
    ok = ok && fwrite(data, size, (size_t)n, fp) == (size_t)n;
    ok = (fclose(fp) == 0) && ok;
    return ok ? OM_OK : OM_EIO;
}
