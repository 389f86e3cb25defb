/* log.c: one line per event on stderr, "HH:MM:SS.mmm L who[pid]: text". */
#include "om_daemon.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int log_level = OM_LOG_INFO;

void om_log_set_level(int level) { log_level = level; }
int  om_log_get_level(void) { return log_level; }

void om_log(int level, const char *who, const char *fmt, ...)
{
    static const char tag[] = "EWID";
    if (level > log_level)
        return;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);

    /* Built in one buffer and written with one call so lines of threads and stage
     * processes sharing stderr do not interleave. */
    char line[1024];
    int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %c %s[%d]: ", tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     tag[level < 0 ? 0 : level > 3 ? 3 : level], who, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
