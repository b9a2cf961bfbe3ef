# shellcheck shell=sh
# Template for scenarios that need a zpcid binary: skipped until it is built.
zt_require_bin zpcidctl || return 0

zt_check "zpcidctl --help" zpcidctl --help
