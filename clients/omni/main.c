/* omni: the command-line client of omnid. `omni [options] COMMAND [options] [args]`. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "omni.h"

static const omni_cmd cmds[] = {
    { "health",  "",                   "check that omnid answers (exit 0 when healthy)", omni_cmd_health },
    { "status",  "",                   "daemon state: endpoints, stages, workers, queues", omni_cmd_status },
    { "metrics", "",                   "request counters and latencies per stage and op", omni_cmd_metrics },
    { "probe",   "[--upload] FILE|URL", "streams, codecs, duration of a media file or URL", omni_cmd_probe },
    { "ask",     "[sampling] [--video|--image F] PROMPT", "one question, answered in the model's chat format", omni_cmd_ask },
    { "generate", "[sampling] PROMPT",  "raw text continuation of PROMPT", omni_cmd_generate },
    { "chat",    "[sampling]",         "interactive dialogue, one line per user turn", omni_cmd_chat },
    { "embed",   "--video|--image FILE [--url] [--out F.npy]", "joint-space vector of a video or image", omni_cmd_embed },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: omni [options] COMMAND [options] [args]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(f, "  %-8s %-20s %s\n", cmds[i].name, cmds[i].args, cmds[i].help);
    fprintf(f, "\nsampling (ask, generate, chat): -n/--max-tokens N, --temp T, --top-k K, --top-p P,\n"
               "  --min-p P, --repeat-penalty R, --seed S, --stop STR (repeatable), --system TEXT\n"
               "media (ask, embed): --video FILE|URL, --image FILE|URL (a file is uploaded, a URL\n"
               "  opened by omnid; --url: a path too), --frames N; embed: --out F.npy, --json\n"
               "\noptions (any command):\n"
               "  -e, --endpoint URL  omnid's front door (default $OMNID_ENDPOINT or %s)\n"
               "  -t, --timeout MS    wait this long for each reply (default %d)\n"
               "      --deadline MS   ask omnid to give up after MS\n"
               "      --server-key F  CURVE: omnid's public key file (default $OMNID_SERVER_KEY)\n"
               "      --key F         CURVE: our secret key file, its public key in omnid's\n"
               "                      allow list (default $OMNID_KEY)\n"
               "  -j, --json          one JSON object per reply on stdout\n"
               "  -h, --help          this help\n"
               "\nexit status: 0 done, 1 omnid answered with an error, 2 no answer in time,\n"
               "3 malformed reply, 64 bad usage\n",
            OM_PROTO_ENDPOINT_REQ, OMNI_DEFAULT_TIMEOUT_MS);
}

static const omni_cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmds[i].name, name))
            return &cmds[i];
    return NULL;
}

static void usage_cmd(const omni_cmd *cmd, FILE *f)
{
    fprintf(f, "usage: omni %s [options] %s\n  %s\n(omni --help lists the options every command takes)\n",
            cmd->name, cmd->args, cmd->help);
}

static int parse_ms(const char *arg, const char *what, long min, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || *end || end == arg || v < min || v > 24L * 3600 * 1000) {
        fprintf(stderr, "omni: %s: '%s' is not a number of milliseconds\n", what, arg);
        return OMNI_EUSAGE;
    }
    *out = v;
    return 0;
}

int omni_common_opt(omni_ctx *c, int opt, const char *arg)
{
    long v;
    switch (opt) {
    case 'e':
        c->endpoint = arg;
        return 0;
    case 't':
        if (parse_ms(arg, "--timeout", 1, &v))
            return OMNI_EUSAGE;
        c->timeout_ms = (int)v;
        return 0;
    case 'D':
        if (parse_ms(arg, "--deadline", 1, &v))
            return OMNI_EUSAGE;
        c->deadline_ms = (uint64_t)v;
        return 0;
    case 'S':
        c->server_key = arg;
        return 0;
    case 'K':
        c->client_key = arg;
        return 0;
    case 'j':
        c->json = true;
        return 0;
    case 'h':
        return -1;
    }
    return OMNI_EUSAGE;    /* getopt already printed what was wrong */
}

int omni_parse(omni_ctx *c, int argc, char **argv, const char *shortopts, const struct option *longopts,
               omni_opt_fn own, void *user, int min_args, int max_args)
{
    const omni_cmd *cmd = find_cmd(argv[0]);
    int opt;
    while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        int r = omni_common_opt(c, opt, optarg);
        if (r == OMNI_EUSAGE && own && opt != '?')
            r = own(c, opt, optarg, user);
        if (r < 0) {
            usage_cmd(cmd, stdout);
            return -1;
        }
        if (r) {
            usage_cmd(cmd, stderr);
            return r;
        }
    }
    int n = argc - optind;
    if (n < min_args || n > max_args) {
        fprintf(stderr, "omni %s: expected %s\n", cmd->name, *cmd->args ? cmd->args : "no arguments");
        usage_cmd(cmd, stderr);
        return OMNI_EUSAGE;
    }
    return 0;
}

int main(int argc, char **argv)
{
    omni_ctx c = {
        .endpoint = getenv("OMNID_ENDPOINT"),
        .timeout_ms = OMNI_DEFAULT_TIMEOUT_MS,
        .tty = isatty(STDOUT_FILENO),
    };
    if (!c.endpoint || !*c.endpoint)
        c.endpoint = OM_PROTO_ENDPOINT_REQ;
    c.server_key = getenv("OMNID_SERVER_KEY");
    c.client_key = getenv("OMNID_KEY");
    om_proto_limits_default(&c.lim);

    static const struct option longopts[] = { OMNI_COMMON_LONGOPTS, { 0 } };
    int opt;
    while ((opt = getopt_long(argc, argv, "+" OMNI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        int r = omni_common_opt(&c, opt, optarg);
        if (r < 0) {
            usage(stdout);
            return 0;
        }
        if (r) {
            usage(stderr);
            return r;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return OMNI_EUSAGE;
    }
    const omni_cmd *cmd = find_cmd(argv[optind]);
    if (!cmd) {
        fprintf(stderr, "omni: unknown command '%s'\n", argv[optind]);
        usage(stderr);
        return OMNI_EUSAGE;
    }
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    optind = 0;                              /* glibc: restart getopt for the command */
    int ret = cmd->run(&c, sub_argc, sub_argv);
    omni_disconnect(&c);
    return ret;
}
