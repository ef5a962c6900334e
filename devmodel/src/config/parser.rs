//! Statements and expressions of the config-file Python subset.
//!
//! Grammar (a strict subset of Python 2/3): assignments `key = expr` and `key += expr` (several per line with
//! `;`), `import os, re, sys`, `pass`, and `if`/`elif`/`else` blocks. Expressions: literals, names, lists and
//! tuples (trailing commas allowed), `+ - %`, unary `-`/`+`, `not`/`and`/`or`, `==`/`!=`/`in`, attribute access,
//! calls and indexing. Everything else (`def`, loops, dicts, lambdas) is refused with the line it is on.
//!
//! Nesting is capped at [`MAX_DEPTH`] so that no input can overflow the stack here or in the evaluator (the
//! AST is never deeper than the parser's recursion). Runs of `+`/`-` or `%` are kept flat (one node holding
//! all operands), so a long `'a' + 'b' + …` line costs no recursion.

use super::lexer::{SyntaxError, Tok, Token};

/// Deepest nesting of brackets, unary operators, calls, indexing and `if` blocks accepted.
pub(crate) const MAX_DEPTH: usize = 64;

/// A binary operator in a flat chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mod,
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    Name {
        name: String,
        line: u32,
    },
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    /// `first op rest[0].1 op rest[1].1 …`, evaluated left to right.
    Chain {
        first: Box<Expr>,
        rest: Vec<(BinOp, Expr)>,
        line: u32,
    },
    Neg {
        value: Box<Expr>,
        line: u32,
    },
    Not(Box<Expr>),
    /// `items[0] and items[1] …` (`and_ == true`) or the same with `or`.
    Logic {
        and_: bool,
        items: Vec<Expr>,
    },
    /// `left == right`, `!=`, `in`, `not in`.
    Compare {
        op: &'static str,
        left: Box<Expr>,
        right: Box<Expr>,
        line: u32,
    },
    Attr {
        object: Box<Expr>,
        name: String,
        line: u32,
    },
    Call {
        function: Box<Expr>,
        args: Vec<Expr>,
        line: u32,
    },
    Index {
        object: Box<Expr>,
        index: Box<Expr>,
        line: u32,
    },
}

/// A statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stmt {
    /// `target = value` or, with `augmented`, `target += value`.
    Assign {
        target: String,
        value: Expr,
        line: u32,
        augmented: bool,
    },
    /// `import a, b`.
    Import { modules: Vec<String>, line: u32 },
    /// `if cond: … elif cond: … else: …`; each branch with the line of its condition.
    If {
        branches: Vec<(u32, Expr, Vec<Stmt>)>,
        otherwise: Vec<Stmt>,
    },
    /// `pass`.
    Pass,
}

const KEYWORDS_REFUSED: &[&str] = &[
    "def", "class", "for", "while", "lambda", "return", "try", "except", "with", "exec", "print",
    "del", "global", "assert", "raise", "yield", "from",
];

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Name(n) => format!("'{n}'"),
        Tok::Int(i) => format!("the number {i}"),
        Tok::Str(_) => "a string".to_string(),
        Tok::Op(o) => format!("'{o}'"),
        Tok::Newline => "the end of the line".to_string(),
        Tok::Indent => "an indented line".to_string(),
        Tok::Dedent => "the end of an indented block".to_string(),
        Tok::Eof => "the end of the file".to_string(),
    }
}

/// Parses a whole file (or one command-line override) into statements.
pub(crate) fn parse(tokens: Vec<Token>) -> Result<Vec<Stmt>, SyntaxError> {
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let mut out = Vec::new();
    while !p.at(&Tok::Eof) {
        if p.at(&Tok::Indent) {
            return Err(p.error(
                "an indented line",
                "a statement starting at the first column",
            ));
        }
        p.statement(&mut out)?;
    }
    Ok(out)
}

/// Parses one expression that must span all of `tokens` (used for command-line values).
pub(crate) fn parse_expression(tokens: Vec<Token>) -> Result<Expr, SyntaxError> {
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let e = p.expr()?;
    while p.at(&Tok::Newline) {
        p.pos += 1;
    }
    if !p.at(&Tok::Eof) {
        return Err(p.error(describe(&p.peek().tok), "the end of the value"));
    }
    Ok(e)
}

