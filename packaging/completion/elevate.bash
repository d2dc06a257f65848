# bash completion for elevate, elevatectl, elevated, elevate-notify, elevate-fleetd -*- shell-script -*-
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Installed as .../bash-completion/completions/elevate, with elevatectl, elevated,
# elevate-notify and elevate-fleetd as links to it (bash-completion loads a file by the command's name).
# What only the agent knows comes from the agent, as the user who presses TAB:
#   - the programs your rules name, and their rule ids: `elevate -l`;
#   - your waiting requests: `elevate --status --json`;
#   - requests you may approve and grants you may see: `elevatectl pending|grants --json`.
# Those calls never elevate anything and leave no audit row; if the agent is not there,
# they print nothing and the completion offers nothing more.

# The agent's socket as given on the command line being completed (--socket PATH).
_elevate_socket_arg() {
        local i
        for ((i = 1; i < ${#words[@]} - 1; i++)); do
                if [[ ${words[i]} == --socket ]]; then
                        printf -- '--socket\n%s\n' "${words[i + 1]}"
                        return
                fi
        done
}

# Values of one JSON string key from a pretty-printed answer: only keys at the start of a
# line, values of the id alphabet, so text a user wrote (a reason, an argument) is never
# taken for one.
_elevate_json_values() {
        local key=$1
        shift
        "$@" 2>/dev/null </dev/null | sed -n 's/^ *"'"$key"'": "\([A-Za-z0-9._:@-]*\)",\{0,1\}$/\1/p'
}

# `elevate -l` lines: "  ACTION  RULE-ID  SUMMARY"; prints "PROGRAM RULE-ID" for rules
# whose summary starts with an absolute path.
_elevate_rule_programs() {
        local -a sock
        mapfile -t sock < <(_elevate_socket_arg)
        elevate "${sock[@]}" -l 2>/dev/null </dev/null |
                sed -n 's/^  \(allow\|approve\) \+\([A-Za-z0-9._:@-]\+\) \+\(\/[^ ]*\).*$/\3 \2/p'
}

_elevate_init() {
        if declare -F _init_completion >/dev/null; then
                _init_completion || return 1
        else
                words=("${COMP_WORDS[@]}")
                cword=$COMP_CWORD
                cur=${COMP_WORDS[COMP_CWORD]}
                prev=${COMP_WORDS[COMP_CWORD - 1]}
        fi
        return 0
}

_elevate_files() {
        if declare -F _filedir >/dev/null; then
                _filedir "$@"
        else
                compopt -o filenames 2>/dev/null
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        fi
}

_elevate_words() {
        mapfile -t COMPREPLY < <(compgen -W "$1" -- "$cur")
}

_elevate() {
        local cur prev words cword
        _elevate_init || return
        local opts='-l --list --status --json --cancel --forget --respond -u --user
                -n --non-interactive --reason --socket -h --help --version'
        local -a sock
        local i prog=0

        # Options end at PROGRAM (and at --): from there on it is PROGRAM's command line.
        for ((i = 1; i < cword; i++)); do
                case ${words[i]} in
                --) prog=$((i + 1)); break ;;
                -u | --user | --reason | --socket | --cancel) ((i++)) ;;
                --respond) ((i += 2)) ;;
                -*) ;;
                *) prog=$i; break ;;
                esac
        done
        if ((prog > 0 && prog < cword)); then
                if declare -F _command_offset >/dev/null; then
                        _command_offset "$prog"
                else
                        _elevate_files
                fi
                return
        fi

        mapfile -t sock < <(_elevate_socket_arg)
        case $prev in
        -u | --user)
                mapfile -t COMPREPLY < <(compgen -u -- "$cur")
                return ;;
        --socket)
                _elevate_files
                return ;;
        --reason)
                return ;;
        --cancel | --respond)
                _elevate_words "$(_elevate_json_values ticket elevate "${sock[@]}" --status --json)"
                return ;;
        --status)
                _elevate_words '--json'
                return ;;
        esac
        if [[ $cur == -* && prog -eq 0 ]]; then
                _elevate_words "$opts"
                return
        fi
        # PROGRAM: what your rules name, then every command and file
        local programs
        programs=$(_elevate_rule_programs | cut -d' ' -f1)
        mapfile -t COMPREPLY < <(compgen -W "$programs" -- "$cur"; compgen -c -- "$cur")
        if [[ $cur == */* ]]; then
                local -a files
                mapfile -t files < <(compgen -f -- "$cur")
                COMPREPLY+=("${files[@]}")
                compopt -o filenames 2>/dev/null
        fi
}

_elevatectl() {
        local cur prev words cword
        _elevate_init || return
        local global='-H --host --socket --state-dir -h --help --version'
        local commands='audit policy reload pending approve deny grants revoke respond keys host-key fleet'
        local -a sock
        local i cmd=0 remote=0

        for ((i = 1; i < cword; i++)); do
                case ${words[i]} in
                -H | --host) remote=1; ((i++)) ;;
                --socket | --state-dir) ((i++)) ;;
                -*) ;;
                *) cmd=$i; break ;;
                esac
        done
        mapfile -t sock < <(_elevate_socket_arg)

        case $prev in
        -H | --host)
                if [[ $cmd -eq 0 ]]; then
                        if declare -F _known_hosts_real >/dev/null; then
                                _known_hosts_real -a -- "$cur"
                        else
                                mapfile -t COMPREPLY < <(compgen -A hostname -- "$cur")
                        fi
                        return
                fi ;;
        --socket | --state-dir | --db | --key-file | --site-key | --output | --policy | --creds | --hosts | \
                --archive | --out | --out-dir | --trust-dir | --part | -o)
                _elevate_files
                return ;;
        --since | -S | --until | -U | --before | --limit | --lines | -n | --ttl | --comment | --epoch | --serial | \
                --expires | --issued | --request | -r | --nats | --group | --replicas | --last-serial | \
                --last-sha256 | --last-issued)
                return ;;
        --user | -u)
                mapfile -t COMPREPLY < <(compgen -u -- "$cur")
                return ;;
        --event | -e)
                _elevate_words 'agent-start agent-stop policy-loaded policy-rejected request decision pending
                        approved denied refused cancelled grant expired revoked launch started terminate
                        launch-failed exit adopted code-accepted code-rejected code-refused rate-limited
                        rate-limit-ended'
                return ;;
        --kind)
                _elevate_words 'signer approver'
                return ;;
        esac

        if ((cmd == 0)); then
                if [[ $cur == -* ]]; then
                        _elevate_words "$global"
                else
                        _elevate_words "$commands"
                fi
                return
        fi

        local sub=${words[cmd]} sub2=${words[cmd + 1]}
        # the position of the word being completed after the command (1: its first argument)
        local n=$((cword - cmd))
        case $sub in
        audit)
                local show='-S --since -U --until -n --limit --lines -f --follow -u --user -e --event -r --request
                        --json --utc -h --help'
                if ((n == 1)); then
                        _elevate_words "init verify archive $show"
                elif [[ $sub2 == verify ]]; then
                        _elevate_words '--db --archive --key-file --json'
                elif [[ $sub2 == archive ]]; then
                        _elevate_words '--before --out'
                elif [[ $sub2 == init ]]; then
                        :
                else
                        _elevate_words "$show"
                fi ;;
        policy)
                if ((n == 1)); then
                        _elevate_words 'check explain status sign verify'
                        return
                fi
                case $sub2 in
                sign)
                        if [[ $cur == -* ]]; then
                                _elevate_words '--key --serial --expires --issued --host --group --part -o --output'
                        else
                                _elevate_files
                        fi ;;
                verify)
                        if [[ $cur == -* ]]; then
                                _elevate_words '--trust-dir --host --group --last-serial --last-sha256 --last-issued --json'
                        else
                                _elevate_files
                        fi ;;
                check)
                        if [[ $cur == -* ]]; then
                                _elevate_words '--canonical'
                        else
                                _elevate_files '@(json)'
                        fi ;;
                explain)
                        local j after=0
                        for ((j = cmd + 2; j < cword; j++)); do
                                case ${words[j]} in
                                --user | --policy) ((j++)) ;;
                                --) after=$((j + 1)); break ;;
                                -*) ;;
                                *) after=$j; break ;;
                                esac
                        done
                        if ((after > 0 && after < cword)); then
                                _elevate_files
                        elif ((after > 0)) || [[ $cur != -* ]]; then
                                mapfile -t COMPREPLY < <(compgen -c -- "$cur")
                                [[ $cur == */* ]] && _elevate_files
                        else
                                _elevate_words '--user --policy --'
                        fi ;;
                status)
                        _elevate_words '--json' ;;
                esac ;;
        pending | grants)
                _elevate_words '--json' ;;
        approve | deny)
                if ((n == 1)); then
                        # with -H the requests are another machine's: none offered
                        ((remote)) ||
                                _elevate_words "$(_elevate_json_values ticket elevatectl "${sock[@]}" pending --json)"
                elif [[ $sub == approve ]]; then
                        _elevate_words '--ttl --comment'
                else
                        _elevate_words '--comment'
                fi ;;
        revoke)
                if ((n == 1)) && ! ((remote)); then
                        _elevate_words "$(_elevate_json_values id elevatectl "${sock[@]}" grants --json)"
                fi ;;
        respond)
                if ((n > 1)); then
                        _elevate_words '--site-key --host --ttl --json'
                fi ;;
        keys)
                if ((n == 1)); then
                        _elevate_words 'new derive rotate'
                elif [[ $sub2 == new ]]; then
                        _elevate_words '--site-key --kind --out'
                elif [[ $sub2 == derive ]]; then
                        _elevate_words '--site-key --host --epoch --output'
                fi ;;
        fleet)
                if ((n == 1)); then
                        _elevate_words 'publish status authz init pending watch approve deny audit'
                elif [[ $sub2 == publish ]]; then
                        if [[ $cur == -* ]]; then
                                _elevate_words '--nats --creds --host --group --replicas --json --force'
                        else
                                _elevate_files
                        fi
                elif [[ $sub2 == status ]]; then
                        _elevate_words '--nats --creds --json'
                elif [[ $sub2 == authz ]]; then
                        _elevate_words '--hosts --out-dir --approvers'
                elif [[ $sub2 == init ]]; then
                        _elevate_words '--nats --creds --replicas --audit-max-age'
                elif [[ $sub2 == pending || $sub2 == watch ]]; then
                        _elevate_words '--nats --creds --json --host --user --program'
                elif [[ $sub2 == approve ]]; then
                        if [[ $prev == --key ]]; then _elevate_files; else _elevate_words '--key --ttl --comment'; fi
                elif [[ $sub2 == deny ]]; then
                        if [[ $prev == --key ]]; then _elevate_files; else _elevate_words '--key --comment'; fi
                elif [[ $sub2 == audit ]]; then
                        _elevate_words '--nats --creds --host --since --follow --json'
                fi ;;
        esac
}

