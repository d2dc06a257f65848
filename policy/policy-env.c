/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The variables env_keep may never name (docs/design.md §7), with the reason for each.
 *
 * Invariants (MUST):
 *  - One table. The policy loader refuses a rule whose env_keep names an entry (the agent
 *    then refuses the whole policy, at start and on reload), and the agent's environment
 *    builder consults the same table before it copies a kept variable, so a policy that
 *    was somehow loaded still passes none of them.
 *  - An entry is here when the variable makes a program run as root load or run code the
 *    user chose, read configuration, plugins, trust anchors or data the user chose, write
 *    where the user chose, or when the agent sets the variable itself.
 *  - Names compare without regard to case: several programs read both spellings
 *    (npm_config_*, NPM_CONFIG_*), and refusing a variant costs nothing.
 *  - A prefix entry ends in '_' or stands for a family that shares a stem (PYTHON*,
 *    PERL*): every name that starts with it is refused.
 */

#include <strings.h>

#include "policy-internal.h"

#define EXACT(n, k, why)                                                                                               \
        { n, false, k, why }
#define PREFIX(n, k, why)                                                                                              \
        { n, true, k, why }

const PolicyEnvDenied policy_env_denied_table[] = {
        /* set by the agent from run_as and the kernel's identity of the caller */
        EXACT("PATH", POLICY_ENV_AGENT,
              "the agent sets a fixed PATH, so no program is found in a directory the user chose"),
        EXACT("HOME", POLICY_ENV_AGENT, "the agent sets run_as's home; the caller's would make root read its dotfiles"),
        EXACT("USER", POLICY_ENV_AGENT, "the agent sets it to run_as"),
        EXACT("LOGNAME", POLICY_ENV_AGENT, "the agent sets it to run_as"),
        EXACT("SHELL", POLICY_ENV_AGENT,
              "the agent sets run_as's shell; programs start $SHELL for shell escapes and prompts"),
        PREFIX("ELEVATE_", POLICY_ENV_AGENT, "the agent writes ELEVATE_* from the kernel's identity of the caller"),
        PREFIX("SUDO_", POLICY_ENV_AGENT,
               "the agent writes SUDO_USER/UID/GID/COMMAND; SUDO_EDITOR and SUDO_ASKPASS name programs to "
               "run"),

        /* the dynamic loader and libc */
        PREFIX("LD_", POLICY_ENV_CODE,
               "the dynamic loader loads libraries and audit modules named by LD_* into the program"),
        PREFIX("_RLD", POLICY_ENV_CODE, "old loaders read libraries from _RLD* variables"),
        PREFIX("GLIBC_", POLICY_ENV_CODE,
               "GLIBC_TUNABLES changes the allocator and the loader (CVE-2023-4911 made it root)"),
        PREFIX("MALLOC_", POLICY_ENV_WRITE,
               "glibc's MALLOC_* change the allocator; MALLOC_TRACE writes a file the user names"),
        EXACT("GCONV_PATH", POLICY_ENV_CODE, "iconv loads charset modules from this directory (the PwnKit payload)"),
        EXACT("GETCONF_DIR", POLICY_ENV_CODE, "getconf runs programs from this directory"),
        EXACT("LOCPATH", POLICY_ENV_CONFIG, "libc reads locale files from this directory"),
        EXACT("NLSPATH", POLICY_ENV_CONFIG, "libc reads message catalogs from this path"),
        EXACT("PATH_LOCALE", POLICY_ENV_CONFIG, "the C library reads locale files from this directory"),
        EXACT("TZDIR", POLICY_ENV_CONFIG, "libc reads time zone files from this directory"),
        EXACT("HOSTALIASES", POLICY_ENV_CONFIG, "the resolver reads host aliases from this file"),
        EXACT("LOCALDOMAIN", POLICY_ENV_CONFIG, "it overrides the resolver's search domains"),
        EXACT("RES_OPTIONS", POLICY_ENV_CONFIG, "it overrides the resolver's options"),
        EXACT("RESOLV_HOST_CONF", POLICY_ENV_CONFIG, "the resolver reads its host configuration from this file"),
        EXACT("NIS_PATH", POLICY_ENV_CONFIG, "it redirects NIS+ name lookups"),
        EXACT("SEGFAULT_OUTPUT_NAME", POLICY_ENV_WRITE, "libSegFault writes its report to this file"),
        EXACT("MEMUSAGE_OUTPUT", POLICY_ENV_WRITE, "libmemusage writes its profile to this file"),
        EXACT("GMON_OUT_PREFIX", POLICY_ENV_WRITE, "profiled programs write gmon output under this name"),
        EXACT("TMPDIR", POLICY_ENV_WRITE,
              "root would create temporary files in a directory the user controls (races); glibc drops it "
              "for setuid programs too"),
        EXACT("TMP", POLICY_ENV_WRITE, "root would create temporary files in a directory the user controls"),
        EXACT("TEMP", POLICY_ENV_WRITE, "root would create temporary files in a directory the user controls"),
        EXACT("TEMPDIR", POLICY_ENV_WRITE, "root would create temporary files in a directory the user controls"),
        EXACT("TMPPREFIX", POLICY_ENV_WRITE, "zsh creates temporary files with this prefix"),

        /* shells: start-up files, options, prompts and function import */
        EXACT("ENV", POLICY_ENV_CODE, "sh, dash and ksh run this file when they start"),
        PREFIX("BASH_", POLICY_ENV_CODE,
               "bash runs BASH_ENV at start, imports functions from BASH_FUNC_*, loads builtins from "
               "BASH_LOADABLES_PATH"),
        EXACT("BASHOPTS", POLICY_ENV_CODE, "bash takes shell options from it (extdebug runs the debug trap)"),
        EXACT("SHELLOPTS", POLICY_ENV_CODE, "bash takes shell options from it (xtrace expands PS4)"),
        EXACT("PS1", POLICY_ENV_CODE, "an interactive shell expands $(...) in its prompt"),
        EXACT("PS2", POLICY_ENV_CODE, "an interactive shell expands $(...) in its prompt"),
        EXACT("PS3", POLICY_ENV_CODE, "the shell expands $(...) in its select prompt"),
        EXACT("PS4", POLICY_ENV_CODE, "bash expands $(...) in PS4 when tracing"),
        EXACT("PROMPT_COMMAND", POLICY_ENV_CODE, "an interactive bash runs it before each prompt"),
        EXACT("IFS", POLICY_ENV_CODE, "it changes how scripts split words, so they run other commands than written"),
        EXACT("CDPATH", POLICY_ENV_CODE, "a script's cd lands in a directory the user chose"),
        EXACT("GLOBIGNORE", POLICY_ENV_CODE, "it changes what a script's globs expand to"),
        EXACT("EXECIGNORE", POLICY_ENV_CODE, "it changes which programs bash finds"),
        EXACT("FPATH", POLICY_ENV_CODE, "ksh and zsh load functions from these directories"),
        EXACT("ZDOTDIR", POLICY_ENV_CODE, "zsh runs its start-up files from this directory"),
        EXACT("NULLCMD", POLICY_ENV_CODE, "zsh runs this command for a bare redirection"),
        EXACT("READNULLCMD", POLICY_ENV_CODE, "zsh runs this command for a bare input redirection"),
        EXACT("HISTFILE", POLICY_ENV_WRITE, "the shell writes its history to this file"),
        EXACT("INPUTRC", POLICY_ENV_CONFIG, "readline reads key bindings and macros from this file"),
        EXACT("HOSTFILE", POLICY_ENV_CONFIG, "bash reads host names from this file"),

        /* interpreters and runtimes: module paths, start-up code and option variables */
        PREFIX("PYTHON", POLICY_ENV_CODE, "Python imports modules from PYTHONPATH/PYTHONHOME and runs PYTHONSTARTUP"),
        PREFIX("PERL", POLICY_ENV_CODE,
               "Perl loads modules from PERL5LIB and takes options from PERL5OPT (-M runs code)"),
        PREFIX("RUBY", POLICY_ENV_CODE, "Ruby loads code from RUBYLIB and takes options from RUBYOPT"),
        EXACT("IRBRC", POLICY_ENV_CODE, "irb runs this file"),
        PREFIX("GEM_", POLICY_ENV_CODE, "RubyGems loads gems from GEM_HOME/GEM_PATH"),
        PREFIX("BUNDLE_", POLICY_ENV_CODE, "Bundler runs the Gemfile BUNDLE_GEMFILE names"),
        PREFIX("NODE_", POLICY_ENV_CODE, "Node.js takes --require from NODE_OPTIONS and modules from NODE_PATH"),
        PREFIX("LUA_", POLICY_ENV_CODE, "Lua runs LUA_INIT and loads modules from LUA_PATH/LUA_CPATH"),
        PREFIX("TCL", POLICY_ENV_CODE, "Tcl loads packages from TCLLIBPATH and its library from TCL_LIBRARY"),
        EXACT("TK_LIBRARY", POLICY_ENV_CODE, "Tk runs its library scripts from this directory"),
        PREFIX("PHP", POLICY_ENV_CODE, "PHP reads php.ini from PHPRC, which can prepend code to every script"),
        PREFIX("JAVA_", POLICY_ENV_CODE,
               "the JVM takes -javaagent from JAVA_TOOL_OPTIONS; launchers run $JAVA_HOME/bin/java"),
        PREFIX("_JAVA_", POLICY_ENV_CODE, "the JVM takes options such as -javaagent from _JAVA_OPTIONS"),
        PREFIX("JDK_", POLICY_ENV_CODE, "the java launcher takes options from JDK_JAVA_OPTIONS"),
        EXACT("CLASSPATH", POLICY_ENV_CODE, "the JVM loads classes from these directories"),
        PREFIX("GUILE_", POLICY_ENV_CODE, "Guile loads modules from GUILE_LOAD_PATH"),
        PREFIX("ERL_", POLICY_ENV_CODE, "Erlang takes flags and code paths from ERL_*"),
        PREFIX("DOTNET_", POLICY_ENV_CODE, "DOTNET_STARTUP_HOOKS loads an assembly into every .NET program"),
        PREFIX("CORECLR_", POLICY_ENV_CODE, "CORECLR_PROFILER_PATH loads a library into every .NET program"),
        PREFIX("R_", POLICY_ENV_CODE, "R runs R_PROFILE/R_PROFILE_USER and loads packages from R_LIBS"),
        PREFIX("EMACS", POLICY_ENV_CODE, "Emacs loads Lisp from EMACSLOADPATH"),
        PREFIX("VIM", POLICY_ENV_CODE, "Vim runs VIMINIT and its runtime files from VIMRUNTIME"),
        EXACT("MYVIMRC", POLICY_ENV_CODE, "Vim runs this file"),
        EXACT("MYGVIMRC", POLICY_ENV_CODE, "gVim runs this file"),
        EXACT("GVIMINIT", POLICY_ENV_CODE, "gVim runs these commands"),
        EXACT("EXINIT", POLICY_ENV_CODE, "vi and ex run these commands at start (:!sh)"),
        PREFIX("NVIM_", POLICY_ENV_CODE, "Neovim takes its configuration name and log file from NVIM_*"),

        /* helper programs a root program would start */
        EXACT("EDITOR", POLICY_ENV_CODE, "programs start this editor as root"),
        EXACT("VISUAL", POLICY_ENV_CODE, "programs start this editor as root"),
        EXACT("PAGER", POLICY_ENV_CODE, "programs pipe output through this program as root"),
        EXACT("MANPAGER", POLICY_ENV_CODE, "man pipes pages through this program as root"),
        EXACT("MANOPT", POLICY_ENV_CODE, "man takes options from it (-P names a pager)"),
        EXACT("MANPATH", POLICY_ENV_CONFIG, "man formats pages from these directories"),
        EXACT("MANROFFOPT", POLICY_ENV_CONFIG, "man passes these options to groff"),
        PREFIX("GROFF_", POLICY_ENV_CONFIG, "groff reads macros and fonts from GROFF_TMAC_PATH/GROFF_FONT_PATH"),
        EXACT("BROWSER", POLICY_ENV_CODE, "programs start this browser as root"),
        EXACT("TERMINAL", POLICY_ENV_CODE, "programs start this terminal as root"),
        PREFIX("LESS", POLICY_ENV_CODE, "less runs LESSOPEN/LESSCLOSE, reads LESSKEY and takes options from LESS"),
        EXACT("MORE", POLICY_ENV_CONFIG, "more takes options from it"),
        PREFIX("SYSTEMD_", POLICY_ENV_CODE, "systemd tools start SYSTEMD_EDITOR and SYSTEMD_PAGER as root"),
        PREFIX("GIT_", POLICY_ENV_CODE, "git runs GIT_SSH_COMMAND, GIT_EDITOR, GIT_PAGER and reads GIT_CONFIG*"),
        EXACT("SSH_ASKPASS", POLICY_ENV_CODE, "ssh runs this program to ask for a password"),
        EXACT("SSH_ASKPASS_REQUIRE", POLICY_ENV_CODE, "it makes ssh run SSH_ASKPASS"),
        PREFIX("RSYNC_", POLICY_ENV_CODE, "rsync runs RSYNC_RSH and RSYNC_CONNECT_PROG"),
        EXACT("CVS_RSH", POLICY_ENV_CODE, "cvs runs this program"),
        EXACT("DIFFPROG", POLICY_ENV_CODE, "ucf and others run this program"),
        PREFIX("DBUS_", POLICY_ENV_CODE, "a bus address of the form unixexec: makes libdbus run a program"),
        EXACT("KUBECONFIG", POLICY_ENV_CODE, "kubectl runs the exec credential plugins this file names"),
        EXACT("AWS_CONFIG_FILE", POLICY_ENV_CODE, "the AWS tools run the credential_process this file names"),
        EXACT("AWS_SHARED_CREDENTIALS_FILE", POLICY_ENV_CODE,
              "the AWS tools run the credential_process this file names"),
        EXACT("GOOGLE_APPLICATION_CREDENTIALS", POLICY_ENV_CODE,
              "Google client libraries run the executable this file names"),
        EXACT("PSQLRC", POLICY_ENV_CODE, "psql runs this file (\\! runs commands)"),
        EXACT("CONFIG_SITE", POLICY_ENV_CODE, "configure scripts run this file"),

        /* package managers and build tools */
        PREFIX("APT_", POLICY_ENV_CODE,
               "apt reads its configuration from APT_CONFIG, and configuration runs commands "
               "(DPkg::Pre-Invoke)"),
        PREFIX("DPKG_", POLICY_ENV_CODE, "dpkg takes its root, admin directory, hooks and colors from DPKG_*"),
        PREFIX("DEBCONF_", POLICY_ENV_CODE, "debconf reads its configuration and databases from DEBCONF_*"),
        EXACT("DEBIAN_FRONTEND", POLICY_ENV_CODE, "the editor frontend starts an editor as root"),
        PREFIX("PIP_", POLICY_ENV_CODE,
               "pip takes its index, config file and options from PIP_*, so it installs code the user "
               "chose"),
        PREFIX("PIPX_", POLICY_ENV_CODE, "pipx takes its directories and pip arguments from PIPX_*"),
        PREFIX("UV_", POLICY_ENV_CODE, "uv takes its index and config file from UV_*"),
        PREFIX("NPM_CONFIG_", POLICY_ENV_CODE,
               "npm takes any setting from npm_config_* (script-shell, registry, userconfig)"),
        PREFIX("YARN_", POLICY_ENV_CODE, "yarn takes its registry and settings from YARN_*"),
        PREFIX("COMPOSER", POLICY_ENV_CODE, "composer reads its home, config and scripts from COMPOSER*"),
        PREFIX("CARGO_", POLICY_ENV_CODE,
               "cargo reads its home and config from CARGO_* (build.rustc-wrapper runs a program)"),
        PREFIX("RUSTC", POLICY_ENV_CODE, "cargo runs RUSTC and RUSTC_WRAPPER"),
        PREFIX("RUSTUP_", POLICY_ENV_CODE, "rustup takes its home and toolchains from RUSTUP_*"),
        EXACT("GOFLAGS", POLICY_ENV_CODE, "go takes flags such as -toolexec from it"),
        EXACT("GOENV", POLICY_ENV_CODE, "go reads its settings from this file"),
        EXACT("GOROOT", POLICY_ENV_CODE, "go runs its toolchain from this directory"),
        EXACT("GOPATH", POLICY_ENV_CODE, "go builds and installs code from this directory"),
        EXACT("GOTOOLCHAIN", POLICY_ENV_CODE, "go downloads and runs the toolchain it names"),
        EXACT("GOPROXY", POLICY_ENV_CODE, "go downloads modules from this proxy"),
        EXACT("GONOSUMDB", POLICY_ENV_CODE, "go skips checksum verification for these modules"),
        EXACT("GOINSECURE", POLICY_ENV_CODE, "go fetches these modules without TLS"),
        EXACT("GOPRIVATE", POLICY_ENV_CODE, "go skips checksum verification for these modules"),
        EXACT("GOSUMDB", POLICY_ENV_CODE, "go checks modules against this database"),
        EXACT("CONDARC", POLICY_ENV_CODE, "conda reads its channels from this file"),
        PREFIX("CONDA_", POLICY_ENV_CODE, "conda takes channels and settings from CONDA_*"),
        PREFIX("FLATPAK_", POLICY_ENV_CONFIG, "flatpak takes its installations from FLATPAK_*"),
        PREFIX("ZYPP_", POLICY_ENV_CONFIG, "zypper reads its configuration from ZYPP_*"),
        EXACT("RPM_CONFIGDIR", POLICY_ENV_CODE, "rpm reads macros from this directory, and macros run commands"),
        EXACT("MAKEFLAGS", POLICY_ENV_CODE, "make takes options and variables from it (CC=... runs a program)"),
        EXACT("MFLAGS", POLICY_ENV_CODE, "make takes options from it"),
        EXACT("GNUMAKEFLAGS", POLICY_ENV_CODE, "make takes options from it"),
        EXACT("MAKEFILES", POLICY_ENV_CODE, "make reads these makefiles first"),
        EXACT("CC", POLICY_ENV_CODE, "builds (dkms during a package install, too) run this compiler"),
        EXACT("CXX", POLICY_ENV_CODE, "builds run this compiler"),
        EXACT("CPP", POLICY_ENV_CODE, "builds run this preprocessor"),
        EXACT("LD", POLICY_ENV_CODE, "builds run this linker"),
        EXACT("AR", POLICY_ENV_CODE, "builds run this archiver"),
        EXACT("AS", POLICY_ENV_CODE, "builds run this assembler"),
        EXACT("CROSS_COMPILE", POLICY_ENV_CODE, "kernel module builds run $(CROSS_COMPILE)gcc"),
        EXACT("CFLAGS", POLICY_ENV_CODE, "compilers take -fplugin and -B from it"),
        EXACT("CXXFLAGS", POLICY_ENV_CODE, "compilers take -fplugin and -B from it"),
        EXACT("CPPFLAGS", POLICY_ENV_CODE, "compilers take -fplugin and -B from it"),
        EXACT("LDFLAGS", POLICY_ENV_CODE, "the compiler driver takes -B and linker plugins from it"),
        PREFIX("CCACHE_", POLICY_ENV_CODE,
               "ccache reads its configuration (compiler_check runs a command) from CCACHE_*"),
        EXACT("COMPILER_PATH", POLICY_ENV_CODE, "gcc runs its subprograms from these directories"),
        EXACT("GCC_EXEC_PREFIX", POLICY_ENV_CODE, "gcc runs its subprograms from this prefix"),
        EXACT("LIBRARY_PATH", POLICY_ENV_CODE, "the linker takes libraries from these directories"),
        EXACT("CPATH", POLICY_ENV_CONFIG, "the compiler takes headers from these directories"),
        EXACT("C_INCLUDE_PATH", POLICY_ENV_CONFIG, "the compiler takes headers from these directories"),
        EXACT("CPLUS_INCLUDE_PATH", POLICY_ENV_CONFIG, "the compiler takes headers from these directories"),

        /* TLS, downloads and credentials */
        PREFIX("OPENSSL_", POLICY_ENV_CODE,
               "OpenSSL reads OPENSSL_CONF and loads engines and providers from OPENSSL_ENGINES/MODULES"),
        PREFIX("SSL_CERT_", POLICY_ENV_CONFIG,
               "TLS clients trust the certificates in SSL_CERT_FILE/SSL_CERT_DIR, so downloads could be "
               "replaced"),
        EXACT("SSLKEYLOGFILE", POLICY_ENV_WRITE, "TLS libraries write session secrets to this file"),
        EXACT("REQUESTS_CA_BUNDLE", POLICY_ENV_CONFIG, "Python requests trusts these certificates"),
        EXACT("CURL_CA_BUNDLE", POLICY_ENV_CONFIG, "curl trusts these certificates"),
        EXACT("CURL_HOME", POLICY_ENV_CONFIG, "curl reads .curlrc from this directory"),
        EXACT("WGETRC", POLICY_ENV_CONFIG, "wget reads this configuration file"),
        EXACT("SYSTEM_WGETRC", POLICY_ENV_CONFIG, "wget reads this configuration file"),
        PREFIX("GNUTLS_", POLICY_ENV_CONFIG, "GnuTLS reads its priority file from GNUTLS_SYSTEM_PRIORITY_FILE"),
        EXACT("GNUPGHOME", POLICY_ENV_CODE,
              "gpg reads keys, trust and gpg.conf (which names programs) from this directory"),
        PREFIX("KRB5", POLICY_ENV_CONFIG, "Kerberos reads its configuration and credential caches from KRB5*"),

        /* toolkits and desktop: modules, plugins, drivers, configuration directories */
        PREFIX("XDG_", POLICY_ENV_CONFIG,
               "programs read configuration and data from XDG_CONFIG_*/XDG_DATA_* and write under "
               "XDG_*_HOME"),
        PREFIX("GTK", POLICY_ENV_CODE, "GTK loads modules from GTK_MODULES/GTK_PATH"),
        PREFIX("GIO_", POLICY_ENV_CODE, "GIO loads modules from GIO_EXTRA_MODULES/GIO_MODULE_DIR"),
        PREFIX("GDK_PIXBUF_", POLICY_ENV_CODE, "gdk-pixbuf loads image loaders named by GDK_PIXBUF_MODULE_FILE"),
        PREFIX("QT_", POLICY_ENV_CODE, "Qt loads plugins from QT_PLUGIN_PATH/QT_QPA_PLATFORM_PLUGIN_PATH"),
        PREFIX("QML", POLICY_ENV_CODE, "Qt loads QML code from QML_IMPORT_PATH/QML2_IMPORT_PATH"),
        PREFIX("GST_", POLICY_ENV_CODE, "GStreamer loads plugins from GST_PLUGIN_PATH"),
        PREFIX("LIBGL_", POLICY_ENV_CODE, "Mesa loads drivers from LIBGL_DRIVERS_PATH"),
        PREFIX("__EGL_", POLICY_ENV_CODE, "libglvnd loads EGL vendor libraries named by __EGL_VENDOR_LIBRARY_*"),
        PREFIX("__GLX_", POLICY_ENV_CODE, "libglvnd loads the GLX vendor library __GLX_VENDOR_LIBRARY_NAME names"),
        PREFIX("VK_", POLICY_ENV_CODE,
               "the Vulkan loader loads drivers and layers from VK_ICD_FILENAMES/VK_LAYER_PATH"),
        EXACT("LIBVA_DRIVERS_PATH", POLICY_ENV_CODE, "libva loads drivers from this directory"),
        EXACT("VDPAU_DRIVER_PATH", POLICY_ENV_CODE, "libvdpau loads drivers from this directory"),
        EXACT("ALSA_CONFIG_PATH", POLICY_ENV_CODE, "alsa-lib reads configuration that loads plugins from this file"),
        EXACT("SASL_PATH", POLICY_ENV_CODE, "Cyrus SASL loads plugins from this directory"),
        EXACT("SANE_CONFIG_DIR", POLICY_ENV_CODE, "SANE reads which backends to load from this directory"),

        /* terminal descriptions: root parses files the user chose */
        EXACT("TERMINFO", POLICY_ENV_CONFIG, "ncurses parses terminal descriptions from this directory"),
        EXACT("TERMINFO_DIRS", POLICY_ENV_CONFIG, "ncurses parses terminal descriptions from these directories"),
        EXACT("TERMCAP", POLICY_ENV_CONFIG, "termcap parses this terminal description"),
        EXACT("TERMPATH", POLICY_ENV_CONFIG, "termcap reads descriptions from these files"),
};

