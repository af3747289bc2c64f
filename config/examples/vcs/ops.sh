# The operations of config/examples/vcs.toml, one shell function per tool and operation, run in a
# repository made by gen-repo.sh (the current directory). Each benchmark's shell line sources
# this file, changes to its repository (`cd`, a builtin) and calls one function; the shell's own
# spawn time is subtracted by benchfleet, so what is measured is the tool.
# `other` is the branch (jj: bookmark) that forks at the middle of `main`.

git_status() { git status --porcelain; }
git_log() { git log --oneline main; }
git_diff() { git diff other main; }
git_blame() { git blame hot.txt; }
git_checkout() { git checkout -q other; }
git_checkout_back() { git checkout -q main; }
git_commit_prepare() { date +%s%N >>bench-commit.txt && git add bench-commit.txt; }
git_commit() { git commit -q -m "bench commit"; }

jj_status() { jj status; }
jj_log() { jj log --no-graph -r '::main'; }
jj_diff() { jj diff --from other --to main; }
jj_blame() { jj file annotate hot.txt; }
jj_checkout() { jj new --quiet other; }
jj_checkout_back() { jj new --quiet main; }
jj_commit_prepare() { date +%s%N >>bench-commit.txt; }
jj_commit() { jj commit --quiet -m "bench commit"; }
