"""Declarations of the configuration and platform rules; no build logic here (see impls.bzl)."""

load(
    ":impls.bzl",
    "config_setting_impl",
    "constraint_setting_impl",
    "constraint_value_impl",
    "platform_impl",
    "toolchain_impl",
    "toolchain_type_impl",
)

config_setting = rule(
    implementation = config_setting_impl,
    doc = "A named condition on the build configuration, for use as a key of `select()`. " +
          "It matches when every setting it lists matches.",
    attrs = {
        "tags": attr.string_list(
            default = ["manual"],
            doc = "Tags; a condition is never built on its own, so it is `manual` by default.",
        ),
        "values": attr.string_dict(
            doc = "Command-line options and the values they must have, e.g. " +
                  "`{\"compilation_mode\": \"opt\"}`.",
        ),
        "define_values": attr.string_dict(
            doc = "`--define` names and the values they must have; unlike `values`, can " +
                  "test several defines at once.",
        ),
        "constraint_values": attr.label_list(
            doc = "`constraint_value` targets the target platform must have.",
        ),
        "flag_values": attr.label_keyed_string_dict(
            doc = "Build-setting targets (user-defined flags) and the values they must have.",
        ),
    },
)

constraint_setting = rule(
    implementation = constraint_setting_impl,
    doc = "A dimension along which platforms differ, such as CPU or OS; its possible " +
          "values are `constraint_value` targets.",
    attrs = {
        "default_constraint_value": attr.label(
            doc = "The value a platform has for this setting when it names none of its own.",
        ),
    },
)

constraint_value = rule(
    implementation = constraint_value_impl,
    doc = "One possible value of a `constraint_setting`, such as `x86_64` for the CPU.",
    attrs = {
        "constraint_setting": attr.label(
            mandatory = True,
            doc = "The `constraint_setting` this is a value of.",
        ),
    },
)

platform = rule(
    implementation = platform_impl,
    doc = "A named machine description: a set of constraint values, used as the target or " +
          "execution platform of a build.",
    attrs = {
        "constraint_values": attr.label_list(
            doc = "The `constraint_value` targets that describe this platform, at most one " +
                  "per `constraint_setting`.",
        ),
        "parents": attr.label_list(
            doc = "At most one platform to inherit constraint values and properties from; " +
                  "this platform's own entries win.",
        ),
        "exec_properties": attr.string_dict(
            doc = "Key-value properties sent to the remote executor for actions run on this " +
                  "platform.",
        ),
        "remote_execution_properties": attr.string(
            doc = "Older text form of `exec_properties`; kept so old BUILD files load.",
        ),
    },
)

toolchain_type = rule(
    implementation = toolchain_type_impl,
    doc = "Names a kind of toolchain that rules ask for; `toolchain` targets register " +
          "implementations of it.",
    attrs = {},
)

toolchain = rule(
    implementation = toolchain_impl,
    doc = "Makes a toolchain target available for a `toolchain_type` on the platforms that " +
          "match its `exec_compatible_with` and `target_compatible_with`.",
    attrs = {
        "toolchain_type": attr.label(
            mandatory = True,
            doc = "The `toolchain_type` this toolchain implements.",
        ),
        "toolchain": attr.label(
            mandatory = True,
            doc = "The target that provides the toolchain's information and tools.",
        ),
        "target_settings": attr.label_list(
            doc = "`config_setting` targets that must all match the build configuration " +
                  "for this toolchain to be chosen.",
        ),
    },
)
