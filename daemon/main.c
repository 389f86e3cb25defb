/* main.c: the omnid command line. `omnid` runs the broker with every stage
 * embedded; `omnid --stage NAME --connect EP` runs one stage worker as its own
 * process; `omnid --gen-keys DIR` writes a CURVE keypair. */
#include "om_daemon_impl.h"

#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static om_daemon *volatile g_daemon;
static volatile sig_atomic_t g_stop_early;   /* a signal before the daemon was open */

static void on_signal(int sig)
{
    if (g_daemon)
        om_daemon_stop(g_daemon);
    else
        g_stop_early = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
"usage: omnid [options]                      broker + every stage (embedded default)\n"
"       omnid --stage NAME --connect EP      one stage worker as its own process\n"
"       omnid --gen-keys DIR                 write a CURVE keypair (secret.key, public.key)\n"
"\n"
"options:\n"
"  --config FILE          ini file (default /etc/omnid.ini when it exists)\n"
"  --set SECTION.KEY=VAL  override any config key (repeatable), e.g.\n"
"                         --set stage.ingest.workers=2 --set daemon.deadline_ms=5000\n"
"  --front EP             request ROUTER      (daemon.front,   tcp://127.0.0.1:5555)\n"
"  --pub EP               stream XPUB         (daemon.pub,     tcp://127.0.0.1:5556)\n"
"  --sensors EP           sensor SUB          (daemon.sensors, tcp://127.0.0.1:5557)\n"
"  --backend EP           worker ROUTER       (daemon.backend, tcp://127.0.0.1:5560)\n"
"                         a port of * binds a free one\n"
"  --ready-file PATH      write the bound endpoints there once serving\n"
"  --pack DIR             model pack (pack.dir): its pack.ini names the LLM and encoders\n"
"  --enable-test-ops      add the `test` stage (ops sleep, echo) for tests\n"
"  --quiet / --verbose    log warnings and errors only / log debug events\n"
"  --help\n"
"\n"
"Config keys: see docs/DAEMON.md. SIGINT/SIGTERM drain in-flight requests\n"
"(daemon.shutdown_ms) and exit 0.\n");
}

enum { O_CONFIG = 256, O_SET, O_FRONT, O_PUB, O_SENSORS, O_BACKEND, O_READY, O_TEST, O_QUIET,
       O_VERBOSE, O_STAGE, O_CONNECT, O_GENKEYS, O_HELP, O_PACK };

static const struct option longopts[] = {
    { "config", required_argument, NULL, O_CONFIG },   { "set", required_argument, NULL, O_SET },
    { "front", required_argument, NULL, O_FRONT },     { "pub", required_argument, NULL, O_PUB },
    { "sensors", required_argument, NULL, O_SENSORS }, { "backend", required_argument, NULL, O_BACKEND },
    { "ready-file", required_argument, NULL, O_READY },{ "enable-test-ops", no_argument, NULL, O_TEST },
    { "quiet", no_argument, NULL, O_QUIET },           { "verbose", no_argument, NULL, O_VERBOSE },
    { "stage", required_argument, NULL, O_STAGE },     { "connect", required_argument, NULL, O_CONNECT },
    { "gen-keys", required_argument, NULL, O_GENKEYS },{ "help", no_argument, NULL, O_HELP },
    { "pack", required_argument, NULL, O_PACK },
    { NULL, 0, NULL, 0 },
};

