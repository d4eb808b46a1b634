# bash completion for currentctl                           -*- shell-script -*-
# Static script shipped by the packages; `currentctl completion bash` prints
# the same thing generated from the binary.

_currentctl_peers() {
    # Peer names from the running daemon, quietly.
    currentctl ${iface:+-i "$iface"} peers list 2>/dev/null | awk '{ print $1 }'
}

_currentctl() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local global="-i --interface --socket --help -h"
    local commands="genkey pubkey show peers rekey set metrics version completion help"

    # Find the command and subcommand, and the interface if given.
    local i cmd="" sub="" iface=""
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            -i | --interface) iface=${words[i+1]}; ((i++)) ;;
            --socket) ((i++)) ;;
            -*) ;;
            *)
                if [[ -z $cmd ]]; then cmd=${words[i]}
                elif [[ $cmd == peers && -z $sub ]]; then sub=${words[i]}
                fi ;;
        esac
    done

    case $prev in
        -i | --interface)
            COMPREPLY=($(compgen -W "$(ls /run/current 2>/dev/null | sed -n 's/\.sock$//p')" -- "$cur"))
            return ;;
        --socket)
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        --suite)
            COMPREPLY=($(compgen -W "mls-xwing-ed25519 mls-mlkem768-mldsa65 mls-x25519-aes128-ed25519 mls-p256-aes128-p256 mls-x25519-chacha-ed25519 mls-x448-aes256-ed448 mls-p521-aes256-p521 mls-x448-chacha-ed448 mls-p384-aes256-p384" -- "$cur"))
            return ;;
        --transport)
            COMPREPLY=($(compgen -W "udp tcp auto" -- "$cur"))
            return ;;
        --public-key | --endpoint | --allowed-ips | --keepalive | --timeout | --rekey-interval | --rekey-bytes)
            return ;;
    esac

    local peer_flags="--endpoint --allowed-ips --keepalive --transport"
    case $cmd in
        "")
            COMPREPLY=($(compgen -W "$commands $global" -- "$cur")) ;;
        genkey) COMPREPLY=($(compgen -W "--suite --help" -- "$cur")) ;;
        pubkey | metrics | version) COMPREPLY=($(compgen -W "--help" -- "$cur")) ;;
        show)
            if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "--json --help" -- "$cur"))
            else COMPREPLY=($(compgen -W "$(_currentctl_peers)" -- "$cur")); fi ;;
        peers)
            case $sub in
                "") COMPREPLY=($(compgen -W "list add remove update help" -- "$cur")) ;;
                list) COMPREPLY=($(compgen -W "--json --help" -- "$cur")) ;;
                add) COMPREPLY=($(compgen -W "--public-key $peer_flags --save --help" -- "$cur")) ;;
                remove)
                    if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "--save --help" -- "$cur"))
                    else COMPREPLY=($(compgen -W "$(_currentctl_peers)" -- "$cur")); fi ;;
                update)
                    if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$peer_flags --save --help" -- "$cur"))
                    else COMPREPLY=($(compgen -W "$(_currentctl_peers)" -- "$cur")); fi ;;
            esac ;;
        rekey)
            if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "--all --timeout --help" -- "$cur"))
            else COMPREPLY=($(compgen -W "$(_currentctl_peers)" -- "$cur")); fi ;;
        set) COMPREPLY=($(compgen -W "--rekey-interval --rekey-bytes --save --help" -- "$cur")) ;;
        completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")) ;;
        help) COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
    esac
}
complete -F _currentctl currentctl
