/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * What the kernel will run: ELF, or a "#!" script and its interpreter (docs/design.md §4).
 *
 * Invariants:
 *  - The bytes examined are those of the final, immutable descriptor (leased in place
 *    or sealed copy): what we parse is what the kernel will parse.
 *  - The "#!" line is parsed exactly like fs/binfmt_script.c (first BINPRM_BUF_SIZE
 *    bytes; interpreter up to a space, tab or NUL; the trimmed rest is ONE argument), so
 *    the interpreter we check is the one the kernel will open.
 *  - The interpreter must be an absolute path whose every lookup happens in a
 *    root-controlled directory (the kernel resolves it again at exec time), and must
 *    itself be trusted in place: a regular file, root-owned, not group/other writable,
 *    on a trusted mount, executable, not a script itself, and with no writer (lease held
 *    until exec). It is opened O_PATH first and read only once known to be regular.
 *  - Anything else (not ELF, no "#!", a line the kernel would refuse) is refused.
 */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "agent-binary-internal.h"
#include "util.h"

static bool spacetab(char c) {
        return c == ' ' || c == '\t';
}

static char *next_non_spacetab(char *first, const char *last) {
        for (; first <= last; first++)
                if (!spacetab(*first))
                        return first;
        return NULL;
}

static char *next_terminator(char *first, const char *last) {
        for (; first <= last; first++)
                if (spacetab(*first) || !*first)
                        return first;
        return NULL;
}

/* strnchr() as the kernel has it: stops at a NUL. */
static char *strnchr_k(char *s, size_t count, char c) {
        for (; count-- && *s != '\0'; ++s)
                if (*s == c)
                        return s;
        return NULL;
}

int binary_shebang_parse(const uint8_t *buf, size_t n, char **ret_interp, char **ret_arg) {
        char b[BINARY_BINPRM_BUF_SIZE] = {}; /* the kernel zero-fills a short file */
        char *buf_end = b + sizeof(b) - 1, *i_end, *i_name, *i_sep, *i_arg = NULL;
        _cleanup_free_ char *interp = NULL, *arg = NULL;

        memcpy(b, buf, MIN(n, sizeof(b)));
        if (b[0] != '#' || b[1] != '!')
                return 0;
        i_end = strnchr_k(b, sizeof(b), '\n');
        if (!i_end) {
                i_end = next_non_spacetab(b + 2, buf_end);
                if (!i_end)
                        return -ENOEXEC; /* only spaces and tabs */
                if (!next_terminator(i_end, buf_end))
                        return -ENOEXEC; /* the interpreter path is truncated */
                i_end = buf_end;
        }
        while (spacetab(i_end[-1]))
                i_end--;
        i_name = next_non_spacetab(b + 2, i_end);
        if (!i_name || i_name == i_end)
                return -ENOEXEC; /* no interpreter name */
        i_sep = next_terminator(i_name, i_end);
        if (i_sep && *i_sep != '\0')
                i_arg = next_non_spacetab(i_sep, i_end);
        *i_end = '\0';
        if (i_sep)
                *i_sep = '\0';

        interp = strdup(i_name);
        if (!interp)
                return -ENOMEM;
        if (i_arg) {
                arg = strdup(i_arg);
                if (!arg)
                        return -ENOMEM;
        }
        *ret_interp = TAKE_PTR(interp);
        *ret_arg = TAKE_PTR(arg);
        return 1;
}

static int interp_error(int r, const char *interp, const char *script, const char *why, char **ret_error) {
        _cleanup_free_ char *i = binary_display(interp);

        *ret_error = strdup_printf("interpreter %s in the #! line of %s %s", i ?: "?", script, why);
        return r;
}

