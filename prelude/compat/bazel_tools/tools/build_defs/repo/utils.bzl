"""Helpers for repository rules, as @bazel_tools//tools/build_defs/repo:utils.bzl offers
them: maybe(), patch(), workspace_and_buildfile(), update_attrs()."""

# The attributes that patch() and workspace_and_buildfile() read, which the rules that
# call them share
PATCH_AND_BUILD_FILE_ATTRS = {
    "patch_tool": attr.string(default = ""),
    "patch_args": attr.string_list(default = ["-p0"]),
    "patch_cmds": attr.string_list(default = []),
    "patch_cmds_win": attr.string_list(default = []),
    "build_file": attr.label(allow_single_file = True),
    "build_file_content": attr.string(),
    "workspace_file": attr.label(),
    "workspace_file_content": attr.string(),
}

def maybe(repo_rule, name, **kwargs):
    """Define repository `name` with `repo_rule` unless something already defined it."""
    if not native.existing_rule(name):
        repo_rule(name = name, **kwargs)

def workspace_and_buildfile(ctx):
    """Write the repository's WORKSPACE and, from build_file or build_file_content, its
    BUILD.bazel (replacing those the archive has)."""
    if ctx.attr.build_file and ctx.attr.build_file_content:
        fail("Only one of build_file and build_file_content can be provided.")
    workspace_file = getattr(ctx.attr, "workspace_file", None)
    workspace_file_content = getattr(ctx.attr, "workspace_file_content", "")
    if workspace_file:
        ctx.delete("WORKSPACE")
        ctx.symlink(workspace_file, "WORKSPACE")
    else:
        ctx.file("WORKSPACE", workspace_file_content or
                              "workspace(name = \"{}\")\n".format(ctx.name))
    if ctx.attr.build_file:
        ctx.delete("BUILD")
        ctx.delete("BUILD.bazel")
        ctx.symlink(ctx.attr.build_file, "BUILD.bazel")
    elif ctx.attr.build_file_content:
        ctx.delete("BUILD")
        ctx.delete("BUILD.bazel")
        ctx.file("BUILD.bazel", ctx.attr.build_file_content)

def _strip_level(args):
    """The -p level of patch_args, if they hold nothing else; None otherwise."""
    level = 0
    for arg in args:
        if arg.startswith("-p") and arg[2:].isdigit():
            level = int(arg[2:])
        else:
            return None
    return level

def patch(ctx, patches = None, patch_cmds = None, patch_cmds_win = None, patch_tool = None,
          patch_args = None, auth = None):
    """Apply the rule's patches (in order), then run its patch_cmds in the repository."""
    patches = ctx.attr.patches if patches == None else patches
    patch_cmds = getattr(ctx.attr, "patch_cmds", []) if patch_cmds == None else patch_cmds
    patch_tool = getattr(ctx.attr, "patch_tool", "") if patch_tool == None else patch_tool
    patch_args = getattr(ctx.attr, "patch_args", ["-p0"]) if patch_args == None else patch_args
    level = _strip_level(patch_args)
    for p in patches:
        if not patch_tool and level != None:
            ctx.patch(p, level)
            continue
        command = "{tool} {args} < {file}".format(
            tool = patch_tool or "patch",
            args = " ".join(patch_args),
            file = str(ctx.path(p)),
        )
        done = ctx.execute(["/bin/bash", "-c", command])
        if done.return_code:
            fail("Error applying patch {}:\n{}{}".format(str(p), done.stderr, done.stdout))
    for cmd in patch_cmds:
        done = ctx.execute(["/bin/bash", "-c", cmd])
        if done.return_code:
            fail("Error applying patch command {}:\n{}{}".format(cmd, done.stdout, done.stderr))

def update_attrs(orig, keys, override):
    """The attributes that reproduce this fetch: `orig`'s `keys` that are set, with
    `override` on top."""
    result = {}
    for key in keys:
        if getattr(orig, key, None) != None:
            result[key] = getattr(orig, key)
    result["name"] = orig.name
    result.update(override)
    return result

def read_netrc(ctx, filename):
    return {}

def read_user_netrc(ctx):
    return {}

def use_netrc(netrc, urls, patterns):
    return {}
