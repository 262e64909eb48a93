"""Rules that read and make CcInfo through Bazel's cc_common."""

load("@bazel_tools//tools/cpp:toolchain_utils.bzl", "find_cpp_toolchain")

def _inspect_impl(ctx):
    lines = []
    for dep in ctx.attr.deps:
        cc = dep[CcInfo].compilation_context
        lines.append("direct headers: %s" % [h.basename for h in cc.direct_headers])
        lines.append("headers: %s" % sorted([h.basename for h in cc.headers.to_list()]))
        lines.append("defines: %s" % sorted(cc.defines.to_list()))
        lines.append("source includes: %s" % [
            i for i in cc.includes.to_list() if not i.startswith("ba") and
                                                not i.startswith("bp")
        ])
        for linker_input in dep[CcInfo].linking_context.linker_inputs.to_list():
            names = []
            for library in linker_input.libraries:
                static = library.static_library or library.pic_static_library
                if static != None:
                    names.append(static.basename.replace(".pic", ""))
            lines.append("linker input %s: %s %s" % (
                linker_input.owner.name,
                names,
                list(linker_input.user_link_flags),
            ))
    merged = cc_common.merge_cc_infos(cc_infos = [d[CcInfo] for d in ctx.attr.deps])
    lines.append("merged defines: %s" % sorted(merged.compilation_context.defines.to_list()))
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.write(out, "\n".join(lines) + "\n")
    return [DefaultInfo(files = depset([out]))]

inspect = rule(
    implementation = _inspect_impl,
    attrs = {"deps": attr.label_list(providers = [CcInfo])},
)

def _prebuilt_impl(ctx):
    compilation_context = cc_common.create_compilation_context(
        headers = depset(ctx.files.hdrs),
    )
    cc_toolchain = find_cpp_toolchain(ctx)
    feature_configuration = cc_common.configure_features(
        ctx = ctx,
        cc_toolchain = cc_toolchain,
    )
    library = cc_common.create_library_to_link(
        actions = ctx.actions,
        feature_configuration = feature_configuration,
        cc_toolchain = cc_toolchain,
        static_library = ctx.file.library,
    )
    linker_input = cc_common.create_linker_input(
        owner = ctx.label,
        libraries = depset([library]),
    )
    linking_context = cc_common.create_linking_context(
        linker_inputs = depset([linker_input]),
    )
    return [CcInfo(
        compilation_context = compilation_context,
        linking_context = linking_context,
    )]

prebuilt = rule(
    implementation = _prebuilt_impl,
    attrs = {
        "hdrs": attr.label_list(allow_files = True),
        "library": attr.label(allow_single_file = True),
        "_cc_toolchain": attr.label(default = "@bazel_tools//tools/cpp:current_cc_toolchain"),
    },
    fragments = ["cpp"],
)
