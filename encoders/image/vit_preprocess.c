/* RGB24 -> the ViT's normalised input: bicubic resize with libswscale (shortest side
 * then centre crop for CLIP, both sides for BLIP-2, MODELS.md §8.1), then per-channel
 * (x/255 - mean) / std into planar [3, S, S]. */
#include "vit_internal.h"
#include "om_err.h"

#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>
#include <stdlib.h>

#define MAX_SIDE 16384
#define MAX_ASPECT 64                   /* a 16384x1 strip scaled to a 224-pixel short side would be 3.7G */

static int resize(om_vit *m, const uint8_t *rgb, int w, int h, int stride, int nw, int nh, uint8_t *dst)
{
    struct SwsContext *sws = sws_getContext(w, h, AV_PIX_FMT_RGB24, nw, nh, AV_PIX_FMT_RGB24,
                                            SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
    if (!sws)
        return om_wset_fail(&m->w, OM_EMEDIA, "preprocess: libswscale cannot scale %dx%d to %dx%d", w, h, nw, nh);
    const uint8_t *src[4] = { rgb, NULL, NULL, NULL };
    const int sstride[4] = { stride, 0, 0, 0 };
    uint8_t *d[4] = { dst, NULL, NULL, NULL };
    const int dstride[4] = { nw * 3, 0, 0, 0 };
    int rows = sws_scale(sws, src, sstride, 0, h, d, dstride);
    sws_freeContext(sws);
    if (rows != nh)
        return om_wset_fail(&m->w, OM_EMEDIA, "preprocess: libswscale wrote %d of %d rows", rows, nh);
    return 0;
}

int om_vit_preprocess(om_vit *m, const uint8_t *rgb, int width, int height, int stride, float *out)
{
    const om_vit_hparams *hp = &m->hp;
    const int S = hp->image_size;
    if (!rgb || !out || width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE || stride < 3 * width)
        return om_wset_fail(&m->w, OM_EINVAL, "preprocess: image %dx%d (stride %d) is empty, larger than %d or "
                            "has a stride below 3*width", width, height, stride, MAX_SIDE);
    int nw = S, nh = S;
    if (hp->resize == OM_VIT_RESIZE_CROP) {
        /* Shortest side to S; the other keeps the aspect ratio, truncated as torchvision's
         * Resize and HF's CLIPImageProcessor do. */
        if (width <= height)
            nh = (int)((int64_t)height * S / width);
        else
            nw = (int)((int64_t)width * S / height);
        nw = nw < S ? S : nw;
        nh = nh < S ? S : nh;
        if (nw > MAX_ASPECT * S || nh > MAX_ASPECT * S)
            return om_wset_fail(&m->w, OM_ERANGE, "preprocess: image %dx%d has an aspect ratio above %d:1", width,
                                height, MAX_ASPECT);
    }
    const uint8_t *src = rgb;
    int sstride = stride;
    uint8_t *scaled = NULL;
    if (nw != width || nh != height) {
        scaled = malloc((size_t)nw * nh * 3);
        if (!scaled)
            return om_wset_fail(&m->w, OM_ENOMEM, "out of memory");
        int rc = resize(m, rgb, width, height, stride, nw, nh, scaled);
        if (rc) {
            free(scaled);
            return rc;
        }
        src = scaled;
        sstride = nw * 3;
    }
    const int x0 = (nw - S) / 2, y0 = (nh - S) / 2;
    for (int c = 0; c < 3; c++) {
        const float mean = hp->mean[c], inv = 1.0f / hp->std[c];
        float *o = out + (size_t)c * S * S;
        for (int y = 0; y < S; y++) {
            const uint8_t *row = src + (size_t)(y + y0) * sstride + (size_t)x0 * 3 + c;
            for (int x = 0; x < S; x++)
                o[(size_t)y * S + x] = ((float)row[(size_t)x * 3] / 255.0f - mean) * inv;
        }
    }
    free(scaled);
    return 0;
}