/* Opens the interpreter as the kernel will find it, read-only, only if regular. */
static int interp_open(const char *interp, const BinaryMountTable *mt, const char *script, int *ret_fd,
                       char **ret_error) {
        _cleanup_close_ int pfd = -EBADF;
        _cleanup_free_ char *reason = NULL, *why = NULL;
        int r;

        r = binary_resolve_trusted(interp, mt, &pfd, &reason);
        if (r < 0) {
                if (reason)
                        why = strdup_printf("is not trusted: %s", reason);
                else if (r == -ENOENT)
                        why = strdup("does not exist");
                else if (r == -EISDIR)
                        why = strdup("cannot be used: it is a directory");
                else if (r == -EINVAL)
                        why = strdup("cannot be used: it is not a regular file");
                else
                        why = strdup_printf("cannot be used: %s", strerror(-r));
                return interp_error(r == -ENOENT ? r : -EPERM, interp, script, why ?: "is refused", ret_error);
        }
        /* binary_resolve_trusted() ends on a regular file only; reopening cannot block */
        r = binary_reopen(pfd, ret_fd);
        if (r < 0) {
                why = strdup_printf("cannot be opened: %s", strerror(-r));
                return interp_error(r, interp, script, why ?: "cannot be opened", ret_error);
        }
        return 0;
}

static int interp_check(const char *interp, const BinaryMountTable *mt, const char *script, int *ret_fd,
                        char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *why = NULL;
        BinaryTrust t = {};
        struct stat st;
        uint8_t head[2];
        int r;

        r = interp_open(interp, mt, script, &fd, ret_error);
        if (r < 0)
                return r;
        r = binary_trust_inspect(fd, false, true, mt, &t);
        if (r < 0)
                return interp_error(r, interp, script, "cannot be inspected", ret_error);
        if (t.reason)
                why = strdup_printf("is not trusted in place: %s", t.reason);
        binary_trust_done(&t);
        if (why)
                return interp_error(-EPERM, interp, script, why, ret_error);
        if (fstat(fd, &st) < 0 || !(st.st_mode & 0111))
                return interp_error(-EACCES, interp, script, "is not executable", ret_error);
        if (binary_pread_full(fd, head, sizeof(head), 0) == 2 && head[0] == '#' && head[1] == '!')
                return interp_error(-ENOEXEC, interp, script, "is itself a script; nested interpreters are refused",
                                    ret_error);
        r = binary_take_lease(fd);
        if (r == -EAGAIN)
                return interp_error(-ETXTBSY, interp, script,
                                    "is open for writing by another process; refusing to run it", ret_error);
        if (r < 0)
                return interp_error(r, interp, script, "cannot be protected by a read lease", ret_error);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int binary_check_exec(int fd, const char *script, const BinaryMountTable *mt, BinaryExec *ret, char **ret_error) {
        _cleanup_free_ char *interp = NULL, *arg = NULL;
        uint8_t head[BINARY_BINPRM_BUF_SIZE];
        ssize_t k;
        int r;

        k = binary_pread_full(fd, head, sizeof(head), 0);
        if (k < 0) {
                *ret_error = strdup_printf("cannot read %s: %s", script, strerror((int) -k));
                return (int) k;
        }
        if (k >= 4 && memcmp(head, "\177ELF", 4) == 0)
                return 0;
        r = binary_shebang_parse(head, (size_t) k, &interp, &arg);
        if (r == 0) {
                *ret_error = strdup_printf("%s is not an executable program (no ELF header or #! line)", script);
                return -ENOEXEC;
        }
        if (r == -ENOEXEC) {
                *ret_error = strdup_printf("%s has a #! line the kernel cannot use (no interpreter, or it is "
                                           "longer than %u bytes)",
                                           script, BINARY_BINPRM_BUF_SIZE);
                return r;
        }
        if (r < 0)
                return r;
        if (interp[0] != '/') {
                _cleanup_free_ char *i = binary_display(interp);
                *ret_error = strdup_printf("relative interpreter \"%s\" in the #! line of %s is refused; use an "
                                           "absolute path",
                                           i ?: "?", script);
                return -ENOEXEC;
        }
        r = interp_check(interp, mt, script, &ret->interpreter_fd, ret_error);
        if (r < 0)
                return r;
        ret->script = true;
        ret->interpreter = TAKE_PTR(interp);
        ret->interpreter_arg = TAKE_PTR(arg);
        return 0;
}
