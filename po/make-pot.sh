#!/bin/sh
# Print the message template of shepherd (po/shepherd.pot) for the sources under SRCDIR, and
# write their list to po/POTFILES there: every CLI source and header (the strings the CLI
# prints). No creation date in the header, so the template changes only when the strings do.
# Used by 'make update-pot' and by tests/cli/t0003-i18n.sh (which checks it is current).
set -eu
srcdir=${1:?usage: make-pot.sh SRCDIR [VERSION]}
version=${2:-}
xgettext=${XGETTEXT:-xgettext}
cd "$srcdir"
[ -n "$version" ] || version=$(sed -n 's/^AC_INIT(\[shepherd\],\[\([^]]*\)\].*/\1/p' configure.ac)
ls cli/*.c cli/*.h | LC_ALL=C sort >po/POTFILES.tmp
mv po/POTFILES.tmp po/POTFILES
"$xgettext" --from-code=UTF-8 --language=C --keyword=_ --keyword=N_ \
	--add-comments=TRANSLATORS: --add-location=file --sort-by-file \
	--package-name=shepherd --package-version="$version" \
	--msgid-bugs-address=https://github.com/shepherd-vm/shepherd/issues \
	--copyright-holder='the shepherd authors' \
	--files-from=po/POTFILES -o - | sed -e '/^"POT-Creation-Date:/d'
