"""Analysis of `genrule` targets: one shell action; attributes are declared in rules.bzl."""

load("<builtins>", "shell_quote")

# Longer commands go to a script file. Linux limits one argument to 128 KiB; a character
# takes up to 4 bytes in UTF-8. (Bazel too switches to a script past a fixed length.)
_MAX_COMMAND_CHARS = 32000

def _words(files):
    """File paths as shell words: each quoted if it needs it, joined by spaces."""
    return " ".join([shell_quote(f.path) for f in files])

def genrule_impl(ctx):
    """Runs `cmd` (after $(location) and Make-variable expansion) to make `outs`."""
    outs = ctx.outputs.outs
    command = ctx.attr.cmd_bash or ctx.attr.cmd
    if not command:
        fail("genrule %s needs 'cmd' (or 'cmd_bash')" % ctx.label.name)
    srcs = ctx.files.srcs
    # as in Bazel, an executable tool comes with its runfiles (tree)
    tools = ctx.files.tools + ctx.files.exec_tools + [
        t[DefaultInfo].files_to_run
        for t in ctx.attr.tools + ctx.attr.exec_tools
        if t[DefaultInfo].files_to_run.runfiles_manifest != None
    ]
    # Unlike Bazel, which quotes only $(location) and its kin, every path is quoted here:
    # a file name must never run as shell code (docs/rule-api.md, "Names and the shell").
    ruledir = ctx.bin_dir.path + ("/" + ctx.label.package if ctx.label.package else "")
    variables = {
        "SRCS": _words(srcs),
        "OUTS": _words(outs),
        "RULEDIR": shell_quote(ruledir),
    }
    if len(outs) == 1:
        variables["@"] = shell_quote(outs[0].path)
        variables["@D"] = shell_quote(outs[0].dirname)
    else:
        variables["@D"] = variables["RULEDIR"]
    if len(srcs) == 1:
        variables["<"] = shell_quote(srcs[0].path)
    for toolchain in ctx.attr.toolchains:  # targets giving Make variables such as $(CC)
        if TemplateVariableInfo in toolchain:
            variables.update(toolchain[TemplateVariableInfo].variables)
    command = "set -euo pipefail\n" + ctx._bp_expand_command("cmd", command, variables)
    inputs = srcs + ([ctx.info_file, ctx.version_file] if ctx.attr.stamp else [])
    if len(command) > _MAX_COMMAND_CHARS:
        # Too long for `bash -c` (E2BIG): as Bazel does, write it to a script, an input
        # of the action, so the action's key covers the script's content.
        script = ctx.actions.declare_file(ctx.label.name + ".genrule_script.sh")
        ctx.actions.write(output = script, content = command + "\n")
        command = ["/bin/bash", script.path]
        inputs = inputs + [script]
    ctx.actions.run_shell(
        command = command,
        inputs = inputs,
        tools = tools,
        outputs = outs,
        mnemonic = "Genrule",
        progress_message = ctx.attr.message or "Executing genrule %{label}",
        execution_requirements = {"local": "1"} if ctx.attr.local else {},
    )
    files = depset(outs)
    if ctx.attr.executable:
        if len(outs) != 1:
            fail("genrule %s: executable = True needs exactly one output" % ctx.label.name)
        return [DefaultInfo(files = files, executable = outs[0],
                            runfiles = ctx.runfiles(files = outs))]
    return [DefaultInfo(files = files)]