const size_t policy_env_n_denied = ELEMENTSOF(policy_env_denied_table);

static const char *const advice[_POLICY_ENV_KIND_MAX] = {
        [POLICY_ENV_AGENT] = "remove it from env_keep: the agent sets it itself",
        [POLICY_ENV_CODE] = "remove it from env_keep; if the program needs a value, set a fixed one in the "
                            "program's root-owned configuration or in a root-owned wrapper script",
        [POLICY_ENV_CONFIG] = "remove it from env_keep; if the program needs a value, set a fixed one in the "
                              "program's root-owned configuration or in a root-owned wrapper script",
        [POLICY_ENV_WRITE] = "remove it from env_keep; let the program use its default, root-owned location",
};

const PolicyEnvDenied *policy_env_denied(const char *name) {
        if (!name)
                return NULL;
        for (size_t i = 0; i < policy_env_n_denied; i++) {
                const PolicyEnvDenied *d = &policy_env_denied_table[i];

                if (d->prefix ? strncasecmp(name, d->name, strlen(d->name)) == 0 : strcasecmp(name, d->name) == 0)
                        return d;
        }
        return NULL;
}

const char *policy_env_advice(const PolicyEnvDenied *d) {
        if (!d || (unsigned) d->kind >= _POLICY_ENV_KIND_MAX)
                return advice[POLICY_ENV_CODE];
        return advice[d->kind];
}
