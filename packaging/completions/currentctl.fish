# fish completion for currentctl. Static script shipped by the packages.

function __currentctl_peers
    currentctl peers list 2>/dev/null | string replace -r '\s.*' ''
end

set -l commands genkey pubkey show peers rekey set metrics version completion help
complete -c currentctl -f
complete -c currentctl -s i -l interface -x -d 'interface whose daemon to talk to' -a '(path basename -E .sock /run/current/*.sock 2>/dev/null)'
complete -c currentctl -l socket -r -F -d 'control socket path'
complete -c currentctl -s h -l help -d 'show help'

complete -c currentctl -n "not __fish_seen_subcommand_from $commands" -a genkey -d 'write a new private key to standard output'
complete -c currentctl -n "not __fish_seen_subcommand_from $commands" -a pubkey -d 'read a private key on stdin, write its public key'
complete -c currentctl -n "not __fish_seen_subcommand_from $commands" -a show -d 'show the interface and its peers'
complete -c currentctl -n "not __fish_seen_subcommand_from $commands" -a peers -d 'list, add, remove or change peers'
complete -c currentctl -n "not __fish_seen_subcommand_from $commands" -a rekey -d 'start an epoch update'
complete -c currentctl -n "not __fish_seen_subcommand_from $commands" -a set -d 'change the rekey policy'
complete -c currentctl -n "not __fish_seen_subcommand_from $commands" -a metrics -d 'print metrics (Prometheus text format)'
complete -c currentctl -n "not __fish_seen_subcommand_from $commands" -a version -d 'print versions'
complete -c currentctl -n "not __fish_seen_subcommand_from $commands" -a completion -d 'print a shell completion script'

complete -c currentctl -n "__fish_seen_subcommand_from genkey" -l suite -x -d 'MLS cipher suite' -a 'mls-xwing-ed25519 mls-mlkem768-mldsa65 mls-x25519-aes128-ed25519 mls-p256-aes128-p256 mls-x25519-chacha-ed25519 mls-x448-aes256-ed448 mls-p521-aes256-p521 mls-x448-chacha-ed448 mls-p384-aes256-p384'
complete -c currentctl -n "__fish_seen_subcommand_from show" -l json -d 'print JSON'
complete -c currentctl -n "__fish_seen_subcommand_from show rekey" -a '(__currentctl_peers)'
complete -c currentctl -n "__fish_seen_subcommand_from rekey" -l all -d 'every established session'
complete -c currentctl -n "__fish_seen_subcommand_from rekey" -l timeout -x -d 'how long to wait'
complete -c currentctl -n "__fish_seen_subcommand_from set" -l rekey-interval -x -d 'longest time between epoch updates'
complete -c currentctl -n "__fish_seen_subcommand_from set" -l rekey-bytes -x -d 'most traffic between epoch updates'
complete -c currentctl -n "__fish_seen_subcommand_from completion" -a 'bash zsh fish'

set -l peersubs list add remove update
complete -c currentctl -n "__fish_seen_subcommand_from peers; and not __fish_seen_subcommand_from $peersubs" -a list -d 'one line per peer'
complete -c currentctl -n "__fish_seen_subcommand_from peers; and not __fish_seen_subcommand_from $peersubs" -a add -d 'add a peer'
complete -c currentctl -n "__fish_seen_subcommand_from peers; and not __fish_seen_subcommand_from $peersubs" -a remove -d 'remove a peer'
complete -c currentctl -n "__fish_seen_subcommand_from peers; and not __fish_seen_subcommand_from $peersubs" -a update -d 'change a peer'
complete -c currentctl -n "__fish_seen_subcommand_from list" -l json -d 'print JSON'
complete -c currentctl -n "__fish_seen_subcommand_from remove update" -a '(__currentctl_peers)'
complete -c currentctl -n "__fish_seen_subcommand_from add" -l public-key -x -d 'the peer public key'
complete -c currentctl -n "__fish_seen_subcommand_from add update" -l endpoint -x -d 'HOST:PORT of the peer'
complete -c currentctl -n "__fish_seen_subcommand_from add update" -l allowed-ips -x -d 'prefixes routed to the peer'
complete -c currentctl -n "__fish_seen_subcommand_from add update" -l keepalive -x -d 'keepalive interval'
complete -c currentctl -n "__fish_seen_subcommand_from add update" -l transport -x -a 'udp tcp auto'
complete -c currentctl -n "__fish_seen_subcommand_from add remove update set" -l save -d 'also write the configuration file'