static int run_stage(const om_config *cfg, const char *name, const char *endpoint)
{
    const om_stage *st = om_stage_find(name);
    char err[512];
    if (!st || (st->test_only && !cfg->test_ops)) {
        om_log(OM_LOG_ERROR, "omnid", "unknown stage '%s'", name);
        return 2;
    }
    /* SIGINT/SIGTERM are taken with sigwait on this thread only. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    void *ctx = zmq_ctx_new();
    om_worker *w = NULL;
    int rc = ctx ? om_worker_start(&w, ctx, endpoint, st, cfg, err, sizeof err) : OM_EIO;
    if (rc) {
        om_log(OM_LOG_ERROR, "omnid", "%s", ctx ? err : "zmq_ctx_new failed");
    } else {
        om_log(OM_LOG_INFO, name, "worker connected to %s", endpoint);
        int sig;
        sigwait(&set, &sig);
        om_log(OM_LOG_INFO, name, "signal %d: stopping", sig);
    }
    if (ctx) {
        zmq_ctx_shutdown(ctx);
        om_worker_join(w);
        zmq_ctx_term(ctx);
    }
    return rc ? 1 : 0;
}

static int run_daemon(const om_config *cfg)
{
    char err[512];
    om_daemon *d;
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int rc = om_daemon_open(&d, cfg, err, sizeof err);
    if (rc) {
        om_log(OM_LOG_ERROR, "omnid", "%s", err);
        return 1;
    }
    g_daemon = d;
    if (g_stop_early)
        om_daemon_stop(d);
    rc = om_daemon_run(d);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    g_daemon = NULL;
    om_daemon_close(d);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    om_config cfg;
    char err[512];
    const char *config = NULL, *stage = NULL, *connect_ep = NULL, *keydir = NULL;
    int c, rc = 0;
    signal(SIGPIPE, SIG_IGN);
    om_config_init(&cfg);

    /* Pass 1: the file and log level, so that pass 2's overrides win over the file. */
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == O_CONFIG) config = optarg;
        else if (c == O_QUIET) om_log_set_level(OM_LOG_WARN);
        else if (c == O_VERBOSE) om_log_set_level(OM_LOG_DEBUG);
        else if (c == O_HELP) { usage(stdout); return 0; }
        else if (c == '?') { usage(stderr); return 2; }
    }
    if (optind < argc) {
        fprintf(stderr, "omnid: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!config && access("/etc/omnid.ini", R_OK) == 0)
        config = "/etc/omnid.ini";
    if (config && (rc = om_config_load(&cfg, config, err, sizeof err)))
        goto fail;

    optind = 0;   /* glibc: 0 restarts getopt completely */
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        char kv[OM_PATH_LEN + 32];
        const char *key = NULL;
        switch (c) {
        case O_SET:     rc = om_config_set(&cfg, optarg, err, sizeof err); break;
        case O_FRONT:   key = "daemon.front"; break;
        case O_PUB:     key = "daemon.pub"; break;
        case O_SENSORS: key = "daemon.sensors"; break;
        case O_BACKEND: key = "daemon.backend"; break;
        case O_READY:   key = "daemon.ready_file"; break;
        case O_PACK:    key = "pack.dir"; break;
        case O_TEST:    rc = om_config_set(&cfg, "daemon.test_ops=on", err, sizeof err); break;
        case O_STAGE:   stage = optarg; break;
        case O_CONNECT: connect_ep = optarg; break;
        case O_GENKEYS: keydir = optarg; break;
        }
        if (key) {
            snprintf(kv, sizeof kv, "%s=%s", key, optarg);
            rc = om_config_set(&cfg, kv, err, sizeof err);
        }
        if (rc)
            goto fail;
    }

    if (keydir) {
        rc = om_curve_gen_keys(keydir, err, sizeof err);
        if (rc)
            goto fail;
        printf("wrote %s/secret.key and %s/public.key\n", keydir, keydir);
    } else if (stage || connect_ep) {
        if (!stage || !connect_ep) {
            fprintf(stderr, "omnid: --stage and --connect go together\n");
            rc = 2;
        } else {
            rc = run_stage(&cfg, stage, connect_ep);
        }
    } else {
        rc = run_daemon(&cfg);
    }
    om_config_free(&cfg);
    return rc;
fail:
    fprintf(stderr, "omnid: %s\n", err);
    om_config_free(&cfg);
    return 2;
}
