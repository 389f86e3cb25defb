/* om_ops.h: the op API. Every op records one or more dispatches into an om_cmd; the
 * math runs on the device at om_cmd_submit. Shapes are checked when recording: a
 * mismatch returns OM_EINVAL and om_gpu_last_error() names the op and the shapes.
 *
 * Tensors follow ggml's conventions: ne[0] is the innermost (contiguous) dimension,
 * nb[] are byte strides, a matrix W of N rows of K values has ne = {K, N}.
 * Activations are F32 unless an op says otherwise; weight operands may be F32, F16,
 * Q8_0 or Q4_0 (dequantized inside the kernels). */
#ifndef OM_OPS_H
#define OM_OPS_H

#include "om_gpu.h"
#include "om_type.h"

typedef struct om_tensor {
    om_buf  *buf;
    uint64_t off;          /* byte offset of element 0 in buf */
    int      type;         /* enum om_type */
    int64_t  ne[4];        /* sizes, innermost first; unused dims are 1 */
    uint64_t nb[4];        /* byte strides; for block types nb[0] is the block size */
} om_tensor;

/* A contiguous tensor over buf at off. */
om_tensor om_tensor_make(om_buf *buf, uint64_t off, int type,
                         int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3);
int64_t   om_tensor_nelem(const om_tensor *t);
uint64_t  om_tensor_nbytes(const om_tensor *t);   /* of a contiguous tensor */
int       om_tensor_is_contiguous(const om_tensor *t);
/* Views share the buffer: a sub-range (offsets in elements per dim) and a permutation
 * (axis i of the result is axis perm[i] of t). */
om_tensor om_tensor_view(const om_tensor *t, const int64_t start[4], const int64_t ne[4]);
om_tensor om_tensor_permute(const om_tensor *t, int p0, int p1, int p2, int p3);
/* Allocates a contiguous tensor from an arena. */
int om_tensor_alloc(om_arena *a, int type, int64_t ne0, int64_t ne1, int64_t ne2,
                    int64_t ne3, om_tensor *out);

/* ---- linear algebra ---- */
/* y = x·Wᵀ. w: {K, N} of any weight type; x: {K, M, B2, B3} F32; y: {N, M, B2, B3} F32.
 * w broadcasts over B2/B3 when its ne[2]/ne[3] are 1. M == 1 takes a matrix-vector path. */
int om_op_matmul(om_cmd *c, const om_tensor *y, const om_tensor *x, const om_tensor *w);
/* Rows of a table (any weight type, {K, N}) gathered by I32 ids {M} into F32 {K, M}. */
int om_op_get_rows(om_cmd *c, const om_tensor *dst, const om_tensor *table, const om_tensor *ids);

/* ---- elementwise ---- */
/* dst = a (+|*) b, b broadcast over a (each b.ne[i] divides a.ne[i]). */
int om_op_add(om_cmd *c, const om_tensor *dst, const om_tensor *a, const om_tensor *b);
int om_op_mul(om_cmd *c, const om_tensor *dst, const om_tensor *a, const om_tensor *b);
int om_op_scale(om_cmd *c, const om_tensor *dst, const om_tensor *a, float s);
enum om_unary { OM_UNARY_GELU_ERF, OM_UNARY_GELU_TANH, OM_UNARY_QUICK_GELU, OM_UNARY_SILU };
int om_op_unary(om_cmd *c, const om_tensor *dst, const om_tensor *x, int op);
/* dst = silu(gate) * up. */
int om_op_swiglu(om_cmd *c, const om_tensor *dst, const om_tensor *gate, const om_tensor *up);

/* ---- normalisation ---- */
/* Over ne[0]: x / sqrt(mean(x²) + eps), times w ({ne0}, may be NULL). */
int om_op_rms_norm(om_cmd *c, const om_tensor *dst, const om_tensor *x, const om_tensor *w, float eps);
/* Over ne[0]: (x - mean) / sqrt(var + eps) * w + b (w, b may be NULL). */
int om_op_layer_norm(om_cmd *c, const om_tensor *dst, const om_tensor *x,
                     const om_tensor *w, const om_tensor *b, float eps);
