#!/bin/sh
# Print the message template of shepherd (po/shepherd.pot) for the sources under SRCDIR, and
# write their list to po/POTFILES there (or to $POTFILES_OUT): every CLI source and header, the
# strings the CLI prints. No creation date in the header, so the template changes only when the
# strings do. Used by 'make update-pot' and by tests/cli/t0003-i18n.sh (which checks that the
# committed template is current).
set -eu
srcdir=${1:?usage: make-pot.sh SRCDIR [VERSION]}
version=${2:-}
xgettext=${XGETTEXT:-xgettext}
potfiles=${POTFILES_OUT:-$srcdir/po/POTFILES}
case $potfiles in /*) ;; *) potfiles=$(pwd)/$potfiles ;; esac
cd "$srcdir"
[ -n "$version" ] || version=$(sed -n 's/^AC_INIT(\[shepherd\],\[\([^]]*\)\].*/\1/p' configure.ac)
ls cli/*.c cli/*.h | LC_ALL=C sort >"$potfiles.tmp"
mv "$potfiles.tmp" "$potfiles"
"$xgettext" --from-code=UTF-8 --language=C --keyword=_ --keyword=N_ \
	--add-comments=TRANSLATORS: --add-location=file --sort-by-file \
	--package-name=shepherd --package-version="$version" \
	--msgid-bugs-address=https://github.com/shepherd-vm/shepherd/issues \
	--copyright-holder='the shepherd authors' \
	--files-from="$potfiles" -o - | sed -e '/^"POT-Creation-Date:/d'
