"""Evaluates a user's Starlark expression once per value (cquery --output=starlark).

Values arrive as plain data (dicts, lists, strings); dicts marked as structs become
Starlark structs. Knows nothing of targets.
"""

from __future__ import annotations

import json
from typing import Any

import starlark as sl

from buildpy.core.errors import UserError
from buildpy.lang.limits import StderrHold, is_panic
from buildpy.lang.nesting import check_nesting

_PRELUDE = '''
def _struct(value):
    if type(value) == "dict" and value.get("__struct__"):
        return struct(**{k: _struct(v) for k, v in value.items() if k != "__struct__"})
    if type(value) == "list":
        return [_struct(v) for v in value]
    if type(value) == "dict":
        return {k: _struct(v) for k, v in value.items()}
    return value

def format_value(value, options, providers_of):
    target = _struct(value)
    def build_options(t):
        return options
    def providers(t):
        return providers_of
    return %s
'''


class Formatter:
    """Compiles `expression` (with `target` in scope) and applies it to values."""

    def __init__(self, expression: str, flag: str = "--starlark:expr"):
        globals_ = sl.Globals.extended_by([sl.LibraryExtension.StructType,
                                           sl.LibraryExtension.Json,
                                           sl.LibraryExtension.Map,
                                           sl.LibraryExtension.Filter])
        module = sl.Module()
        try:
            expression.encode()
        except UnicodeEncodeError:   # bytes that are not UTF-8, as Python decodes argv
            raise UserError(f"{flag} is not valid UTF-8: {expression!r}",
                            hint="for example --starlark:expr='str(target.label)'") from None
        check_nesting(expression, flag)   # deeper would crash Starlark's compiler
        self._hold = StderrHold()
        try:
            with self._hold:
                sl.eval(module, sl.parse(flag, _PRELUDE % expression.strip()), globals_)
        except sl.StarlarkError as error:
            raise UserError(f"{flag} is not a valid Starlark expression:\n{error}",
                            hint="for example --starlark:expr='str(target.label)'") from None
        except BaseException as error:   # constants are folded as it compiles: may panic
            _reraise_panic(error, f"{flag} failed")
        self._module = module.freeze()
        self._flag = flag

    def __call__(self, value: dict, options: dict, providers: dict) -> str:
        try:
            with self._hold:
                result = self._module.call("format_value", value, options, providers)
        except sl.StarlarkError as error:
            raise UserError(f"{self._flag} failed for {value.get('label')}:\n{error}") from None
        except BaseException as error:
            _reraise_panic(error, f"{self._flag} failed for {value.get('label')}")
        return result if isinstance(result, str) else _show(result)


def _reraise_panic(error: BaseException, what: str) -> None:
    """A Rust panic in Starlark (a value too large; no Exception) as a UserError."""
    if not is_panic(error):
        raise error
    raise UserError(f"{what}: {str(error).strip()}",
                    hint="a value probably grew too large (strings and lists hold at most "
                         "4 GiB)") from None


def struct_of(**fields: Any) -> dict:
    """A dict that the expression sees as a struct."""
    return {"__struct__": True, **fields}


def _show(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)
