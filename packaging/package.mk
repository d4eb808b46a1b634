# Packaging targets, included from the repository's Makefile
# (`include packaging/package.mk`) or run alone (`make -f packaging/package.mk`).
#
#   make package         build dist/current_<version>_<arch>.deb and .rpm
#   make package-check   build them, then run packaging/check.sh (lintian,
#                        rpm, systemd-analyze, man, scratch-root install);
#                        installs what it needs with apt-get when root
#   make package-clean   remove dist/
#
# Variables: GO (go), DIST (dist), GOARCH, VERSION, COMMIT, PKG_NAME,
# PKG_RELEASE, PKG_MAINTAINER, COMPLETIONS (auto|static|generated).
GO ?= go
DIST ?= dist
PACKAGING_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

.PHONY: package package-check package-clean

package:
	GO="$(GO)" DIST="$(DIST)" bash $(PACKAGING_DIR)/build.sh

package-check: package
	GO="$(GO)" DIST="$(DIST)" bash $(PACKAGING_DIR)/check.sh

package-clean:
	rm -rf "$(DIST)"