impl Parser {
    fn peek(&self) -> &Token {
        // The lexer always ends the stream with Eof and the parser never steps past it.
        &self.tokens[self.pos.min(self.tokens.len().saturating_sub(1))]
    }

    fn line(&self) -> u32 {
        self.peek().line
    }

    fn at(&self, tok: &Tok) -> bool {
        self.tokens
            .get(self.pos)
            .map_or(*tok == Tok::Eof, |t| t.tok == *tok)
    }

    fn at_op(&self, op: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token { tok: Tok::Op(o), .. }) if *o == op)
    }

    fn at_name(&self, name: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token { tok: Tok::Name(n), .. }) if n == name)
    }

    fn advance(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn error(&self, found: impl Into<String>, expected: impl Into<String>) -> SyntaxError {
        SyntaxError {
            line: self.line(),
            found: found.into(),
            expected: expected.into(),
        }
    }

    fn expect_op(&mut self, op: &str, expected: &str) -> Result<(), SyntaxError> {
        if self.at_op(op) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(describe(&self.peek().tok), expected))
        }
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(
                format!("nesting deeper than {MAX_DEPTH} levels"),
                "a flatter expression",
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn end_of_statement(&mut self) -> Result<(), SyntaxError> {
        if self.at(&Tok::Newline) {
            self.pos += 1;
            Ok(())
        } else if self.at(&Tok::Eof) || self.at(&Tok::Dedent) {
            Ok(())
        } else {
            Err(self.error(describe(&self.peek().tok), "the end of the line"))
        }
    }

    fn statement(&mut self, out: &mut Vec<Stmt>) -> Result<(), SyntaxError> {
        if self.at_name("if") {
            return self.if_statement(out);
        }
        loop {
            out.push(self.small_statement()?);
            if self.at_op(";") {
                self.pos += 1;
                if self.at(&Tok::Newline) || self.at(&Tok::Eof) {
                    break;
                }
                continue;
            }
            break;
        }
        self.end_of_statement()
    }

    fn small_statement(&mut self) -> Result<Stmt, SyntaxError> {
        let line = self.line();
        if self.at_name("import") {
            self.pos += 1;
            let mut modules = Vec::new();
            loop {
                let mut name = self.name("a module name")?;
                while self.at_op(".") {
                    self.pos += 1;
                    name.push('.');
                    name.push_str(&self.name("a module name")?);
                }
                modules.push(name);
                if !self.at_op(",") {
                    break;
                }
                self.pos += 1;
            }
            return Ok(Stmt::Import { modules, line });
        }
        if self.at_name("pass") {
            self.pos += 1;
            return Ok(Stmt::Pass);
        }
        if let Tok::Name(n) = &self.peek().tok {
            if KEYWORDS_REFUSED.contains(&n.as_str()) {
                return Err(self.error(
                    format!("the Python statement '{n}'"),
                    "an assignment (key = value), import or if: a config file is not a general Python script",
                ));
            }
        }
        if let (
            Some(Token {
                tok: Tok::Name(n), ..
            }),
            Some(Token {
                tok: Tok::Op(op @ ("=" | "+=")),
                ..
            }),
        ) = (self.tokens.get(self.pos), self.tokens.get(self.pos + 1))
        {
            let (target, augmented) = (n.clone(), *op == "+=");
            self.pos += 2;
            let value = self.expr()?;
            if self.at_op("=") {
                return Err(self.error("a second '='", "one value per assignment"));
            }
            return Ok(Stmt::Assign {
                target,
                value,
                line,
                augmented,
            });
        }
        let start = self.pos;
        let expr = self.expr()?;
        if self.at_op("=") {
            let text = self.source_text(start, self.pos);
            let hint = if text == "full-screen" {
                " (xend never read 'full-screen': it is only a comment in xmexample.hvm, and '-' cannot be part of a name; \
                   write 'fullscreen = 1' for a full-screen SDL window)"
            } else {
                ""
            };
            return Err(SyntaxError {
                line,
                found: format!("'{text}' on the left of '='{hint}"),
                expected: "a key name made of letters, digits and '_'".to_string(),
            });
        }
        let _ = expr;
        Err(SyntaxError {
            line,
            found: format!(
                "the expression '{}' on its own",
                self.source_text(start, self.pos)
            ),
            expected: "an assignment (key = value)".to_string(),
        })
    }

    /// Rebuilds short source text from tokens, for messages.
    fn source_text(&self, from: usize, to: usize) -> String {
        let mut s = String::new();
        for t in self.tokens.get(from..to).unwrap_or(&[]).iter().take(12) {
            match &t.tok {
                Tok::Name(n) => s.push_str(n),
                Tok::Int(i) => s.push_str(&i.to_string()),
                Tok::Str(v) => s.push_str(&format!("{v:?}")),
                Tok::Op(o) => s.push_str(o),
                _ => {}
            }
        }
        s
    }

    fn name(&mut self, expected: &str) -> Result<String, SyntaxError> {
        match &self.peek().tok {
            Tok::Name(n) => {
                let n = n.clone();
                self.pos += 1;
                Ok(n)
            }
            other => Err(self.error(describe(other), expected)),
        }
    }

    fn if_statement(&mut self, out: &mut Vec<Stmt>) -> Result<(), SyntaxError> {
        self.enter()?;
        let mut branches = Vec::new();
        let mut otherwise = Vec::new();
        // "if" or "elif"
        self.pos += 1;
        loop {
            let line = self.line();
            let cond = self.expr()?;
            self.expect_op(":", "':' after the condition")?;
            let body = self.suite()?;
            branches.push((line, cond, body));
            if self.at_name("elif") {
                self.pos += 1;
                continue;
            }
            if self.at_name("else") {
                self.pos += 1;
                self.expect_op(":", "':' after else")?;
                otherwise = self.suite()?;
            }
            break;
        }
        self.leave();
        out.push(Stmt::If {
            branches,
            otherwise,
        });
        Ok(())
    }

    fn suite(&mut self) -> Result<Vec<Stmt>, SyntaxError> {
        let mut body = Vec::new();
        if !self.at(&Tok::Newline) {
            // `if x: a = 1` on one line.
            loop {
                body.push(self.small_statement()?);
                if !self.at_op(";") {
                    break;
                }
                self.pos += 1;
            }
            self.end_of_statement()?;
            return Ok(body);
        }
        self.pos += 1;
        if !self.at(&Tok::Indent) {
            return Err(self.error(describe(&self.peek().tok), "an indented block"));
        }
        self.pos += 1;
        while !self.at(&Tok::Dedent) && !self.at(&Tok::Eof) {
            self.statement(&mut body)?;
        }
        if self.at(&Tok::Dedent) {
            self.pos += 1;
        }
        Ok(body)
    }

    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        self.enter()?;
        let r = self.logic(false);
        self.leave();
        r
    }

    /// `or` chain (`and_ == false`) of `and` chains.
    fn logic(&mut self, and_: bool) -> Result<Expr, SyntaxError> {
        let word = if and_ { "and" } else { "or" };
        let first = if and_ {
            self.not_expr()?
        } else {
            self.logic(true)?
        };
        if !self.at_name(word) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.at_name(word) {
            self.pos += 1;
            items.push(if and_ {
                self.not_expr()?
            } else {
                self.logic(true)?
            });
        }
        Ok(Expr::Logic { and_, items })
    }

    fn not_expr(&mut self) -> Result<Expr, SyntaxError> {
        if self.at_name("not") {
            self.pos += 1;
            self.enter()?;
            let inner = self.not_expr();
            self.leave();
            return Ok(Expr::Not(Box::new(inner?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, SyntaxError> {
        let left = self.chain(false)?;
        let line = self.line();
        let op = if self.at_op("==") {
            "=="
        } else if self.at_op("!=") {
            "!="
        } else if self.at_name("in") {
            "in"
        } else if self.at_name("not")
            && matches!(self.tokens.get(self.pos + 1), Some(Token { tok: Tok::Name(n), .. }) if n == "in")
        {
            self.pos += 1;
            "not in"
        } else {
            return Ok(left);
        };
        self.pos += 1;
        let right = self.chain(false)?;
        Ok(Expr::Compare {
            op,
            left: Box::new(left),
            right: Box::new(right),
            line,
        })
    }

    /// A flat chain of `+`/`-` (`modulo == false`) or `%` (`modulo == true`) operations.
    fn chain(&mut self, modulo: bool) -> Result<Expr, SyntaxError> {
        let line = self.line();
        let first = if modulo {
            self.unary()?
        } else {
            self.chain(true)?
        };
        let mut rest = Vec::new();
        loop {
            let op = match &self.peek().tok {
                Tok::Op("+") if !modulo => BinOp::Add,
                Tok::Op("-") if !modulo => BinOp::Sub,
                Tok::Op("%") if modulo => BinOp::Mod,
                Tok::Op("*") => {
                    return Err(self.error(
                        "'*'",
                        "'+' or '%' (repetition and multiplication are not supported)",
                    ))
                }
                _ => break,
            };
            self.pos += 1;
            rest.push((
                op,
                if modulo {
                    self.unary()?
                } else {
                    self.chain(true)?
                },
            ));
        }
        if rest.is_empty() {
            return Ok(first);
        }
        Ok(Expr::Chain {
            first: Box::new(first),
            rest,
            line,
        })
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        let line = self.line();
        if self.at_op("-") || self.at_op("+") {
            let negate = self.at_op("-");
            self.pos += 1;
            self.enter()?;
            let inner = self.unary();
            self.leave();
            let inner = inner?;
            return Ok(match (negate, inner) {
                (false, e) => e,
                (true, Expr::Int(i)) => Expr::Int(i.wrapping_neg()),
                (true, e) => Expr::Neg {
                    value: Box::new(e),
                    line,
                },
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, SyntaxError> {
        let mut e = self.atom()?;
        let entered = self.depth;
        loop {
            let line = self.line();
            if self.at_op(".") {
                self.pos += 1;
                let name = self.name("an attribute name after '.'")?;
                self.enter()?;
                e = Expr::Attr {
                    object: Box::new(e),
                    name,
                    line,
                };
            } else if self.at_op("(") {
                self.pos += 1;
                self.enter()?;
                let args = self.sequence(")")?;
                e = Expr::Call {
                    function: Box::new(e),
                    args,
                    line,
                };
            } else if self.at_op("[") {
                self.pos += 1;
                self.enter()?;
                let index = self.expr()?;
                self.expect_op("]", "']' after the index")?;
                e = Expr::Index {
                    object: Box::new(e),
                    index: Box::new(index),
                    line,
                };
            } else {
                break;
            }
        }
        self.depth = entered;
        Ok(e)
    }

    /// Comma-separated expressions up to `close` (consumed); a trailing comma is allowed.
    fn sequence(&mut self, close: &str) -> Result<Vec<Expr>, SyntaxError> {
        let mut items = Vec::new();
        loop {
            if self.at_op(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.expr()?);
            if self.at_op(",") {
                self.pos += 1;
            } else if !self.at_op(close) {
                return Err(self.error(
                    describe(&self.peek().tok),
                    format!("',' or '{close}' (a list item needs a comma before the next one)"),
                ));
            }
        }
    }

    fn atom(&mut self) -> Result<Expr, SyntaxError> {
        let token = self.advance();
        let line = token.line;
        match token.tok {
            Tok::Int(i) => Ok(Expr::Int(i)),
            Tok::Str(mut s) => {
                // Adjacent literals concatenate, as in Python.
                while let Tok::Str(next) = &self.peek().tok {
                    s.push_str(next);
                    self.pos += 1;
                }
                Ok(Expr::Str(s))
            }
            Tok::Name(n) => match n.as_str() {
                "True" => Ok(Expr::Bool(true)),
                "False" => Ok(Expr::Bool(false)),
                "None" => Ok(Expr::None),
                "lambda" | "if" | "else" | "and" | "or" | "not" | "in" | "import" => {
                    Err(SyntaxError {
                        line,
                        found: format!("the keyword '{n}'"),
                        expected: "a value".to_string(),
                    })
                }
                _ => Ok(Expr::Name { name: n, line }),
            },
            Tok::Op("[") => {
                self.enter()?;
                let items = self.sequence("]")?;
                self.leave();
                Ok(Expr::List(items))
            }
            Tok::Op("(") => {
                self.enter()?;
                if self.at_op(")") {
                    self.pos += 1;
                    self.leave();
                    return Ok(Expr::Tuple(Vec::new()));
                }
                let first = self.expr()?;
                let result = if self.at_op(")") {
                    self.pos += 1;
                    first
                } else if self.at_op(",") {
                    self.pos += 1;
                    let mut items = vec![first];
                    items.extend(self.sequence(")")?);
                    Expr::Tuple(items)
                } else {
                    return Err(self.error(describe(&self.peek().tok), "')' or ','"));
                };
                self.leave();
                Ok(result)
            }
            Tok::Op("{") => Err(SyntaxError {
                line,
                found: "'{' (a dictionary)".to_string(),
                expected: "a string, number, list or name (dictionaries are not config values)"
                    .to_string(),
            }),
            other => Err(SyntaxError {
                line,
                found: describe(&other),
                expected: "a value (a string, number, list, True/False/None or a name)".to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;

    fn parse_src(src: &str) -> Result<Vec<Stmt>, SyntaxError> {
        parse(tokenize(src)?)
    }

    #[test]
    fn assignments_imports_and_ifs() {
        let s = parse_src(
            "import os, re\narch = os.uname()[4]\nif re.search('64', arch):\n    d = 'lib64'\nelse:\n    d = 'lib'\nx = 1; y += [2,]\n",
        )
        .unwrap();
        assert_eq!(s.len(), 5);
        assert!(matches!(&s[0], Stmt::Import { modules, line: 1 } if modules == &["os", "re"]));
        assert!(
            matches!(&s[2], Stmt::If { branches, otherwise } if branches.len() == 1 && otherwise.len() == 1)
        );
        assert!(
            matches!(&s[4], Stmt::Assign { target, augmented: true, line: 7, .. } if target == "y")
        );
    }

    #[test]
    fn chains_are_flat() {
        let s = parse_src("a = 'x' + b + 'y' % 3 - 1").unwrap();
        let Stmt::Assign {
            value: Expr::Chain { rest, .. },
            ..
        } = &s[0]
        else {
            panic!("{s:?}")
        };
        assert_eq!(rest.len(), 3);
    }

    #[test]
    fn refusals_name_line_found_and_expected() {
        let e = parse_src("a = 1\nfull-screen = 1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.found.contains("full-screen")
                && e.found.contains("xmexample")
                && e.found.contains("fullscreen = 1"),
            "{e:?}"
        );
        let e = parse_src("a = [1 2]").unwrap_err();
        assert!(e.expected.contains("','"), "{e:?}");
        let e = parse_src("def f():\n  pass\n").unwrap_err();
        assert!(e.found.contains("def"));
        let e = parse_src("a = {'x': 1}").unwrap_err();
        assert!(e.found.contains("dictionary"));
        assert!(parse_src("  a = 1").is_err());
        assert!(parse_src("a = 1 = 2").is_err());
        assert!(parse_src("os.system('x')").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        for open in ["[", "(", "-", "not ", "x[", "f("] {
            let src = format!("a = {}1", open.repeat(100_000));
            let e = parse_src(&src).unwrap_err();
            assert!(e.found.contains("nesting"), "{open}: {e:?}");
        }
        let deep_if = "if 1:\n".to_string()
            + &(1..200)
                .map(|i| format!("{}if 1:\n", " ".repeat(i)))
                .collect::<String>()
            + &" ".repeat(200)
            + "a = 1\n";
        assert!(parse_src(&deep_if).unwrap_err().found.contains("nesting"));
    }
}
