/* omni-run for the non-LLM components (ViTs, Q-Formers, bind heads):
 *   omni-run COMPONENT.gguf --input IN.npy [--input2 IN2.npy] [--output OUT.npy] [--output-hidden H.npy]
 *   omni-run COMPONENT.gguf --image FILE [--output OUT.npy] [--output-hidden H.npy]
 * What the inputs and outputs are depends on general.architecture:
 *   clip-vision    IN [B,3,S,S] normalised pixels -> OUT [B,E] embedding (projected, else pooled),
 *                  H [B,T,D] last hidden state
 *   blip2          IN pixels -> ViT -> Q-Former -> OUT [B,Q,W] language projection, H [B,Q,D] Q-Former output
 *   qformer        IN [B,N,W] encoder states, IN2 [Q,D] query embeddings (default: the learned ones)
 *                  -> OUT [B,Q,W] (projected when the file has bind.llm_proj, else = H), H [B,Q,D]
 *   video-qformer  IN [T,N,W] per-frame query outputs of one video -> OUT [Q,W] (or [Q,D]), H [Q,D]
 *   imagebind      IN pixels -> ViT -> head -> OUT [B,E] L2-normalised joint embedding, H [B,T,D] trunk output
 *   bind           IN [B,T,D] (or [B,D]) -> OUT [B,E] joint embedding; with no head, IN [N,d] -> OUT [N,W]
 * --image decodes one picture with FFmpeg and preprocesses it as the ViT's metadata says.
 * Without --output a one-line summary of the result is printed. */
#include "om_bind.h"
#include "om_err.h"
#include "om_gguf.h"
#include "om_gpu.h"
#include "om_media.h"
#include "om_npy.h"
#include "om_qformer.h"
#include "om_vit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni_run.h"

#define MAX_ITEMS 4096

typedef struct comp_args {
    const char *model, *input, *input2, *image, *output, *hidden;
    int verbose;
} comp_args;

typedef struct comp {
    om_gpu *gpu;
    om_vit *vit;
    om_qformer *qf;
    om_bind *bind;
    om_npy in, in2;
    float *pix;                     /* --image's preprocessed pixels */
    float *out, *hid;
    int64_t out_shape[3], hid_shape[3];
    int out_nd, hid_nd;
    int has_proj;                   /* the file has bind.llm_proj (a language projection) */
} comp;

int omni_run_is_component(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--input") || !strcmp(argv[i], "--image"))
            return 1;
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: omni-run COMPONENT.gguf (--input IN.npy [--input2 IN2.npy] | --image FILE)\n"
                    "       [--output OUT.npy] [--output-hidden HIDDEN.npy] [-v]\n");
    return 2;
}

static int parse(int argc, char **argv, comp_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **dst = !strcmp(o, "--input") ? &a->input : !strcmp(o, "--input2") ? &a->input2
                         : !strcmp(o, "--image") ? &a->image : !strcmp(o, "--output") ? &a->output
                         : !strcmp(o, "--output-hidden") ? &a->hidden : NULL;
        if (dst) {
            if (!v) {
                fprintf(stderr, "omni-run: %s needs a value\n", o);
                return -1;
            }
            *dst = v;
            i++;
        } else if (!strcmp(o, "-v")) {
            a->verbose = 1;
        } else if (o[0] == '-') {
            fprintf(stderr, "omni-run: unknown option %s for a component model\n", o);
            return -1;
        } else if (!a->model) {
            a->model = o;
        } else {
            fprintf(stderr, "omni-run: unexpected argument %s\n", o);
            return -1;
        }
    }
    if (!a->model || !a->input == !a->image)
        return -1;
    return 0;
}

static int read_npy(const char *what, const char *path, om_npy *a)
{
    char err[256];
    if (om_npy_read(path, a, err, sizeof err)) {
        fprintf(stderr, "omni-run: %s %s: %s\n", what, path, err);
        return -1;
    }
    if (a->dtype != OM_NPY_F32) {
        fprintf(stderr, "omni-run: %s %s must be float32\n", what, path);
        return -1;
    }
    return 0;
}