_elevated() {
        local cur prev words cword
        _elevate_init || return
        case $prev in
        --socket | --policy | --state-dir | --endpoint-key | --trust-dir | --fleet-conf | --policy-dir | --audit-archive-dir | --launcher-socket)
                _elevate_files
                return ;;
        --fleet-user)
                COMPREPLY=($(compgen -u -- "$cur"))
                return ;;
        --host-id | --audit-retention)
                return ;;
        esac
        _elevate_words '--socket --policy --state-dir --host-id --endpoint-key --fleet-user --trust-dir --fleet-conf
                --policy-dir --audit-retention --audit-archive-dir --launcher-socket --foreground --debug -h --help --version'
}

_elevate_notify() {
        local cur prev words cword
        _elevate_init || return
        if [[ $prev == --socket ]]; then
                _elevate_files
                return
        fi
        _elevate_words '--socket --print --once --unique -v --verbose -h --help --version'
}

_elevate_fleetd() {
        local cur prev words cword
        _elevate_init || return
        case $prev in
        --config | --creds | --socket | --state-dir)
                _elevate_files
                return ;;
        --nats | --host-id | --groups | --reconnect-max)
                return ;;
        esac
        _elevate_words '--config --nats --creds --host-id --groups --socket --state-dir --reconnect-max --no-helpdesk --no-audit -h --help'
}

complete -F _elevate elevate
complete -F _elevatectl elevatectl
complete -F _elevated elevated
complete -F _elevate_notify elevate-notify
complete -F _elevate_fleetd elevate-fleetd
