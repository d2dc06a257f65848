/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The elevated program's environment, built from nothing (docs/design.md §7).
 *
 * Invariants (MUST):
 *  - A variable reaches the program only if this file names it (env_pass[], the fixed
 *    agent-set variables) or the rule's env_keep names it; the caller's vector is
 *    never copied or filtered as a whole.
 *  - PATH is ENV_SECURE_PATH; HOME, USER, LOGNAME and SHELL describe run_as; ELEVATE_*
 *    and SUDO_* are written by the agent, and so are LESSSECURE=1 and
 *    SYSTEMD_PAGERSECURE=1 (a pager on the user's terminal runs no commands). None of them can come from the caller,
 * not even through env_keep (they are in the policy library's table of names env_keep may never name, which the policy
 * loader enforces too).
 *  - Every caller value is checked before it is copied: at most ENV_VALUE_MAX bytes,
 *    no control character, not a bash function import. Values with a format (TERM,
 *    LANG, LC_*, TZ…) are checked against it. A variable that fails is dropped, never
 *    repaired.
 *  - For each name the caller's first occurrence decides; later duplicates are ignored,
 *    so what a program looking the name up would see and what we checked are the same value.
 *  - Work is bounded: one pass over the caller's vector per wanted name, and the set of
 *    wanted names is fixed plus at most ENV_KEEP_MAX names from the policy.
 */

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent-env.h"
#include "macro.h"
#include "policy.h"
#include "util.h"

#define ENV_VALUE_MAX 4096
#define ENV_SHORT_MAX 64
#define ENV_KEEP_MAX 256
#define ZONEINFO_DIR "/usr/share/zoneinfo"

typedef enum EnvCheck {
        ENV_CHECK_TERM,     /* printable ASCII, no '/' (it names a terminfo file) */
        ENV_CHECK_PRINT,    /* printable ASCII */
        ENV_CHECK_LOCALE,   /* [A-Za-z0-9_.@-]+ without ".." */
        ENV_CHECK_LANGUAGE, /* the same plus ':' (a list of locales) */
        ENV_CHECK_TZ,       /* a zone file under the zoneinfo directory */
} EnvCheck;

/* Caller variables that pass without env_keep, in output order. */
static const struct {
        const char *name;
        EnvCheck check;
} env_pass[] = {
        { "TERM", ENV_CHECK_TERM },
        { "COLORTERM", ENV_CHECK_PRINT },
        { "LANG", ENV_CHECK_LOCALE },
        { "LANGUAGE", ENV_CHECK_LANGUAGE },
        { "LC_ALL", ENV_CHECK_LOCALE },
        { "LC_ADDRESS", ENV_CHECK_LOCALE },
        { "LC_COLLATE", ENV_CHECK_LOCALE },
        { "LC_CTYPE", ENV_CHECK_LOCALE },
        { "LC_IDENTIFICATION", ENV_CHECK_LOCALE },
        { "LC_MEASUREMENT", ENV_CHECK_LOCALE },
        { "LC_MESSAGES", ENV_CHECK_LOCALE },
        { "LC_MONETARY", ENV_CHECK_LOCALE },
        { "LC_NAME", ENV_CHECK_LOCALE },
        { "LC_NUMERIC", ENV_CHECK_LOCALE },
        { "LC_PAPER", ENV_CHECK_LOCALE },
        { "LC_TELEPHONE", ENV_CHECK_LOCALE },
        { "LC_TIME", ENV_CHECK_LOCALE },
        { "TZ", ENV_CHECK_TZ },
};

static bool env_name_valid(const char *name) {
        if (!name || !((*name >= 'A' && *name <= 'Z') || (*name >= 'a' && *name <= 'z') || *name == '_'))
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
                        return false;
        return strlen(name) <= PROTO_MAX_ENV_NAME;
}

bool env_name_forbidden(const char *name) {
        /* the names env_keep can never bring back, with the reason for each, are one
         * table shared with the policy loader (policy/policy-env.c), which refuses a
         * policy naming them; this is the second line */
        return !env_name_valid(name) || policy_env_denied(name) != NULL;
}

/* What every value must satisfy: bounded, no control characters (they forge log lines
 * and terminal output), not "() {…" (how old bash imported functions from any name). */
static bool value_sane(const char *v) {
        size_t n;

        if (!v)
                return false;
        n = strnlen(v, ENV_VALUE_MAX + 1);
        if (n > ENV_VALUE_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) v[i] < 0x20 || v[i] == 0x7f)
                        return false;
        return strncmp(v, "()", 2) != 0;
}