/* Checks dims 1.. of an input against want (0: any, up to limit), and dim 0 against 1..MAX_ITEMS. */
static int check_shape(const char *what, const om_npy *a, int nd, const int64_t *want)
{
    int ok = a->ndim == nd && a->shape[0] >= 1 && a->shape[0] <= MAX_ITEMS;
    for (int i = 1; ok && i < nd; i++)
        ok = want[i] ? a->shape[i] == want[i] : a->shape[i] >= 1 && a->shape[i] <= 65535;
    if (ok)
        return 0;
    fprintf(stderr, "omni-run: %s has shape [", what);
    for (int i = 0; i < a->ndim; i++)
        fprintf(stderr, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
    fprintf(stderr, "], expected [1..%d", MAX_ITEMS);
    for (int i = 1; i < nd; i++)
        fprintf(stderr, want[i] ? ", %lld" : ", N", (long long)want[i]);
    fprintf(stderr, "]\n");
    return -1;
}

static int set_out(comp *c, int hidden, int nd, int64_t d0, int64_t d1, int64_t d2)
{
    int64_t *s = hidden ? c->hid_shape : c->out_shape;
    s[0] = d0;
    s[1] = d1;
    s[2] = d2;
    int64_t n = d0 * d1 * (nd > 2 ? d2 : 1);
    float *p = malloc((size_t)n * sizeof *p);
    if (!p)
        return OM_ENOMEM;
    if (hidden) {
        c->hid_nd = nd;
        c->hid = p;
    } else {
        c->out_nd = nd;
        c->out = p;
    }
    return 0;
}

static int load_image(comp *c, const char *path)
{
    om_media *m;
    char err[512];
    om_media_frame f = { 0 };
    int rc = om_media_open(&m, path, NULL, err, sizeof err);
    if (rc) {
        fprintf(stderr, "omni-run: %s\n", err);
        return rc;
    }
    rc = om_media_read_video(m, NULL, &f);
    if (rc) {
        fprintf(stderr, "omni-run: %s: %s\n", path, rc == OM_MEDIA_EOF ? "no picture" : om_media_last_error(m));
        om_media_close(m);
        return rc == OM_MEDIA_EOF ? OM_EMEDIA : rc;
    }
    const om_vit_hparams *hp = om_vit_get_hparams(c->vit);
    c->pix = malloc((size_t)3 * hp->image_size * hp->image_size * sizeof *c->pix);
    rc = c->pix ? om_vit_preprocess(c->vit, f.rgb, f.width, f.height, f.width * 3, c->pix) : OM_ENOMEM;
    if (rc)
        fprintf(stderr, "omni-run: %s: %s\n", path, om_vit_last_error(c->vit));
    om_media_frame_free(&f);
    om_media_close(m);
    return rc;
}

/* clip-vision, blip2, imagebind: pixels from --input or --image through the ViT. With
 * features_only the last hidden state replaces c->in for the stage that follows. */
static int run_vit(comp *c, const comp_args *a, int features_only)
{
    char err[1024];
    int rc = om_vit_open(&c->vit, c->gpu, a->model, NULL, err, sizeof err);
    if (rc) {
        fprintf(stderr, "omni-run: %s\n", err);
        return rc;
    }
    const om_vit_hparams *hp = om_vit_get_hparams(c->vit);
    const float *pix;
    int B = 1;
    if (a->image) {
        if ((rc = load_image(c, a->image)))
            return rc;
        pix = c->pix;
    } else {
        const int64_t want[4] = { 0, 3, hp->image_size, hp->image_size };
        if (check_shape("--input", &c->in, 4, want))
            return OM_EINVAL;
        pix = c->in.data;
        B = (int)c->in.shape[0];
    }
    if (!features_only) {
        if ((rc = set_out(c, 0, 2, B, hp->out_dim, 1)) || (a->hidden && (rc = set_out(c, 1, 3, B, hp->n_tok, hp->n_embd))))
            return rc;
        if ((rc = om_vit_encode(c->vit, pix, B, c->out, c->hid)))
            fprintf(stderr, "omni-run: %s\n", om_vit_last_error(c->vit));
        return rc;
    }
    float *feat = malloc((size_t)B * hp->n_tok * hp->n_embd * sizeof *feat);
    if (!feat)
        return OM_ENOMEM;
    if ((rc = om_vit_encode(c->vit, pix, B, NULL, feat))) {
        fprintf(stderr, "omni-run: %s\n", om_vit_last_error(c->vit));
        free(feat);
        return rc;
    }
    om_npy_free(&c->in);
    c->in = (om_npy){ .dtype = OM_NPY_F32, .ndim = 3, .shape = { B, hp->n_tok, hp->n_embd },
                      .n = (int64_t)B * hp->n_tok * hp->n_embd, .data = feat };
    return 0;
}

static int run_qformer(comp *c, const comp_args *a, int video)
{
    char err[1024];
    int rc = om_qformer_open(&c->qf, c->gpu, a->model, NULL, err, sizeof err);
    if (rc) {
        fprintf(stderr, "omni-run: %s\n", err);
        return rc;
    }
    const om_qformer_hparams *hp = om_qformer_get_hparams(c->qf);
    const int64_t want[3] = { 0, 0, hp->encoder_width };
    if (check_shape("the encoder states", &c->in, 3, want))
        return OM_EINVAL;
    const float *query = NULL;
    if (a->input2 && video) {
        fprintf(stderr, "omni-run: the video Q-Former uses its learned queries; --input2 is for qformer and blip2\n");
        return OM_EINVAL;
    }
    if (a->input2) {
        if (c->in2.ndim != 2 || c->in2.shape[0] != hp->n_query || c->in2.shape[1] != hp->n_embd) {
            fprintf(stderr, "omni-run: --input2 must be query embeddings [%d, %d]\n", hp->n_query, hp->n_embd);
            return OM_EINVAL;
        }
        query = c->in2.data;
    }
    int B = video ? 1 : (int)c->in.shape[0], N = (int)c->in.shape[1];
    if ((rc = set_out(c, 1, video ? 2 : 3, video ? hp->n_query : B, video ? hp->n_embd : hp->n_query, hp->n_embd)))
        return rc;
    if (video)
        rc = om_qformer_encode_video(c->qf, c->in.data, (int)c->in.shape[0], N, c->hid);
    else
        rc = om_qformer_encode(c->qf, c->in.data, B, N, query, c->hid);
    if (rc) {
        fprintf(stderr, "omni-run: %s\n", om_qformer_last_error(c->qf));
        return rc;
    }
    size_t hbytes = (size_t)B * hp->n_query * hp->n_embd * sizeof(float);
    if (!c->has_proj) {
        /* No language projection in the file: the output is the last hidden state. */
        if ((rc = set_out(c, 0, c->hid_nd, c->hid_shape[0], c->hid_shape[1], c->hid_shape[2])))
            return rc;
        memcpy(c->out, c->hid, hbytes);
        return 0;
    }
    if ((rc = om_bind_open(&c->bind, c->gpu, a->model, B * hp->n_query, err, sizeof err))) {
        fprintf(stderr, "omni-run: %s\n", err);
        return rc;
    }
    const int W = om_bind_get_hparams(c->bind)->llm_width;
    if (video)
        rc = set_out(c, 0, 2, hp->n_query, W, 1);
    else
        rc = set_out(c, 0, 3, B, hp->n_query, W);
    if (rc)
        return rc;
    if ((rc = om_bind_project(c->bind, c->hid, B * hp->n_query, c->out)))
        fprintf(stderr, "omni-run: %s\n", om_bind_last_error(c->bind));
    return rc;
}

static int run_bind(comp *c, const comp_args *a)
{
    char err[1024];
    int rows = c->in.ndim >= 1 && c->in.shape[0] >= 1 && c->in.shape[0] <= MAX_ITEMS ? (int)c->in.shape[0] : 1;
    int rc = om_bind_open(&c->bind, c->gpu, a->model, rows, err, sizeof err);
    if (rc) {
        fprintf(stderr, "omni-run: %s\n", err);
        return rc;
    }
    const om_bind_hparams *hp = om_bind_get_hparams(c->bind);
    if (a->hidden) {
        fprintf(stderr, "omni-run: a bind model has no hidden state (--output-hidden)\n");
        return OM_EINVAL;
    }
    int nd = c->in.ndim, d = hp->has_head ? hp->n_embd : hp->proj_in;
    int64_t want[3] = { 0, nd == 3 ? 0 : d, d };
    if ((nd != 2 && nd != 3) || (!hp->has_head && nd != 2) || check_shape("--input", &c->in, nd, want))
        return OM_EINVAL;
    int n = (int)c->in.shape[0];
    if (hp->has_head) {
        if ((rc = set_out(c, 0, 2, n, hp->joint_dim, 1)))
            return rc;
        rc = om_bind_head(c->bind, c->in.data, n, nd == 3 ? (int)c->in.shape[1] : 1, c->out);
    } else {
        if ((rc = set_out(c, 0, 2, n, hp->llm_width, 1)))
            return rc;
        rc = om_bind_project(c->bind, c->in.data, n, c->out);
    }
    if (rc)
        fprintf(stderr, "omni-run: %s\n", om_bind_last_error(c->bind));
    return rc;
}

/* imagebind: the ViT's hidden state (now in c->in) through the file's bind head. */
static int run_imagebind(comp *c, const comp_args *a)
{
    char err[1024];
    int B = (int)c->in.shape[0], T = (int)c->in.shape[1], rc;
    if ((rc = om_bind_open(&c->bind, c->gpu, a->model, B, err, sizeof err))) {
        fprintf(stderr, "omni-run: %s\n", err);
        return rc;
    }
    const om_bind_hparams *hp = om_bind_get_hparams(c->bind);
    if (!hp->has_head || hp->n_embd != c->in.shape[2]) {
        fprintf(stderr, "omni-run: %s has no bind head for its ViT's width\n", a->model);
        return OM_EFORMAT;
    }
    if ((rc = set_out(c, 0, 2, B, hp->joint_dim, 1)) ||
        (a->hidden && (rc = set_out(c, 1, 3, B, T, c->in.shape[2]))))
        return rc;
    if (a->hidden)
        memcpy(c->hid, c->in.data, (size_t)c->in.n * sizeof(float));
    if ((rc = om_bind_head(c->bind, c->in.data, B, T, c->out)))
        fprintf(stderr, "omni-run: %s\n", om_bind_last_error(c->bind));
    return rc;
}

static int write_or_print(const char *what, const char *path, const float *p, int nd, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    if (path) {
        int rc = om_npy_write(path, OM_NPY_F32, nd, shape, p);
        if (rc)
            fprintf(stderr, "omni-run: writing %s: %s\n", path, om_strerror(rc));
        return rc;
    }
    double s2 = 0;
    for (int64_t i = 0; i < n; i++)
        s2 += (double)p[i] * p[i];
    printf("%s [", what);
    for (int i = 0; i < nd; i++)
        printf("%s%lld", i ? ", " : "", (long long)shape[i]);
    printf("] rms %.6g first", sqrt(s2 / (double)n));
    for (int64_t i = 0; i < n && i < 6; i++)
        printf(" %.6g", p[i]);
    printf("\n");
    return 0;
}

static int arch_of(const char *path, char *arch, size_t n, int *has_proj)
{
    om_gguf *g;
    char err[512];
    om_gguf_str s;
    if (om_gguf_open(&g, path, NULL, err, sizeof err)) {
        fprintf(stderr, "omni-run: %s\n", err);
        return -1;
    }
    int rc = om_gguf_get_str(g, "general.architecture", &s);
    if (!rc)
        snprintf(arch, n, "%.*s", (int)(s.n < n - 1 ? s.n : n - 1), s.p);
    *has_proj = om_gguf_find_tensor(g, "bind.llm_proj.weight") != NULL;
    om_gguf_close(g);
    if (rc)
        fprintf(stderr, "omni-run: %s has no general.architecture\n", path);
    return rc ? -1 : 0;
}

int omni_run_component(int argc, char **argv)
{
    comp_args a = { 0 };
    comp c = { 0 };
    char arch[64], err[512];
    int status = 1, rc;
    if (parse(argc, argv, &a))
        return usage();
    if (arch_of(a.model, arch, sizeof arch, &c.has_proj))
        return 1;
    int is_vit = !strcmp(arch, "clip-vision"), is_blip2 = !strcmp(arch, "blip2"), is_ib = !strcmp(arch, "imagebind");
    int is_qf = !strcmp(arch, "qformer"), is_vqf = !strcmp(arch, "video-qformer"), is_bind = !strcmp(arch, "bind");
    if (!is_vit && !is_blip2 && !is_ib && !is_qf && !is_vqf && !is_bind) {
        fprintf(stderr, "omni-run: %s: architecture '%s' is not a component omni-run knows (clip-vision, blip2, "
                        "imagebind, qformer, video-qformer, bind)\n", a.model, arch);
        return 1;
    }
    if (a.image && !is_vit && !is_blip2 && !is_ib) {
        fprintf(stderr, "omni-run: --image needs a ViT model (clip-vision, blip2 or imagebind), not %s\n", arch);
        return 2;
    }
    if ((a.input && read_npy("--input", a.input, &c.in)) || (a.input2 && read_npy("--input2", a.input2, &c.in2)))
        goto out;
    om_gpu_opts go = { .quiet = !a.verbose };
    if (om_gpu_open(&c.gpu, &go, err, sizeof err)) {
        fprintf(stderr, "omni-run: %s\n", err);
        goto out;
    }
    if (is_vit)
        rc = run_vit(&c, &a, 0);
    else if (is_blip2)
        rc = run_vit(&c, &a, 1) || run_qformer(&c, &a, 0);
    else if (is_ib)
        rc = run_vit(&c, &a, 1) || run_imagebind(&c, &a);
    else if (is_qf || is_vqf)
        rc = run_qformer(&c, &a, is_vqf);
    else
        rc = run_bind(&c, &a);
    if (rc)
        goto out;
    if (write_or_print("output", a.output, c.out, c.out_nd, c.out_shape) ||
        (a.hidden && write_or_print("hidden", a.hidden, c.hid, c.hid_nd, c.hid_shape)))
        goto out;
    status = 0;
out:
    om_bind_close(c.bind);
    om_qformer_close(c.qf);
    om_vit_close(c.vit);
    om_gpu_close(c.gpu);
    om_npy_free(&c.in);
    om_npy_free(&c.in2);
    free(c.pix);
    free(c.out);
    free(c.hid);
    return status;
}
