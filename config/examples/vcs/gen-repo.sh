#!/bin/sh
# Generate a git repository for config/examples/vcs.toml with `git fast-import`:
#   gen-repo.sh DIR COMMITS FILES BYTES
# DIR is replaced. The first commit adds FILES files of about BYTES bytes each; every later commit
# changes one line of `hot.txt` (a 200-line file blamed across the whole history) and rewrites
# four other files, changing some of their lines (line i changes every (1 + i % 8)th revision of
# its file). Branch `main` has COMMITS commits; branch `other` forks at the middle, so checking
# it out rewrites every file touched in the second half. Deterministic: the same arguments give
# the same commits (author dates are fixed), so every run measures the same repository.
# Needs git and awk only.
set -eu
if [ $# -ne 4 ]; then
  echo "usage: gen-repo.sh DIR COMMITS FILES BYTES" >&2
  exit 2
fi
dir=$1 commits=$2 files=$3 bytes=$4
for n in "$commits" "$files" "$bytes"; do
  case $n in
    '' | *[!0-9]*) echo "gen-repo.sh: COMMITS, FILES and BYTES must be positive integers, not '$n'" >&2; exit 2 ;;
  esac
done
if [ "$commits" -lt 2 ] || [ "$files" -lt 1 ] || [ "$bytes" -lt 1 ]; then
  echo "gen-repo.sh: need COMMITS >= 2, FILES >= 1, BYTES >= 1" >&2
  exit 2
fi
rm -rf "$dir"
git init -q -b main "$dir"
git -C "$dir" config user.name Bench
git -C "$dir" config user.email bench@example.com
git -C "$dir" config gc.auto 0
awk -v commits="$commits" -v files="$files" -v bytes="$bytes" '
function path(f) { return sprintf("src/d%02d/file-%05d.txt", f % 64, f) }
# Content of file f at its revision r: lines of about 48 bytes.
function body(f, r,    n, i, s) {
  n = int(bytes / 48); if (n < 1) n = 1
  s = ""
  for (i = 0; i < n; i++)
    s = s sprintf("file %05d line %05d value %09d %s\n", f, i, int(r / (1 + i % 8)) * 7919 % 1000003, "abcdefgh")
  return s
}
function hot(c,    i, last, s) {
  s = ""
  for (i = 0; i < 200; i++) {
    last = c - ((c - i) % 200 + 200) % 200
    if (last < 1) last = 0
    s = s sprintf("hot line %03d last changed in commit %06d\n", i, last)
  }
  return s
}
function blob(p, s) { printf "M 100644 inline %s\ndata %d\n%s\n", p, length(s), s }
function commit(c, ref, from,    msg) {
  msg = sprintf("commit %d", c)
  printf "commit %s\nmark :%d\n", ref, c
  printf "author Bench <bench@example.com> %d +0000\n", 1700000000 + c * 60
  printf "committer Bench <bench@example.com> %d +0000\n", 1700000000 + c * 60
  printf "data %d\n%s\n", length(msg), msg
  if (from) printf "from :%d\n", from
}
BEGIN {
  commit(1, "refs/heads/main", 0)
  for (f = 0; f < files; f++) { rev[f] = 0; blob(path(f), body(f, 0)) }
  blob("hot.txt", hot(1))
  mid = int(commits / 2)
  for (c = 2; c <= commits; c++) {
    commit(c, "refs/heads/main", 0)
    blob("hot.txt", hot(c))
    for (k = 0; k < 4 && k < files; k++) {
      f = (c * 7 + k * 104729) % files
      rev[f]++
      blob(path(f), body(f, rev[f]))
    }
  }
  printf "reset refs/heads/other\nfrom :%d\n\n", mid
}' | git -C "$dir" fast-import --quiet
git -C "$dir" reset -q --hard main
