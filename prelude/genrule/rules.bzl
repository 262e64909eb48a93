"""Declaration of `genrule`: its attributes and docs; the command logic lives in genrule.bzl."""

load(":genrule.bzl", "genrule_impl")

genrule = rule(
    implementation = genrule_impl,
    doc = "Produces the files in `outs` by running a shell command written in the BUILD " +
          "file. Use it when no dedicated rule fits.",
    attrs = {
        "srcs": attr.label_list(
            allow_files = True,
            doc = "Inputs of the command; `$(SRCS)` and `$(location ...)` refer to them.",
        ),
        "outs": attr.output_list(
            mandatory = True,
            allow_empty = False,
            doc = "Files the command must create, as paths relative to the package; " +
                  "`$(OUTS)` and `$@` refer to them.",
        ),
        "cmd": attr.string(
            doc = "The command, run by Bash; used on any platform without a more specific " +
                  "`cmd_*` attribute. `$(...)` variables and labels are expanded first.",
        ),
        "cmd_bash": attr.string(
            doc = "Bash command; takes precedence over `cmd` where Bash is used.",
        ),
        "cmd_bat": attr.string(
            doc = "Batch command run by `cmd.exe` on Windows; takes precedence over `cmd`.",
        ),
        "cmd_ps": attr.string(
            doc = "PowerShell command used on Windows; takes precedence over `cmd` and " +
                  "`cmd_bat`.",
        ),
        "tools": attr.label_list(
            allow_files = True,
            cfg = "exec",
            doc = "Programs the command runs, built for the machine that executes it. " +
                  "Refer to them with `$(location ...)`.",
        ),
        "exec_tools": attr.label_list(
            allow_files = True,
            cfg = "exec",
            doc = "Same as `tools`: programs built for the machine that runs the command. " +
                  "Kept as a separate list for compatibility.",
        ),
        "executable": attr.bool(
            doc = "Marks the single output as a program that `bp run` can start.",
        ),
        "local": attr.bool(
            doc = "Run the command outside the sandbox and never remotely, as if " +
                  "tagged `local`.",
        ),
        "message": attr.string(
            doc = "Progress text shown while the command runs, in place of the default.",
        ),
        "output_licenses": attr.string_list(
            doc = "Licenses that apply to the outputs when the rule is used as a tool.",
        ),
        "output_to_bindir": attr.bool(
            doc = "Write the outputs under the bin directory instead of the genfiles " +
                  "directory.",
        ),
        "stamp": attr.bool(
            doc = "Make the workspace status files inputs of the command, which reads " +
                  "them at `bp-out/stable-status.txt` and `bp-out/volatile-status.txt` " +
                  "(with `--stamp`, they hold the build's status), as Bazel's genrule.",
        ),
        "toolchains": attr.label_list(
            doc = "Targets that supply Make variables (such as `$(CC)`) to the command.",
        ),
    },
)
