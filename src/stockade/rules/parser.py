"""Parser for Falco conditions, following libsinsp's grammar (filter/parser.h).

It works on the text directly rather than on a token stream because, as in libsinsp, what counts
as a bare string depends on where it stands (a field argument may hold '/', ':' and ',', a value
may not hold ',' or ')').

    Expr        ::= OrExpr
    OrExpr      ::= AndExpr ('or' AndExpr)*
    AndExpr     ::= NotExpr ('and' NotExpr)*
    NotExpr     ::= ('not')* Check
    Check       ::= Field Condition | Transformer Condition | Identifier | '(' Expr ')'
    Condition   ::= 'exists' | NumOp (Number | ValOrTransformer) | StrOp (StrValue | ValOrTransformer)
                  | StrOp Modifier ListValue | ListOp (ListValue | ValOrTransformer)

Errors are :class:`ConditionSyntaxError` with the offset of the problem.
"""

from __future__ import annotations

import re

from stockade.errors import RuleError
from stockade.rules.ast import (
    LIST_OPS,
    MODIFIERS,
    NUM_OPS,
    TRANSFORMERS,
    And,
    Check,
    FieldRef,
    ListLit,
    ListRef,
    MacroRef,
    Node,
    Not,
    Operand,
    Or,
    StrLit,
    Transform,
    TransformerList,
)


