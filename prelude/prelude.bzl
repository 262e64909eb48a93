"""Entry point of the prelude: gathers every standard rule into `NATIVE_RULES`; defines none."""

load(
    "@prelude//cc:rules.bzl",
    "cc_binary",
    "cc_import",
    "cc_library",
    "cc_test",
    "cc_toolchain",
)
load("@prelude//core:rules.bzl", "alias", "filegroup", "label_flag", "label_setting", "test_suite")
load("@prelude//genrule:rules.bzl", "genrule")
load(
    "@prelude//platforms:rules.bzl",
    "config_setting",
    "constraint_setting",
    "constraint_value",
    "platform",
    "toolchain",
    "toolchain_type",
)
load("@prelude//python:rules.bzl", "py_binary", "py_library", "py_runtime", "py_test")
load("@prelude//sh:rules.bzl", "sh_binary", "sh_library", "sh_test", "sh_toolchain")

# The rules every BUILD file sees without a load(), keyed by the name BUILD files call.
NATIVE_RULES = {
    "alias": alias,
    "cc_binary": cc_binary,
    "cc_import": cc_import,
    "cc_library": cc_library,
    "cc_test": cc_test,
    "cc_toolchain": cc_toolchain,
    "config_setting": config_setting,
    "constraint_setting": constraint_setting,
    "constraint_value": constraint_value,
    "filegroup": filegroup,
    "genrule": genrule,
    "label_flag": label_flag,
    "label_setting": label_setting,
    "platform": platform,
    "py_binary": py_binary,
    "py_library": py_library,
    "py_runtime": py_runtime,
    "py_test": py_test,
    "sh_binary": sh_binary,
    "sh_library": sh_library,
    "sh_test": sh_test,
    "sh_toolchain": sh_toolchain,
    "test_suite": test_suite,
    "toolchain": toolchain,
    "toolchain_type": toolchain_type,
}
