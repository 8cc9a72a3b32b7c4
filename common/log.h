/*
 * log.h - logging shared by relayd and the shim helper.
 *
 * Lines look like Go's log package ("YYYY/MM/DD HH:MM:SS text"), because
 * the original relay's lines are scraped by scripts and must keep both
 * their wording and their prefix.
 */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

/*
 * log_init: <ident> names the program in syslog and in the prefix of
 * non-original lines when <prefix_ident> is set; <use_syslog> sends lines
 * to syslog(3) instead of stderr.
 */
void log_init(const char *ident, int use_syslog, int prefix_ident);
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);

/* Original-protocol lines: printed at info level, exactly as given. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_warnx prints as given; log_warn appends ": strerror(errno)". */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
