/* om_npy.h: NumPy .npy files (format 1.0/2.0, C order, little-endian <f4 <f2 <i4),
 * the exchange format of golden files and of omni-run's --input/--output/--dump-logits.
 * Reading validates the header (magic, length, dict keys, shape) and that the data
 * size matches the shape; a bad file gives OM_EFORMAT and a message. */
#ifndef OM_NPY_H
#define OM_NPY_H

#include <stddef.h>
#include <stdint.h>

enum om_npy_dtype { OM_NPY_F32, OM_NPY_F16, OM_NPY_I32 };

typedef struct om_npy {
    int      dtype;              /* enum om_npy_dtype */
    int      ndim;               /* 0..8 */
    int64_t  shape[8];
    int64_t  n;                  /* product of shape */
    void    *data;               /* n elements, owned (free with om_npy_free) */
} om_npy;

int  om_npy_read(const char *path, om_npy *out, char *err, size_t errlen);
void om_npy_free(om_npy *a);
/* Writes n = prod(shape) elements of dtype from data. */
int  om_npy_write(const char *path, int dtype, int ndim, const int64_t *shape, const void *data);

#endif
