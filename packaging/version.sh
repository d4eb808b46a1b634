# Sourced by build.sh and check.sh (bash). Sets, unless already set:
#   VERSION      what the binaries report: git describe --tags --always --dirty, or "dev"
#   COMMIT       git rev-parse --short HEAD, or "unknown"
#   PKG_VERSION  a version dpkg and rpm both order correctly:
#                v1.2.3             -> 1.2.3
#                v1.2.3-4-gabcdef0  -> 1.2.3+4.gabcdef0
#                abcdef0 (no tags)  -> 0.0.0+git.<commit count>.gabcdef0
#                a "-dirty" suffix becomes ".dirty"; no git at all gives 0.0.0+dev
if [ -z "${VERSION:-}" ]; then
	VERSION=$(git describe --tags --always --dirty 2>/dev/null) || VERSION=dev
	[ -n "$VERSION" ] || VERSION=dev
fi
if [ -z "${COMMIT:-}" ]; then
	COMMIT=$(git rev-parse --short HEAD 2>/dev/null) || COMMIT=unknown
	[ -n "$COMMIT" ] || COMMIT=unknown
fi
if [ -z "${PKG_VERSION:-}" ]; then
	_v=${VERSION#v}
	_dirty=
	case $_v in *-dirty) _v=${_v%-dirty} _dirty=.dirty ;; esac
	if [[ $_v =~ ^([0-9]+\.[0-9]+\.[0-9]+)(-([0-9A-Za-z.]+))?-([0-9]+)-g([0-9a-f]+)$ ]]; then
		# v1.2.3[-rc1]-4-gabcdef0: after the tag.
		PKG_VERSION=${BASH_REMATCH[1]}${BASH_REMATCH[3]:+~${BASH_REMATCH[3]}}+${BASH_REMATCH[4]}.g${BASH_REMATCH[5]}$_dirty
	elif [[ $_v =~ ^([0-9]+\.[0-9]+\.[0-9]+)(-([0-9A-Za-z.]+))?$ ]]; then
		# v1.2.3 or v1.2.3-rc1 (a pre-release sorts before its release: ~).
		PKG_VERSION=${BASH_REMATCH[1]}${BASH_REMATCH[3]:+~${BASH_REMATCH[3]}}${_dirty:++dirty}
	elif [[ $_v =~ ^[0-9a-f]{4,}$ ]]; then
		_n=$(git rev-list --count HEAD 2>/dev/null) || _n=0
		PKG_VERSION=0.0.0+git.$_n.g$_v$_dirty
	else
		PKG_VERSION=0.0.0+dev
	fi
	unset _v _dirty _n
fi