/* x: {W, H, C, N}; groups of C/n_groups channels; w, b: {C} or NULL. */
int om_op_group_norm(om_cmd *c, const om_tensor *dst, const om_tensor *x,
                     const om_tensor *w, const om_tensor *b, int n_groups, float eps);
/* Over ne[0]: softmax(x*scale + mask); mask {ne0, ne1} F32, broadcast over ne[2..3], may be NULL. */
int om_op_softmax(om_cmd *c, const om_tensor *dst, const om_tensor *x, const om_tensor *mask, float scale);

/* ---- attention ---- */
enum om_rope_mode { OM_ROPE_NORM = 0, OM_ROPE_NEOX = 2 };   /* ggml's ids */
/* x: {head_dim, n_head, T}; pos: I32 {T}. Rotates the first n_rot dims of each head:
 * NORM pairs (2i, 2i+1), NEOX pairs (i, i + n_rot/2); theta_i = pos * freq_scale *
 * base^(-2i/n_rot). */
int om_op_rope(om_cmd *c, const om_tensor *dst, const om_tensor *x, const om_tensor *pos,
               int n_rot, float freq_base, float freq_scale, int mode);
/* om_op_rope with llama.cpp's per-pair frequency factors (GGUF rope_freqs.weight):
 * theta_i is divided by freq_factors[i]; freq_factors: F32 {n_rot/2} contiguous, or NULL. */
int om_op_rope_ext(om_cmd *c, const om_tensor *dst, const om_tensor *x, const om_tensor *pos,
                   const om_tensor *freq_factors, int n_rot, float freq_base, float freq_scale,
                   int mode);
/* Fused attention: dst[:, h, i] = softmax(q_i·K_gᵀ·scale + mask_i) · V_g, g = h / (n_head/n_kv).
 * q: {hd, n_head, Tq} F32; k, v: {hd, n_kv, Tk} F32 or F16 (v may have its own hd);
 * dst: {hd_v, n_head, Tq}. causal: query i sees keys j <= i + (Tk - Tq). mask: F32
 * {Tk, Tq} added to the scores, or NULL. Tk may differ from Tq (KV cache, cross-attention). */
int om_op_attention(om_cmd *c, const om_tensor *dst, const om_tensor *q, const om_tensor *k,
                    const om_tensor *v, const om_tensor *mask, float scale, int causal);

/* ---- convolution and layout ---- */
/* x: {W, H, Cin, N}; w: {kW, kH, Cin, Cout} F32 or F16; b: {Cout} or NULL;
 * dst: {Wo, Ho, Cout, N}, Wo = (W + 2*pad - kW)/stride + 1. */
int om_op_conv2d(om_cmd *c, const om_tensor *dst, const om_tensor *x, const om_tensor *w,
                 const om_tensor *b, int stride, int pad);
/* Nearest-neighbour 2x over ne[0] and ne[1]. */
int om_op_upsample2x(om_cmd *c, const om_tensor *dst, const om_tensor *x);
/* dst = a ++ b along dim. */
int om_op_concat(om_cmd *c, const om_tensor *dst, const om_tensor *a, const om_tensor *b, int dim);
/* Elementwise copy between any strided F32/F16 tensors of equal shape: slices,
 * permutes, f32<->f16 conversion. */
int om_op_copy(om_cmd *c, const om_tensor *dst, const om_tensor *src);

/* ---- reductions ---- */
/* dst {1, ne1, ne2, ne3}: mean over ne[0]. */
int om_op_mean(om_cmd *c, const om_tensor *dst, const om_tensor *x);
/* dst I32 {ne1}: index of the largest value of each row (first on ties). */
int om_op_argmax(om_cmd *c, const om_tensor *dst, const om_tensor *x);

#endif
