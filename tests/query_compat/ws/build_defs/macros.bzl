"""A macro wrapping native.genrule."""

load(":common.bzl", "stamp_cmd")

def stamped_file(name, src, out = None, **kwargs):
    """Copies `src` into `out` (default NAME.stamp) behind a stamp line."""
    native.genrule(
        name = name,
        srcs = [src],
        outs = [out or name + ".stamp"],
        cmd = stamp_cmd("stamp:" + name),
        **kwargs
    )
