# bash completion for hagctl (installed as bash-completion/completions/hagctl).
# Subcommands and options as in `hagctl --help`; NAIs are completed from the running
# hag-control (`hagctl -o json bindings list`) when it answers within a second.

_hagctl_nais() {
    local server=()
    local i
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        case ${COMP_WORDS[i]} in
            -s | --server) server=(--server "${COMP_WORDS[i + 1]}") ;;
        esac
    done
    hagctl "${server[@]}" --timeout 1 -o json bindings list --limit 200 2>/dev/null |
        sed -n 's/.*"nai": *"\([^"]*\)".*/\1/p'
}

_hagctl() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local globals="-s --server -o --output --timeout --dataplane -h --help"
    case $prev in
        -o | --output)
            COMPREPLY=($(compgen -W "table json" -- "$cur"))
            return
            ;;
        -s | --server | --dataplane | --timeout | --limit | --page-token | --after | --bid | \
            --prefix | --mag | --coa | --session | --match | --rule | --priority | \
            --expected-version)
            return
            ;;
        --nai)
            COMPREPLY=($(compgen -W "$(_hagctl_nais)" -- "$cur"))
            return
            ;;
    esac

    # The subcommand path typed so far (options and their values skipped).
    local path=() i w
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
            -s | --server | -o | --output | --timeout | --dataplane | --limit | --page-token | \
                --after | --bid | --prefix | --mag | --coa | --nai | --protocol | --remote-port | \
                --local-port | --remote | --local | --dscp | --spi | --session | --match | --rule | \
                --priority | --expected-version)
                ((i++))
                ;;
            -*) ;;
            *) path+=("$w") ;;
        esac
    done

    local opts
    case "${path[*]}" in
        "")
            opts="bindings counters dataplane log-level policy version $globals"
            ;;
        bindings)
            opts="list show watch delete"
            ;;
        "bindings list")
            opts="--nai --prefix --mag --coa --limit --page-token --all"
            ;;
        "bindings show" | "bindings delete")
            if [[ $cur == -* ]]; then
                [[ ${path[1]} == delete ]] && opts="--bid"
            else
                COMPREPLY=($(compgen -W "$(_hagctl_nais)" -- "$cur"))
                return
            fi
            ;;
        "bindings watch")
            opts="--snapshot"
            ;;
        dataplane)
            opts="status stats sessions paths check"
            ;;
        "dataplane sessions" | "dataplane paths")
            opts="--limit --after --all"
            ;;
        policy)
            opts="show test application rule profile default assign unassign revert"
            ;;
        "policy application" | "policy rule" | "policy profile")
            opts="add replace remove"
            ;;
        "policy default")
            opts="set remove"
            ;;
        "policy application add" | "policy application replace")
            opts="--match --expected-version"
            ;;
        "policy rule add" | "policy rule replace")
            opts="--priority --expected-version"
            ;;
        "policy profile add" | "policy profile replace")
            opts="--rule --expected-version"
            ;;
        "policy revert" | "policy application remove" | "policy rule remove" | \
            "policy profile remove" | "policy default set" | "policy default remove")
            opts="--expected-version"
            ;;
        "policy show" | "policy test" | "policy assign" | "policy unassign")
            if [[ $cur == -* ]]; then
                case ${path[1]} in
                    show) opts="--session --no-counters" ;;
                    test) opts="--session --protocol --remote-port --local-port --remote --local --dscp --spi" ;;
                    *) opts="--expected-version" ;;
                esac
            else
                COMPREPLY=($(compgen -W "$(_hagctl_nais)" -- "$cur"))
                return
            fi
            ;;
        log-level)
            opts="control dataplane"
            ;;
        "log-level control" | "log-level dataplane")
            opts="trace debug info warn error critical off"
            ;;
        *)
            opts=""
            ;;
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}

complete -F _hagctl hagctl
