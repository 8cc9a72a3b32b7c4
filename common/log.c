/*
 * log.c - Go-compatible log lines on stderr, or syslog on request.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level log_level = LOG_LVL_INFO;
static int log_syslog;
static int log_prefix;
static const char *log_ident = "relayd";

void
log_init(const char *ident, int use_syslog, int prefix_ident)
{
	log_ident = ident;
	log_syslog = use_syslog;
	log_prefix = prefix_ident;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_set_level(enum log_level lvl)
{
	log_level = lvl;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

/*
 * One write(2) per line so that lines from several threads, or from the
 * shim helper sharing the server's stderr, never interleave mid-line.
 */
static void
log_emit(enum log_level lvl, const char *fmt, va_list ap, int err)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char line[1024];
	size_t n = 0;
	int r;

	if (lvl > log_level)
		return;
	if (!log_syslog) {
		struct tm tm;
		time_t now = time(NULL);

		localtime_r(&now, &tm);
		n = strftime(line, sizeof(line), "%Y/%m/%d %H:%M:%S ", &tm);
		if (log_prefix) {
			r = snprintf(line + n, sizeof(line) - n,
			    "%s: ", log_ident);
			if (r > 0 && (size_t)r < sizeof(line) - n)
				n += (size_t)r;
		}
	}
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r < 0)
		return;
	n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (err) {
		r = snprintf(line + n, sizeof(line) - n, ": %s", strerror(err));
		if (r > 0)
			n += (size_t)r;
		if (n > sizeof(line) - 2)
			n = sizeof(line) - 2;
	}
	if (log_syslog) {
		line[n] = '\0';
		syslog(prio[lvl], "%s", line);
		return;
	}
	line[n++] = '\n';
	/* Whole lines: a signal or a short write (a pipe nearly full) must
	 * not cut one.  A non-blocking stderr that is full loses the rest. */
	for (size_t off = 0; off < n;) {
		ssize_t w = write(STDERR_FILENO, line + off, n - off);

		if (w > 0)
			off += (size_t)w;
		else if (w == -1 && errno == EINTR)
			continue;
		else
			break;
	}
}

#define LOG_BODY(lvl, err) \
	do { \
		int saved_errno_ = errno; \
		va_list ap; \
		va_start(ap, fmt); \
		log_emit(lvl, fmt, ap, err); \
		va_end(ap); \
		errno = saved_errno_; \
	} while (0)

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_INFO, 0);
}

void
log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_DEBUG, 0);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_WARN, 0);
}

void
log_warn(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_WARN, saved_errno_);
}

void
log_errorx(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_ERROR, 0);
}

void
fatal(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_ERROR, saved_errno_);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_ERROR, 0);
	exit(1);
}
