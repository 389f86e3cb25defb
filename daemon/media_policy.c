/* media_policy.c: what clients may make the daemon open, shared by every stage that
 * opens media for a request (ingest, llm, vision). */
#include "om_daemon.h"

#include <stdio.h>
#include <string.h>

void om_media_policy_protocols(const om_config *cfg, char *out, size_t outlen)
{
    /* Without local access, "file" leaves the allow-list too, so that a network
     * playlist cannot point FFmpeg at local files. */
    char list[sizeof cfg->media_protocols];
    snprintf(list, sizeof list, "%s", cfg->media_protocols);
    if (outlen)
        out[0] = 0;
    for (char *save = NULL, *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (!cfg->media_local && !strcmp(p, "file"))
            continue;
        size_t n = strlen(out);
        snprintf(out + n, outlen - n, "%s%s", n ? "," : "", p);
    }
}

/* A URL's protocols are bounded by FFmpeg's protocol_whitelist; what has no protocol
 * (a path), or names local things, is refused here. */
int om_media_policy_url_allowed(int local, const char *url)
{
    if (local)
        return 1;
    if (!strstr(url, "://") || !strncmp(url, "file:", 5) || !strncmp(url, "lavfi:", 6) ||
        !strncmp(url, "v4l2:", 5) || !strncmp(url, "/dev/", 5))
        return 0;
    return 1;
}
