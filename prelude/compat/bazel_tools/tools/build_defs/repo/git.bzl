"""git_repository and new_git_repository, as @bazel_tools//tools/build_defs/repo:git.bzl
defines them: a clone of `remote` (a URL or a local path, so that a local clone serves
it offline) at `commit`, `tag` or `branch`."""

load(":utils.bzl", "PATCH_AND_BUILD_FILE_ATTRS", "patch", "update_attrs", "workspace_and_buildfile")

def _git(ctx, *args):
    done = ctx.execute(["git"] + list(args), environment = {"GIT_TERMINAL_PROMPT": "0"})
    if done.return_code:
        fail("error running git {} for @{}:\n{}{}".format(" ".join(args), ctx.name,
                                                        done.stdout, done.stderr))
    return done.stdout.strip()

def _clone(ctx):
    refs = [r for r in (ctx.attr.commit, ctx.attr.tag, ctx.attr.branch) if r]
    if len(refs) != 1:
        fail("Exactly one of commit, tag, or branch must be provided")
    into = str(ctx.path(".bp-clone"))
    _git(ctx, "clone", "--quiet", "--no-checkout", ctx.attr.remote, into)
    ref = ctx.attr.commit or ctx.attr.tag or "origin/" + ctx.attr.branch
    _git(ctx, "-C", into, "checkout", "--quiet", "--detach", ref)
    if ctx.attr.init_submodules:
        _git(ctx, "-C", into, "submodule", "update", "--init", "--recursive", "--quiet")
    commit = _git(ctx, "-C", into, "rev-parse", "HEAD")
    source = into + ("/" + ctx.attr.strip_prefix if ctx.attr.strip_prefix else "")
    done = ctx.execute(["/bin/bash", "-c", 'shopt -s dotglob && mv "$1"/* . && rm -rf "$2"',
                        "_", source, into])
    if done.return_code:
        fail("cannot lay out @{}: {}".format(ctx.name, done.stderr))
    return commit

_COMMON = {
    "remote": attr.string(mandatory = True),
    "commit": attr.string(default = ""),
    "tag": attr.string(default = ""),
    "branch": attr.string(default = ""),
    "shallow_since": attr.string(default = ""),
    "init_submodules": attr.bool(default = False),
    "recursive_init_submodules": attr.bool(default = False),
    "verbose": attr.bool(default = False),
    "strip_prefix": attr.string(default = ""),
    "patches": attr.label_list(default = []),
}

_COMMON.update(PATCH_AND_BUILD_FILE_ATTRS)

def _git_repository_impl(ctx):
    commit = _clone(ctx)
    workspace_and_buildfile(ctx)
    patch(ctx)
    return update_attrs(ctx.attr, _COMMON.keys(), {"commit": commit})

git_repository = repository_rule(implementation = _git_repository_impl, attrs = _COMMON)
new_git_repository = repository_rule(implementation = _git_repository_impl, attrs = _COMMON)
