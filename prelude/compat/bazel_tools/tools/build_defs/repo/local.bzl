"""local_repository and new_local_repository, as Bazel 7's
@bazel_tools//tools/build_defs/repo:local.bzl offers them (bp's native ones)."""

local_repository = native.local_repository
new_local_repository = native.new_local_repository
