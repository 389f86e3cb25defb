/* supervisor.c: stage processes the daemon starts itself (stage.NAME.mode =
 * process): fork/exec `omnid --stage NAME --connect BACKEND` with the daemon's own
 * config, restart with exponential backoff, stop with SIGTERM then SIGKILL. */
#include "om_daemon_impl.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 100
#define STABLE_US      5000000   /* a child that lived this long restarts without delay */

static int push(om_supervisor *s, const char *arg)
{
    char **grown = realloc(s->argv_base, (size_t)(s->argc_base + 2) * sizeof *grown);
    if (!grown)
        return OM_ENOMEM;
    s->argv_base = grown;
    if (!(s->argv_base[s->argc_base] = strdup(arg)))
        return OM_ENOMEM;
    s->argv_base[++s->argc_base] = NULL;
    return 0;
}

int om_supervisor_init(om_supervisor *s, const om_config *cfg, const char *backend,
                       char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    char exe[OM_PATH_LEN];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(err, errlen, "cannot find own executable: %s", strerror(errno));
        return OM_EIO;
    }
    exe[n] = 0;
    /* argv[2] is the stage name, filled per child. */
    const char *level = om_log_get_level() >= OM_LOG_DEBUG ? "--verbose"
                      : om_log_get_level() <= OM_LOG_WARN  ? "--quiet" : NULL;
    int rc = push(s, exe) | push(s, "--stage") | push(s, "-") | push(s, "--connect") |
             push(s, backend);
    if (!rc && cfg->config_path[0])
        rc = push(s, "--config") | push(s, cfg->config_path);
    for (int i = 0; !rc && i < cfg->noverrides; i++)
        rc = push(s, "--set") | push(s, cfg->overrides[i]);
    if (!rc && level)
        rc = push(s, level);

    for (int i = 0; !rc && i < cfg->nstages; i++) {
        const om_stage_conf *sc = &cfg->stages[i];
        if (sc->mode != OM_MODE_PROCESS)
            continue;
        for (int w = 0; w < sc->workers; w++) {
            if (s->n == OM_MAX_CHILDREN) {
                snprintf(err, errlen, "more than %d stage processes", OM_MAX_CHILDREN);
                om_supervisor_stop(s, 0);
                return OM_ERANGE;
            }
            om_child *c = &s->children[s->n++];
            snprintf(c->stage, sizeof c->stage, "%s", sc->name);
            c->backoff_ms = BACKOFF_MIN_MS;
        }
    }
    if (rc) {
        snprintf(err, errlen, "out of memory");
        om_supervisor_stop(s, 0);
    }
    return rc ? OM_ENOMEM : 0;
}

static void start(om_supervisor *s, om_child *c, int64_t now_us)
{
    free(s->argv_base[2]);
    s->argv_base[2] = strdup(c->stage);
    pid_t parent = getpid();
    pid_t pid = s->argv_base[2] ? fork() : -1;
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec. A stage process must
         * not outlive a daemon killed with SIGKILL. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(s->argv_base[0], s->argv_base);
        _exit(127);
    }
    if (pid < 0) {
        om_log(OM_LOG_ERROR, "supervisor", "cannot start stage %s: %s", c->stage, strerror(errno));
        c->restart_at_us = now_us + (int64_t)c->backoff_ms * 1000;
        return;
    }
    c->pid = pid;
    c->started_us = now_us;
    om_log(OM_LOG_INFO, "supervisor", "started stage %s pid %d", c->stage, (int)pid);
}

int64_t om_supervisor_tick(om_supervisor *s, int64_t now_us, int max_backoff_ms)
{
    int64_t next = INT64_MAX;
    s->nexited = 0;
    for (int i = 0; i < s->n; i++) {
        om_child *c = &s->children[i];
        int status;
        if (c->pid > 0 && waitpid(c->pid, &status, WNOHANG) == c->pid) {
            int stable = now_us - c->started_us >= STABLE_US;
            if (stable)
                c->backoff_ms = BACKOFF_MIN_MS;
            c->restart_at_us = stable ? now_us : now_us + (int64_t)c->backoff_ms * 1000;
            if (WIFSIGNALED(status))
                om_log(OM_LOG_WARN, "supervisor", "stage %s pid %d killed by signal %d; restart in %d ms",
                       c->stage, (int)c->pid, WTERMSIG(status), stable ? 0 : c->backoff_ms);
            else
                om_log(OM_LOG_WARN, "supervisor", "stage %s pid %d exited with %d; restart in %d ms",
                       c->stage, (int)c->pid, WEXITSTATUS(status), stable ? 0 : c->backoff_ms);
            s->exited[s->nexited++] = c->pid;
            if (!stable)
                c->backoff_ms = c->backoff_ms * 2 > max_backoff_ms ? max_backoff_ms : c->backoff_ms * 2;
            c->pid = 0;
            c->restarts++;
        }
        if (c->pid == 0 && now_us >= c->restart_at_us)
            start(s, c, now_us);
        if (c->pid == 0 && c->restart_at_us < next)
            next = c->restart_at_us;
    }
    return next;
}

void om_supervisor_stop(om_supervisor *s, int bound_ms)
{
    for (int i = 0; i < s->n; i++)
        if (s->children[i].pid > 0)
            kill(s->children[i].pid, SIGTERM);
    int64_t until = om_now_us() + (int64_t)bound_ms * 1000;
    for (int i = 0; i < s->n; i++) {
        om_child *c = &s->children[i];
        while (c->pid > 0) {
            int status;
            pid_t r = waitpid(c->pid, &status, WNOHANG);
            if (r == c->pid || (r < 0 && errno == ECHILD)) {
                c->pid = 0;
            } else if (om_now_us() >= until) {
                om_log(OM_LOG_WARN, "supervisor", "stage %s pid %d did not stop; SIGKILL",
                       c->stage, (int)c->pid);
                kill(c->pid, SIGKILL);
                waitpid(c->pid, &status, 0);
                c->pid = 0;
            } else {
                usleep(10000);
            }
        }
    }
    for (int i = 0; i < s->argc_base; i++)
        free(s->argv_base[i]);
    free(s->argv_base);
    s->argv_base = NULL;
    s->argc_base = 0;
    s->n = 0;
}