class ConditionSyntaxError(RuleError):
    """A condition that does not parse, with the offset of the problem."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


_WS = " \t\n\r\b\f"
_IDENT = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")
# FieldName ::= [a-zA-Z]+[a-zA-Z0-9_]*(\.[a-zA-Z]+[a-zA-Z0-9_]*)+   (plugins also use '-')
_FIELD = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*(?:\.[a-zA-Z0-9_][a-zA-Z0-9_-]*)+")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|[+\-]?[0-9]+\.?[0-9]*(?:[eE][+\-]?[0-9]+)?")
_BARE_STR = re.compile(r"[^ \b\t\n\r\f(),=\"']+")
_FIELD_ARG_BARE = re.compile(r"[^ \b\t\n\r\f\[\]\"']+")
# word operators (need a blank or '(' after them); longest first so 'intersects' wins over 'in'
_WORD_OPS = (
    "bcontains",
    "bstartswith",
    "contains",
    "endswith",
    "glob",
    "icontains",
    "iglob",
    "startswith",
    "regex",
    "intersects",
    "in",
    "pmatch",
    "exists",
)
_SYM_OPS = ("==", "=", "!=", "<=", "<", ">=", ">")
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/"}


def parse_condition(text: str) -> Node:
    """Parse a Falco condition into an AST; raises ConditionSyntaxError."""
    p = _Parser(text)
    node = p.expr()
    p.ws()
    if p.i < len(text):
        raise p.error(f"unexpected '{text[p.i : p.i + 20]}'")
    return node


def parse_operand(text: str) -> FieldRef | Transform:
    """Parse a field or transformer expression alone (used by output formats: %tolower(proc.name))."""
    p = _Parser(text)
    p.ws()
    op = p.field_or_transformer(allow_val=False)
    if op is None:
        raise p.error("expected a field or a transformer")
    p.ws()
    if p.i < len(text):
        raise p.error(f"unexpected '{text[p.i : p.i + 20]}'")
    return op


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.depth = 0

    # -- helpers -----------------------------------------------------------------------------
    def error(self, msg: str, at: int | None = None) -> ConditionSyntaxError:
        return ConditionSyntaxError(msg, self.i if at is None else at)

    def ws(self) -> bool:
        start = self.i
        s = self.s
        while self.i < len(s) and s[self.i] in _WS:
            self.i += 1
        return self.i > start

    def peek(self, lit: str) -> bool:
        return self.s.startswith(lit, self.i)

    def keyword(self, word: str) -> bool:
        """Match `word` not followed by a name character; consume it (not what follows)."""
        if not self.s.startswith(word, self.i):
            return False
        j = self.i + len(word)
        if j < len(self.s) and (self.s[j].isalnum() or self.s[j] in "_.-"):
            return False
        self.i = j
        return True

    def regex(self, rx: re.Pattern[str]) -> str | None:
        m = rx.match(self.s, self.i)
        if not m or not m.group(0):
            return None
        self.i = m.end()
        return m.group(0)

    def quoted(self) -> str | None:
        s = self.s
        if self.i >= len(s) or s[self.i] not in "\"'":
            return None
        q = s[self.i]
        start = self.i
        j = self.i + 1
        out: list[str] = []
        while j < len(s):
            c = s[j]
            if c == "\\" and j + 1 < len(s):
                nxt = s[j + 1]
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                j += 2
                continue
            if c == q:
                self.i = j + 1
                return "".join(out)
            out.append(c)
            j += 1
        raise self.error("unterminated quoted string", start)

    # -- grammar -----------------------------------------------------------------------------
    def expr(self) -> Node:
        self.depth += 1
        if self.depth > 200:
            raise self.error("condition nested too deeply")
        try:
            return self.or_expr()
        finally:
            self.depth -= 1

    def or_expr(self) -> Node:
        self.ws()
        pos = self.i
        children = [self.and_expr()]
        while True:
            save = self.i
            self.ws()
            if self.keyword("or"):
                children.append(self.and_expr())
            else:
                self.i = save
                break
        return children[0] if len(children) == 1 else Or(tuple(children), pos)

    def and_expr(self) -> Node:
        self.ws()
        pos = self.i
        children = [self.not_expr()]
        while True:
            save = self.i
            self.ws()
            if self.keyword("and"):
                children.append(self.not_expr())
            else:
                self.i = save
                break
        return children[0] if len(children) == 1 else And(tuple(children), pos)

    def not_expr(self) -> Node:
        self.ws()
        pos = self.i
        if self.keyword("not"):
            return Not(self.not_expr(), pos)
        return self.check()

    def check(self) -> Node:
        self.ws()
        pos = self.i
        if self.i >= len(self.s):
            raise self.error("unexpected end of condition")
        if self.peek("("):
            self.i += 1
            node = self.expr()
            self.ws()
            if not self.peek(")"):
                raise self.error("expected ')'")
            self.i += 1
            return node
        lhs = self.field_or_transformer(allow_val=False)
        if lhs is None:
            ident = self.regex(_IDENT)
            if ident is None:
                raise self.error(
                    f"expected a field, a macro or '(' but found '{self.s[self.i : self.i + 20]}'"
                )
            if ident in ("and", "or", "not"):
                raise self.error(f"unexpected '{ident}'", pos)
            return MacroRef(ident, pos)
        return self.condition(lhs, pos)

    def field_or_transformer(self, allow_val: bool) -> FieldRef | Transform | None:
        pos = self.i
        for name in (*TRANSFORMERS, *(("val",) if allow_val else ())):
            if self.s.startswith(name + "(", self.i):
                self.i += len(name) + 1
                return self.transformer_tail(name, pos)
        fname = self.regex(_FIELD)
        if fname is None:
            return None
        arg = self.field_arg()
        return FieldRef(fname, arg, pos)

    def field_arg(self) -> str | None:
        if not self.peek("["):
            return None
        self.i += 1
        q = self.quoted()
        arg = q if q is not None else self.regex(_FIELD_ARG_BARE)
        if arg is None:
            raise self.error("expected a field argument")
        if not self.peek("]"):
            raise self.error("expected a ']' token")
        self.i += 1
        return arg

    def transformer_tail(self, name: str, pos: int) -> Transform:
        args: list[Operand] = []
        self.ws()
        if name == "val":
            f = self.field_or_transformer(allow_val=False)
            if not isinstance(f, FieldRef):
                raise self.error("val() takes a field")
            args.append(f)
        else:
            while True:
                self.ws()
                args.append(self.transformer_arg())
                self.ws()
                if self.peek(","):
                    self.i += 1
                    continue
                break
        self.ws()
        if not self.peek(")"):
            raise self.error(f"expected ')' to close {name}(")
        self.i += 1
        sel = self.field_arg() if name != "val" else None
        return Transform(name, tuple(args), sel, pos)

    def transformer_arg(self) -> Operand:
        pos = self.i
        q = self.quoted()
        if q is not None:
            return StrLit(q, True, pos)
        if self.peek("("):
            self.i += 1
            items: list[Operand] = []
            self.ws()
            if not self.peek(")"):
                while True:
                    self.ws()
                    items.append(self.transformer_arg())
                    self.ws()
                    if self.peek(","):
                        self.i += 1
                        continue
                    break
            self.ws()
            if not self.peek(")"):
                raise self.error("expected ')' to close the list")
            self.i += 1
            return TransformerList(tuple(items), pos)
        f = self.field_or_transformer(allow_val=False)
        if f is not None:
            return f
        num = self.regex(_NUMBER)
        if num is not None:
            return StrLit(num, False, pos)
        raise self.error("expected a field, a transformer, a quoted string or a number")

    def operator(self) -> str | None:
        for op in _SYM_OPS:
            if self.peek(op):
                # '=' must not eat the start of '=='; '<' not of '<='
                self.i += len(op)
                return op
        for op in _WORD_OPS:
            if self.keyword(op):
                return op
        return None

    def condition(self, lhs: FieldRef | Transform, pos: int) -> Check:
        self.ws()
        op_pos = self.i
        op = self.operator()
        if op is None:
            raise self.error(f"expected an operator after '{self.s[pos:op_pos].strip()}'")
        if op == "exists":
            return Check(lhs, op, None, None, pos)
        self.ws()
        # val(field) / transformer on the right-hand side
        save = self.i
        rhs_f = self.field_or_transformer(allow_val=True)
        if isinstance(rhs_f, Transform):
            if op in ("pmatch", "regex"):
                raise self.error(f"operator '{op}' doesn't support right-hand side fields", save)
            return Check(lhs, op, rhs_f, None, pos)
        self.i = save
        if op in NUM_OPS:
            vpos = self.i
            num = self.regex(_NUMBER)
            if num is None:
                raise self.error(f"expected a number after '{op}'")
            if self.i < len(self.s) and self.s[self.i] not in _WS + ")":
                raise self.error(f"expected a number after '{op}'", vpos)
            return Check(lhs, op, StrLit(num, False, vpos), None, pos)
        if op in LIST_OPS:
            return Check(lhs, op, self.list_value(), None, pos)
        # string operators: an optional modifier, then a list
        save = self.i
        for mod in MODIFIERS:
            if self.keyword(mod):
                self.ws()
                if self.peek("("):
                    return Check(lhs, op, self.list_value(), mod, pos)
                self.i = save
                break
        return Check(lhs, op, self.str_value(), None, pos)

    def str_value(self) -> StrLit:
        pos = self.i
        q = self.quoted()
        if q is not None:
            return StrLit(q, True, pos)
        bare = self.regex(_BARE_STR)
        if bare is None:
            raise self.error("expected a value")
        return StrLit(bare, False, pos)

    def list_value(self) -> ListLit | ListRef:
        pos = self.i
        if not self.peek("("):
            ident = self.regex(_IDENT)
            if ident is None:
                raise self.error("expected a list")
            return ListRef(ident, pos)
        self.i += 1
        items: list[StrLit] = []
        self.ws()
        if self.peek(")"):
            self.i += 1
            return ListLit((), pos)
        while True:
            self.ws()
            items.append(self.str_value())
            self.ws()
            if self.peek(","):
                self.i += 1
                continue
            if self.peek(")"):
                self.i += 1
                return ListLit(tuple(items), pos)
            raise self.error("expected ',' or ')' in list")