static bool chars_in(const char *v, const char *extra) {
        for (const char *p = v; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                      strchr(extra, *p)))
                        return false;
        return true;
}

static bool value_short(const char *v) {
        return *v && strlen(v) <= ENV_SHORT_MAX;
}

static bool value_printable(const char *v) {
        for (const char *p = v; *p; p++)
                if ((unsigned char) *p < 0x20 || (unsigned char) *p > 0x7e)
                        return false;
        return true;
}

/* TZ names a compiled zone: anything else (a POSIX rule string, an absolute path, a path
 * out of the zone directory) could make libc parse a file the user chose. The lookup is
 * confined beneath the zone directory, so its own links (US/Eastern -> ../America/…)
 * work and nothing escapes it. */
static bool tz_valid(const char *v, const char *zoneinfo_dir) {
        struct open_how how = {
                .flags = O_PATH | O_CLOEXEC,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        struct stat st;

        if (strlen(v) > ENV_SHORT_MAX)
                return false;
        if (*v == ':')
                v++;
        if (!*v || *v == '/' || strstr(v, "..") || !chars_in(v, "_+-./"))
                return false;

        dfd = open(zoneinfo_dir ?: ZONEINFO_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return false;
        fd = (int) syscall(SYS_openat2, dfd, v, &how, sizeof(how));
        if (fd < 0)
                return false;
        return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

static bool value_valid(const char *v, EnvCheck check, const char *zoneinfo_dir) {
        switch (check) {
        case ENV_CHECK_TERM:
                return value_short(v) && value_printable(v) && !strchr(v, '/');
        case ENV_CHECK_PRINT:
                return value_short(v) && value_printable(v);
        case ENV_CHECK_LOCALE:
                return value_short(v) && chars_in(v, "_.@-") && !strstr(v, "..");
        case ENV_CHECK_LANGUAGE:
                return value_short(v) && chars_in(v, "_.@-:") && !strstr(v, "..");
        case ENV_CHECK_TZ:
                return tz_valid(v, zoneinfo_dir);
        }
        return false;
}

/* The caller's first value for name, or NULL. Later duplicates never count. */
static const char *caller_lookup(const EnvInput *in, const char *name) {
        for (size_t i = 0; i < in->n_caller; i++)
                if (in->caller[i].name && streq(in->caller[i].name, name))
                        return in->caller[i].value;
        return NULL;
}

typedef struct EnvVec {
        char **v;
        size_t n, cap;
} EnvVec;

static bool envvec_has(const EnvVec *e, const char *name) {
        size_t l = strlen(name);

        for (size_t i = 0; i < e->n; i++)
                if (strncmp(e->v[i], name, l) == 0 && e->v[i][l] == '=')
                        return true;
        return false;
}

/* Adds NAME=value unless value is NULL or insane (then nothing is added). */
static int envvec_put(EnvVec *e, const char *name, const char *value) {
        char *s;

        if (!value || !value_sane(value) || envvec_has(e, name))
                return 0;
        if (e->n + 2 > e->cap) {
                size_t ncap = e->cap ? e->cap * 2 : 32;
                char **n = reallocarray(e->v, ncap, sizeof(char *));
                if (!n)
                        return -ENOMEM;
                e->v = n;
                e->cap = ncap;
        }
        s = strdup_printf("%s=%s", name, value);
        if (!s)
                return -ENOMEM;
        e->v[e->n++] = s;
        e->v[e->n] = NULL;
        return 0;
}

static int envvec_put_uint(EnvVec *e, const char *name, unsigned v) {
        char buf[16];

        (void) snprintf(buf, sizeof(buf), "%u", v);
        return envvec_put(e, name, buf);
}

static int put_fixed(EnvVec *e, const EnvInput *in) {
        int r;

        if ((r = envvec_put(e, "PATH", ENV_SECURE_PATH)) < 0 ||
            (r = envvec_put(e, "HOME", in->run_as_home ?: "/")) < 0 ||
            (r = envvec_put(e, "USER", in->run_as_user)) < 0 || (r = envvec_put(e, "LOGNAME", in->run_as_user)) < 0 ||
            (r = envvec_put(e, "SHELL", in->run_as_shell ?: "/bin/sh")) < 0)
                return r;
        return 0;
}

static int put_passed(EnvVec *e, const EnvInput *in) {
        for (size_t i = 0; i < ELEMENTSOF(env_pass); i++) {
                const char *v = caller_lookup(in, env_pass[i].name);
                int r;

                /* value_sane() first: the format checks assume a bounded string. */
                if (!v || !value_sane(v) || !value_valid(v, env_pass[i].check, in->zoneinfo_dir))
                        continue;
                r = envvec_put(e, env_pass[i].name, v);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int put_identity(EnvVec *e, const EnvInput *in) {
        int r;

        if ((r = envvec_put(e, "ELEVATE_USER", in->caller_user)) < 0 ||
            (r = envvec_put_uint(e, "ELEVATE_UID", in->caller_uid)) < 0 ||
            (r = envvec_put(e, "ELEVATE_REQUEST", in->request_id)) < 0 ||
            (r = envvec_put(e, "SUDO_USER", in->caller_user)) < 0 ||
            (r = envvec_put_uint(e, "SUDO_UID", in->caller_uid)) < 0 ||
            (r = envvec_put_uint(e, "SUDO_GID", in->caller_gid)) < 0 ||
            (r = envvec_put(e, "SUDO_COMMAND", in->command)) < 0)
                return r;
        return 0;
}

/* Pagers that a root program opens on the user's terminal (apt-listchanges, systemctl,
 * journalctl, man) must not run the commands the user types there: less and systemd's
 * pager in secure mode refuse "!cmd", "|", editors and LESSOPEN. Set whatever the
 * caller sent; the policy cannot keep other values (LESS* and SYSTEMD_* are in its table
 * of names env_keep may never name). */
static int put_hardening(EnvVec *e) {
        int r;

        if ((r = envvec_put(e, "LESSSECURE", "1")) < 0 || (r = envvec_put(e, "SYSTEMD_PAGERSECURE", "1")) < 0)
                return r;
        return 0;
}

static bool name_is_passed(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(env_pass); i++)
                if (streq(name, env_pass[i].name))
                        return true;
        return false;
}

/* env_keep: names the rule lets through, in the rule's order, never a forbidden one.
 * DISPLAY, WAYLAND_DISPLAY and XAUTHORITY only ever arrive this way. A name with a
 * format of its own (TERM, TZ…) was decided by put_passed(): naming it in env_keep must
 * not let a value through that failed its check. */
static int put_kept(EnvVec *e, const EnvInput *in) {
        size_t n = 0;

        if (!in->env_keep)
                return 0;
        for (char *const *k = in->env_keep; *k && n < ENV_KEEP_MAX; k++, n++) {
                int r;

                if (env_name_forbidden(*k) || name_is_passed(*k) || envvec_has(e, *k))
                        continue;
                r = envvec_put(e, *k, caller_lookup(in, *k));
                if (r < 0)
                        return r;
        }
        return 0;
}

int env_build(const EnvInput *in, char ***ret) {
        _cleanup_strv_free_ char **v = NULL;
        EnvVec e = {};
        int r;

        if (!in || !ret || (in->n_caller > 0 && !in->caller))
                return -EINVAL;

        r = put_fixed(&e, in);
        if (r >= 0)
                r = put_passed(&e, in);
        if (r >= 0)
                r = put_identity(&e, in);
        if (r >= 0)
                r = put_hardening(&e);
        if (r >= 0)
                r = put_kept(&e, in);
        v = e.v;
        if (r < 0)
                return r;

        *ret = TAKE_PTR(v);
        return 0;
}
