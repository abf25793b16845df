"""Letter templates, rendered safely.

Templates are written by admins and filled with customer data, so both are treated as
untrusted. They render in Jinja's ``ImmutableSandboxedEnvironment`` and more:

- no attribute access except the documented variables (checked on save) and ``loop``;
- only a short list of filters, no ``include``/``extends``/``import``/macros, no way to turn
  autoescaping off in the HTML part (customer data is always data);
- bounded work: every loop step, call and piece of output is counted, so a render stops at
  ``LETTERS_RENDER_SECONDS``, ``LETTERS_MAX_LOOP_STEPS`` or ``LETTERS_MAX_OUTPUT`` characters
  (``range(10**9)``, ``'a' * 10**9``, nested loops) with a clear error, never a hung worker.

A template is compiled once per text and part (an LRU cache), so rendering a stored one is
cheap.
"""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from jinja2 import ChainableUndefined, TemplateError, nodes, pass_context
from jinja2.filters import FILTERS
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer
from markupsafe import Markup, escape

from helpdesk import ValidationError

# Filters a letter may use: none can grow its input much (``replace`` and ``join`` are
# checked before they run); ``safe``, ``format``, ``attr``, ``center``, ``indent`` etc. are out.
SAFE_FILTERS = (
    *("abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "int"),
    *("last", "length", "list", "lower", "max", "min", "round", "sort", "string", "striptags"),
    *("title", "trim", "truncate", "unique", "upper", "wordcount"),
)
FORBIDDEN_TAGS = {
    nodes.Include: "{% include %}",
    nodes.Extends: "{% extends %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.Block: "{% block %}",
    nodes.ScopedEvalContextModifier: "{% autoescape %}",
    nodes.EvalContextModifier: "{% autoescape %}",
}
# Bits an integer may grow to with ``*`` and ``**`` (a 1,233-digit number).
MAX_INT_BITS = 4096


class LimitExceeded(Exception):
    """A render went past one of its limits."""


class TemplateRefused(ValidationError):
    """A template that does not compile or uses something not allowed: ``problems`` is a list
    of ``{"field", "line", "message"}``."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        errors: dict[str, str] = {}
        for problem in problems:
            where = f" (line {problem['line']})" if problem.get("line") else ""
            errors.setdefault(problem["field"], problem["message"] + where)
        super().__init__(errors)
        self.problems = problems


class RenderRefused(ValidationError):
    """A template that failed or went past a limit while it was filled in (422)."""

    def __init__(self, message: str, field_name: str = "body") -> None:
        super().__init__({field_name: message})
        self.message = message


@dataclass
class _Budget:
    deadline: float
    max_steps: int
    max_output: int
    steps: int = 0
    output: int = 0
    started: float = field(default_factory=time.monotonic)

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > self.max_steps:
            raise LimitExceeded(
                _("The template takes more than %(n)s loop steps.", n=self.max_steps)
            )
        if self.steps % 256 < count and time.monotonic() > self.deadline:
            raise LimitExceeded(_("The template took too long to fill in."))

    def emit(self, size: int) -> None:
        self.output += size
        if self.output > self.max_output:
            raise LimitExceeded(
                _("The letter would be longer than %(n)s characters.", n=self.max_output)
            )
        self.step()


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "letters_budget", default=None
)


def _budget() -> _Budget | None:
    return _BUDGET.get()


def _check_size(size: int) -> None:
    budget = _budget()
    if budget is not None and size > budget.max_output:
        raise LimitExceeded(
            _("The letter would be longer than %(n)s characters.", n=budget.max_output)
        )


class ShownUndefined(ChainableUndefined):
    """A name with no value: shown as ``[name?]`` so the agent sees what is missing."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"[{self._undefined_name or '?'}?]"

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __html__(self) -> str:
        return str(escape(str(self)))


class LetterEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with the letter rules: see the module's docstring."""

    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """Only ``loop``'s public attributes; data is reached by key (``customer.name``)."""
        return isinstance(obj, LoopContext) and not attr.startswith("_")

    def call_binop(self, context: Context, operator_name: str, left: Any, right: Any) -> Any:
        """``*``, ``+``, ``**``, ``//`` and ``%`` with their results bounded."""
        if operator_name == "%" and isinstance(left, str):
            raise SecurityError("string formatting with % is not allowed in a letter")
        if (
            operator_name == "**"
            and _is_int(left)
            and _is_int(right)
            and (
                right > 0
                and abs(left) > 1
                and right * max(abs(left).bit_length(), 1) > MAX_INT_BITS
            )
        ):
            raise LimitExceeded(_("A number in the template is too large."))
        if operator_name == "*":
            _check_product(left, right)
        if operator_name == "+" and isinstance(left, Sized) and isinstance(right, Sized):
            _check_size(len(left) + len(right))
        return self.binop_table[operator_name](left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Every call counts as a step (``loop(...)`` of a recursive loop, ``range``)."""
        budget = _budget()
        if budget is not None:
            budget.step()
        return super().call(__context, __obj, *args, **kwargs)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_product(left: Any, right: Any) -> None:
    if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise LimitExceeded(_("A number in the template is too large."))
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, Sized) and _is_int(times):
            _check_size(len(sequence) * max(times, 0))


def _bounded_range(*args: Any) -> range:
    numbers = range(*args)
    budget = _budget()
    if budget is not None and len(numbers) > budget.max_steps:
        raise LimitExceeded(_("range() is limited to %(n)s numbers.", n=budget.max_steps))
    return numbers


@pass_context
def _iterate(context: Context, value: Any) -> Iterator[Any]:
    """Every ``for`` loop iterates through this: each step is counted."""
    budget = _budget()
    for item in value:
        if budget is not None:
            budget.step()
        yield item


@pass_context
def _out(context: Context, value: Any) -> Any:
    """Every piece of output (template text and ``{{ }}``) is counted against the limit."""
    budget = _budget()
    if budget is not None:
        budget.emit(len(value) if isinstance(value, str) else len(str(value)))
    return value


@pass_context
def _concat(context: Context, values: list[Any]) -> str:
    """``a ~ b``, with the result's length checked first."""
    parts = [v if isinstance(v, str) and context.eval_ctx.autoescape else str(v) for v in values]
    _check_size(sum(len(part) for part in parts))
    if context.eval_ctx.autoescape:
        return Markup("").join(escape(part) for part in parts)
    return "".join(parts)


def _replace(value: Any, old: Any, new: Any, count: Any = None) -> str:
    """Jinja's ``replace``, with the result's length checked before it is built."""
    text, old, new = str(value), str(old), str(new)
    times = text.count(old) if old else len(text) + 1
    if _is_int(count) and count >= 0:
        times = min(times, count)
    _check_size(len(text) + max(len(new) - len(old), 0) * times)
    return text.replace(old, new, count if _is_int(count) else -1)


def _join(value: Iterable[Any], separator: str = "") -> str:
    items = [str(item) for item in value]
    _check_size(sum(len(item) for item in items) + len(str(separator)) * len(items))
    return str(separator).join(items)


class _Guard(NodeTransformer):
    """Rewrites a parsed template so every loop, output and concatenation is counted."""

    def visit_For(self, node: nodes.For) -> nodes.For:
        self.generic_visit(node)
        node.iter = _filter(node.iter, "letters_iterate")
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Output:
        self.generic_visit(node)
        node.nodes = [_filter(_as_expression(child), "letters_out") for child in node.nodes]
        return node

    def visit_Name(self, node: nodes.Name) -> nodes.Name:
        if node.name == "self":  # Jinja's reference to the template itself: never given
            node.name = "self_"
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Expr:
        self.generic_visit(node)
        return _filter(nodes.List(node.nodes, lineno=node.lineno), "letters_concat")


def _filter(node: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


def _as_expression(child: nodes.Node) -> nodes.Expr:
    if isinstance(child, nodes.TemplateData):
        return nodes.MarkSafeIfAutoescape(
            nodes.Const(child.data, lineno=child.lineno), lineno=child.lineno
        )
    return child


def _environment(html: bool) -> LetterEnvironment:
    env = LetterEnvironment(autoescape=html, undefined=ShownUndefined, keep_trailing_newline=True)
    env.filters = {name: FILTERS[name] for name in SAFE_FILTERS}
    env.filters.update(
        replace=_replace,
        join=_join,
        letters_iterate=_iterate,
        letters_out=_out,
        letters_concat=_concat,
    )
    env.tests = dict(env.tests)
    env.globals = {"range": _bounded_range}
    return env


ENVIRONMENTS = {False: _environment(False), True: _environment(True)}


def _parse(source: str, html: bool) -> nodes.Template:
    return ENVIRONMENTS[html].parse(source)


@functools.lru_cache(maxsize=512)
def compiled(source: str, html: bool) -> Any:
    """The template for ``source`` (the HTML or the text part), guarded, compiled once."""
    env = ENVIRONMENTS[html]
    tree = env.parse(source)
    if any(True for _node in tree.find_all(tuple(FORBIDDEN_TAGS))):
        raise SecurityError("the template uses a tag that is not allowed in a letter")
    tree = _Guard().visit(tree)
    tree.set_environment(env)
    return env.from_string(tree)


# --- checking a template on save ----------------------------------------------------------


def check(source: Any, field_name: str, variables: dict[str, set[str]]) -> list[dict[str, Any]]:
    """Problems of one part (``subject`` or ``body``) of a template, as
    ``{"field", "line", "message"}``; an empty list when it may be saved.

    ``variables`` is ``{namespace: {field, ...}}``: the names a template may use."""
    limit = current_app.config["LETTERS_MAX_TEMPLATE_CHARS"]
    if not isinstance(source, str) or not source.strip():
        return [_problem(field_name, None, _("is required"))]
    if len(source) > limit:
        return [_problem(field_name, None, _("is longer than %(n)s characters", n=limit))]
    try:
        tree = _parse(source, False)
    except TemplateError as exc:
        return [_problem(field_name, getattr(exc, "lineno", None), _syntax(exc))]
    try:
        problems = _tag_problems(tree, field_name) + _name_problems(tree, field_name, variables)
    except TemplateError as exc:
        return [_problem(field_name, getattr(exc, "lineno", None), _syntax(exc))]
    if problems:
        return problems
    for html in (False, True):
        try:
            compiled(source, html)
        except TemplateError as exc:
            return [_problem(field_name, getattr(exc, "lineno", None), _syntax(exc))]
    return []


def _syntax(exc: TemplateError) -> str:
    return _("does not compile: %(message)s", message=exc.message or str(exc))


def _problem(field_name: str, line: int | None, message: str) -> dict[str, Any]:
    return {"field": field_name, "line": line, "message": message}


def _tag_problems(tree: nodes.Template, field_name: str) -> list[dict[str, Any]]:
    problems = []
    for node in tree.find_all(tuple(FORBIDDEN_TAGS)):
        tag = next(tag for kind, tag in FORBIDDEN_TAGS.items() if isinstance(node, kind))
        problems.append(
            _problem(field_name, node.lineno, _("%(tag)s is not allowed in a letter", tag=tag))
        )
    return problems


def _name_problems(
    tree: nodes.Template, field_name: str, variables: dict[str, set[str]]
) -> list[dict[str, Any]]:
    problems = []
    unknown = find_undeclared_variables(tree) - set(variables) - {"range", "loop"}
    unknown |= {node.name for node in tree.find_all(nodes.Name) if node.name == "self"}
    for name in sorted(unknown):
        node = next(n for n in tree.find_all(nodes.Name) if n.name == name)
        problems.append(
            _problem(field_name, node.lineno, _("uses an unknown variable: %(name)s", name=name))
        )
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        path = _attribute(node)
        if path is None:
            continue
        base, attr = path
        if isinstance(base, nodes.Name) and base.name in variables and attr in variables[base.name]:
            continue
        if isinstance(base, nodes.Name) and base.name == "loop" and not attr.startswith("_"):
            continue
        if isinstance(base, nodes.Name):
            message = _("uses an unknown variable: %(name)s", name=f"{base.name}.{attr}")
        else:
            message = _(
                "may use attributes of the documented variables only, not %(name)s", name=attr
            )
        problems.append(_problem(field_name, node.lineno, message))
    return problems


def _attribute(node: nodes.Getattr | nodes.Getitem) -> tuple[nodes.Node, str] | None:
    """``(base, name)`` of ``base.name`` or ``base['name']``; ``None`` for other subscripts."""
    if isinstance(node, nodes.Getattr):
        return node.node, node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.node, node.arg.value
    return None


# --- filling one in -----------------------------------------------------------------------


def render(source: str, context: dict[str, Any], *, html: bool, field_name: str = "body") -> str:
    """``source`` filled in with ``context`` (HTML-escaped when ``html``), within the limits;
    ``RenderRefused`` (422) when it fails or goes past one."""
    config = current_app.config
    budget = _Budget(
        deadline=time.monotonic() + config["LETTERS_RENDER_SECONDS"],
        max_steps=config["LETTERS_MAX_LOOP_STEPS"],
        max_output=config["LETTERS_MAX_OUTPUT"],
    )
    token = _BUDGET.set(budget)
    try:
        parts = []
        size = 0
        for chunk in compiled(source, html).generate(context):
            size += len(chunk)
            if size > budget.max_output:
                raise LimitExceeded(
                    _("The letter would be longer than %(n)s characters.", n=budget.max_output)
                )
            parts.append(chunk)
        return "".join(parts)
    except LimitExceeded as exc:
        raise RenderRefused(str(exc), field_name) from None
    except SecurityError as exc:
        raise RenderRefused(
            _("The template tried something not allowed: %(e)s", e=exc), field_name
        ) from None
    except RecursionError:
        raise RenderRefused(_("The template nests too deeply."), field_name) from None
    except Exception as exc:  # an admin's template may fail in any way: it is their input
        message = _("The template could not be filled in: %(e)s", e=f"{type(exc).__name__}: {exc}")
        raise RenderRefused(message, field_name) from None
    finally:
        _BUDGET.reset(token)
