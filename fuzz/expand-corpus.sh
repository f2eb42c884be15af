#!/usr/bin/env bash
# Unpacks the minimized corpora (corpus-archive/<target>.tar.gz) into corpus/<target>/, the
# working directories cargo fuzz and the replay test read. corpus/ is not tracked: only the
# archives, the named seeds (seeds/) and the crash reproducers (regressions/) are.
#
# Usage: fuzz/expand-corpus.sh            unpack every archive (existing files are kept)
#        fuzz/expand-corpus.sh --pack T   rewrite corpus-archive/T.tar.gz from corpus/T/
#                                         (after a `cargo fuzz cmin T`; once per release)
set -euo pipefail
cd "$(dirname "$0")"
if [ "${1:-}" = "--pack" ]; then
    target=${2:?usage: expand-corpus.sh --pack TARGET}
    (cd corpus && tar --sort=name --owner=0 --group=0 --numeric-owner \
        --mtime='2026-01-01 00:00Z' -cf - "$target" | gzip -n -9) >"corpus-archive/$target.tar.gz"
    echo "packed corpus/$target ($(ls "corpus/$target" | wc -l) inputs) into corpus-archive/$target.tar.gz"
    exit 0
fi
mkdir -p corpus
for archive in corpus-archive/*.tar.gz; do
    tar -xzf "$archive" -C corpus --skip-old-files
done
for dir in corpus/*/; do
    echo "corpus/$(basename "$dir"): $(ls "$dir" | wc -l) inputs"
done
