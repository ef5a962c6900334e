//! Evaluation of parsed config statements into named values.
//!
//! xm ran the file as a Python script and then read the globals it knew; every other global (such as
//! `arch_libdir`) was a helper variable. We do the same: statements run in order, each assignment binds a
//! name, and the caller decides afterwards which names are config keys. Names that some later expression
//! read are recorded in [`Evaluated::used`], which is how the caller tells a helper variable from a
//! misspelt key.
//!
//! Only the idioms of real xm files are provided: `import os, re, sys` (other modules are refused),
//! `os.uname()` (the host's answer, as xm saw it), `re.search`/`re.match` with plain-text patterns, and the
//! builtins `str`, `int` and `len`. String `%` formatting supports `%s`, `%d`, `%i`, `%x`, `%X` and `%%`
//! without flags or widths.
//!
//! Every value built is charged against a budget ([`BUDGET`] bytes) and lists may nest at most
//! [`MAX_VALUE_DEPTH`] levels, so `x = x + x` repeated, or `a = [a]` repeated, ends in an error instead
//! of exhausting memory or the stack.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::lexer::SyntaxError;
use super::parser::{BinOp, Expr, Stmt};

/// Total bytes (roughly) that one evaluation may build.
pub(crate) const BUDGET: usize = 16 << 20;
/// Deepest list-in-list nesting of a value.
pub(crate) const MAX_VALUE_DEPTH: usize = 16;

/// A Python value of the subset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// An imported module (`os`, `re`, `sys`).
    Module(&'static str),
    /// A callable: `os.uname`, `re.search`, `re.match`, `str`, `int`, `len`.
    Builtin(&'static str),
}

impl Value {
    /// "a string", "an integer", … for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
            Value::Tuple(_) => "a tuple",
            Value::Module(_) => "a module",
            Value::Builtin(_) => "a function",
        }
    }

    /// A short Python-like rendering for messages (long values are cut).
    pub(crate) fn show(&self) -> String {
        let mut s = String::new();
        self.render(&mut s);
        if s.chars().count() > 80 {
            let cut: String = s.chars().take(77).collect();
            format!("{cut}...")
        } else {
            s
        }
    }

    fn render(&self, out: &mut String) {
        if out.len() > 200 {
            return;
        }
        match self {
            Value::None => out.push_str("None"),
            Value::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Str(s) => out.push_str(&format!("'{}'", s.escape_debug())),
            Value::List(items) | Value::Tuple(items) => {
                let (open, close) = if matches!(self, Value::List(_)) {
                    ('[', ']')
                } else {
                    ('(', ')')
                };
                out.push(open);
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.render(out);
                    if out.len() > 200 {
                        break;
                    }
                }
                out.push(close);
            }
            Value::Module(m) => out.push_str(&format!("<module {m}>")),
            Value::Builtin(f) => out.push_str(&format!("<function {f}>")),
        }
    }

    /// Python truthiness.
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Str(s) => !s.is_empty(),
            Value::List(v) | Value::Tuple(v) => !v.is_empty(),
            Value::Module(_) | Value::Builtin(_) => true,
        }
    }

    /// Approximate bytes held, for the budget.
    fn weight(&self) -> usize {
        match self {
            Value::Str(s) => 16 + s.len(),
            Value::List(v) | Value::Tuple(v) => 16 + v.iter().map(Value::weight).sum::<usize>(),
            _ => 16,
        }
    }

    /// List-in-list nesting depth (0 for scalars).
    fn depth(&self) -> usize {
        match self {
            Value::List(v) | Value::Tuple(v) => 1 + v.iter().map(Value::depth).max().unwrap_or(0),
            _ => 0,
        }
    }
}

/// A name bound by an assignment, with the line of its last assignment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Binding {
    pub value: Value,
    pub line: u32,
}

/// The outcome of running a file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Evaluated {
    /// Every name assigned, last assignment wins.
    pub vars: BTreeMap<String, Binding>,
    /// Names that some expression read.
    pub used: BTreeSet<String>,
}

/// Modules a config may import.
const MODULES: &[&str] = &["os", "re", "sys", "os.path"];

struct Evaluator<'a> {
    out: &'a mut Evaluated,
    budget: usize,
}

fn fail(line: u32, found: impl Into<String>, expected: impl Into<String>) -> SyntaxError {
    SyntaxError {
        line,
        found: found.into(),
        expected: expected.into(),
    }
}

/// Runs `stmts`, adding to `state` (which may hold the bindings of an earlier run).
pub(crate) fn run(stmts: &[Stmt], state: &mut Evaluated) -> Result<(), SyntaxError> {
    let mut ev = Evaluator {
        out: state,
        budget: BUDGET,
    };
    ev.block(stmts)
}

/// Evaluates one expression against `state` (names read are recorded as used).
pub(crate) fn eval_expr(expr: &Expr, state: &mut Evaluated) -> Result<Value, SyntaxError> {
    let mut ev = Evaluator {
        out: state,
        budget: BUDGET,
    };
    ev.expr(expr)
}

impl Evaluator<'_> {
    fn charge(&mut self, v: &Value, line: u32) -> Result<(), SyntaxError> {
        let w = v.weight();
        if w > self.budget {
            return Err(fail(
                line,
                "a value that grows past the evaluation limit (16 MiB in all)",
                "config values of a sensible size",
            ));
        }
        self.budget -= w;
        if v.depth() > MAX_VALUE_DEPTH {
            return Err(fail(
                line,
                format!("lists nested more than {MAX_VALUE_DEPTH} levels deep"),
                "a flatter value",
            ));
        }
        Ok(())
    }

    fn block(&mut self, stmts: &[Stmt]) -> Result<(), SyntaxError> {
        for s in stmts {
            match s {
                Stmt::Pass => {}
                Stmt::Import { modules, line } => {
                    for m in modules {
                        let Some(known) = MODULES.iter().find(|k| **k == m.as_str()) else {
                            return Err(fail(
                                *line,
                                format!("import of the module '{m}'"),
                                "only os, re or sys (a config file is read, not run)",
                            ));
                        };
                        let top = known.split('.').next().unwrap_or(known);
                        let top = MODULES.iter().find(|k| **k == top).copied().unwrap_or("os");
                        self.out.vars.insert(
                            top.to_string(),
                            Binding {
                                value: Value::Module(top),
                                line: *line,
                            },
                        );
                        // An import is not a config key; mark it used so it is never taken for one.
                        self.out.used.insert(top.to_string());
                    }
                }
                Stmt::Assign {
                    target,
                    value,
                    line,
                    augmented,
                } => {
                    let at_line = |mut e: SyntaxError| {
                        if e.line == 0 {
                            e.line = *line;
                        }
                        e
                    };
                    let mut v = self.expr(value).map_err(at_line)?;
                    if *augmented {
                        let old = self.lookup(target, *line)?;
                        v = self.binary(old, BinOp::Add, v, *line)?;
                    }
                    self.out.vars.insert(
                        target.clone(),
                        Binding {
                            value: v,
                            line: *line,
                        },
                    );
                }
                Stmt::If {
                    branches,
                    otherwise,
                } => {
                    let mut taken = false;
                    for (_, cond, body) in branches {
                        if self.expr(cond)?.truthy() {
                            self.block(body)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.block(otherwise)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn lookup(&mut self, name: &str, line: u32) -> Result<Value, SyntaxError> {
        if let Some(b) = self.out.vars.get(name) {
            let v = b.value.clone();
            self.out.used.insert(name.to_string());
            self.charge(&v, line)?;
            return Ok(v);
        }
        match name {
            "str" => return Ok(Value::Builtin("str")),
            "int" => return Ok(Value::Builtin("int")),
            "len" => return Ok(Value::Builtin("len")),
            _ => {}
        }
        let hint = super::keys::closest(name, self.out.vars.keys().map(String::as_str))
            .map(|s| format!(" (did you mean '{s}'?)"))
            .unwrap_or_default();
        Err(fail(
            line,
            format!("the name '{name}', which is not assigned before this line{hint}"),
            "a value, or a name assigned earlier in the file (strings need quotes)",
        ))
    }

    fn expr(&mut self, e: &Expr) -> Result<Value, SyntaxError> {
        let v = match e {
            Expr::None => Value::None,
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Int(i) => Value::Int(*i),
            Expr::Str(s) => {
                let v = Value::Str(s.clone());
                self.charge(&v, 0)?;
                v
            }
            Expr::Name { name, line } => self.lookup(name, *line)?,
            Expr::List(items) | Expr::Tuple(items) => {
                let mut vals = Vec::with_capacity(items.len());
                for item in items {
                    vals.push(self.expr(item)?);
                }
                let v = if matches!(e, Expr::List(_)) {
                    Value::List(vals)
                } else {
                    Value::Tuple(vals)
                };
                if v.depth() > MAX_VALUE_DEPTH {
                    return Err(fail(
                        0,
                        format!("lists nested more than {MAX_VALUE_DEPTH} levels deep"),
                        "a flatter value",
                    ));
                }
                v
            }
            Expr::Chain { first, rest, line } => {
                let mut acc = self.expr(first)?;
                for (op, operand) in rest {
                    let rhs = self.expr(operand)?;
                    acc = self.binary(acc, *op, rhs, *line)?;
                }
                acc
            }
            Expr::Neg { value, line } => match self.expr(value)? {
                Value::Int(i) => Value::Int(
                    i.checked_neg()
                        .ok_or_else(|| fail(*line, "an integer overflow", "smaller numbers"))?,
                ),
                other => {
                    return Err(fail(
                        *line,
                        format!("'-' before {}", other.type_name()),
                        "'-' before an integer",
                    ))
                }
            },
            Expr::Not(inner) => Value::Bool(!self.expr(inner)?.truthy()),
            Expr::Logic { and_, items } => {
                let mut last = Value::Bool(*and_);
                for item in items {
                    last = self.expr(item)?;
                    if last.truthy() != *and_ {
                        break;
                    }
                }
                last
            }
            Expr::Compare {
                op,
                left,
                right,
                line,
            } => {
                let (l, r) = (self.expr(left)?, self.expr(right)?);
                let result = match *op {
                    "==" => l == r,
                    "!=" => l != r,
                    _ => {
                        let found = match (&l, &r) {
                            (Value::Str(needle), Value::Str(hay)) => hay.contains(needle.as_str()),
                            (_, Value::List(items) | Value::Tuple(items)) => items.contains(&l),
                            _ => {
                                return Err(fail(
                                    *line,
                                    format!("'in' with {} on the right", r.type_name()),
                                    "a string or a list on the right of 'in'",
                                ))
                            }
                        };
                        found == (*op == "in")
                    }
                };
                Value::Bool(result)
            }
            Expr::Attr { object, name, line } => {
                let obj = self.expr(object)?;
                let qualified = match &obj {
                    Value::Module(m) => format!("{m}.{name}"),
                    other => {
                        return Err(fail(
                            *line,
                            format!("the attribute '.{name}' of {}", other.type_name()),
                            "os.uname, re.search or re.match",
                        ))
                    }
                };
                match qualified.as_str() {
                    "os.uname" => Value::Builtin("os.uname"),
                    "re.search" => Value::Builtin("re.search"),
                    "re.match" => Value::Builtin("re.match"),
                    "os.path" => Value::Module("os.path"),
                    _ => return Err(fail(*line, format!("'{qualified}'"), "os.uname, re.search or re.match (the only library calls a config may make)")),
                }
            }
            Expr::Call {
                function,
                args,
                line,
            } => {
                let f = self.expr(function)?;
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.expr(a)?);
                }
                let Value::Builtin(name) = f else {
                    return Err(fail(
                        *line,
                        format!("a call of {}", f.type_name()),
                        "a call of os.uname, re.search, re.match, str, int or len",
                    ));
                };
                self.call(name, vals, *line)?
            }
            Expr::Index {
                object,
                index,
                line,
            } => {
                let obj = self.expr(object)?;
                let idx = self.expr(index)?;
                index_value(&obj, &idx, *line)?
            }
        };
        Ok(v)
    }

    fn binary(&mut self, l: Value, op: BinOp, r: Value, line: u32) -> Result<Value, SyntaxError> {
        let overflow = || fail(line, "an integer overflow", "smaller numbers");
        let v = match (op, l, r) {
            (BinOp::Add, Value::Int(a), Value::Int(b)) => {
                Value::Int(a.checked_add(b).ok_or_else(overflow)?)
            }
            (BinOp::Sub, Value::Int(a), Value::Int(b)) => {
                Value::Int(a.checked_sub(b).ok_or_else(overflow)?)
            }
            (BinOp::Mod, Value::Int(a), Value::Int(b)) => {
                if b == 0 {
                    return Err(fail(line, "'%' by zero", "a non-zero divisor"));
                }
                Value::Int(a.checked_rem_euclid(b).ok_or_else(overflow)?)
            }
            (BinOp::Add, Value::Str(a), Value::Str(b)) => {
                self.charge_len(a.len() + b.len(), line)?;
                Value::Str(a + &b)
            }
            (BinOp::Add, Value::List(mut a), Value::List(b)) => {
                self.charge_len(a.len() + b.len(), line)?;
                a.extend(b);
                Value::List(a)
            }
            (BinOp::Add, Value::Tuple(mut a), Value::Tuple(b)) => {
                self.charge_len(a.len() + b.len(), line)?;
                a.extend(b);
                Value::Tuple(a)
            }
            (BinOp::Mod, Value::Str(f), args) => {
                let v = Value::Str(format(&f, args, line)?);
                self.charge(&v, line)?;
                v
            }
            (op, l, r) => {
                let sym = match op {
                    BinOp::Add => "+",
                    BinOp::Sub => "-",
                    BinOp::Mod => "%",
                };
                return Err(fail(
                    line,
                    format!(
                        "{} {sym} {} ({} {sym} {})",
                        l.type_name(),
                        r.type_name(),
                        l.show(),
                        r.show()
                    ),
                    match op {
                        BinOp::Add => {
                            "two strings, two lists or two integers on either side of '+'"
                        }
                        BinOp::Sub => "two integers on either side of '-'",
                        BinOp::Mod => "a format string or an integer on the left of '%'",
                    },
                ));
            }
        };
        Ok(v)
    }

    /// Charges a concatenation by its element or byte count (the parts were charged when built).
    fn charge_len(&mut self, len: usize, line: u32) -> Result<(), SyntaxError> {
        if len.saturating_mul(16) > self.budget || len > self.budget {
            return Err(fail(
                line,
                "a value that grows past the evaluation limit (16 MiB in all)",
                "config values of a sensible size",
            ));
        }
        self.budget -= len;
        Ok(())
    }

    fn call(&mut self, name: &str, args: Vec<Value>, line: u32) -> Result<Value, SyntaxError> {
        let arity = |n: usize| -> Result<(), SyntaxError> {
            if args.len() == n {
                Ok(())
            } else {
                Err(fail(
                    line,
                    format!("{}() with {} arguments", name, args.len()),
                    format!("{n} arguments"),
                ))
            }
        };
        match name {
            "os.uname" => {
                arity(0)?;
                Ok(Value::Tuple(uname().into_iter().map(Value::Str).collect()))
            }
            "re.search" | "re.match" => {
                arity(2)?;
                let (Value::Str(pattern), Value::Str(text)) = (&args[0], &args[1]) else {
                    return Err(fail(
                        line,
                        format!(
                            "{name}() of {} and {}",
                            args[0].type_name(),
                            args[1].type_name()
                        ),
                        "two strings",
                    ));
                };
                if let Some(c) = pattern.chars().find(|c| ".^$*+?{}[]\\|()".contains(*c)) {
                    return Err(fail(
                        line,
                        format!("the regular expression '{pattern}' (with '{c}')"),
                        "a plain-text pattern (regular expression syntax is not supported)",
                    ));
                }
                let hit = if name == "re.match" {
                    text.starts_with(pattern.as_str())
                } else {
                    text.contains(pattern.as_str())
                };
                Ok(if hit { Value::Bool(true) } else { Value::None })
            }
            "str" => {
                arity(1)?;
                Ok(Value::Str(match &args[0] {
                    Value::Str(s) => s.clone(),
                    other => other.show(),
                }))
            }
            "int" => {
                arity(1)?;
                match &args[0] {
                    Value::Int(i) => Ok(Value::Int(*i)),
                    Value::Bool(b) => Ok(Value::Int(i64::from(*b))),
                    Value::Str(s) => s.trim().parse::<i64>().map(Value::Int).map_err(|_| {
                        fail(
                            line,
                            format!("int('{s}')"),
                            "a string holding a decimal integer",
                        )
                    }),
                    other => Err(fail(
                        line,
                        format!("int() of {}", other.type_name()),
                        "a string or an integer",
                    )),
                }
            }
            _ => {
                arity(1)?;
                match &args[0] {
                    Value::Str(s) => Ok(Value::Int(s.chars().count() as i64)),
                    Value::List(v) | Value::Tuple(v) => Ok(Value::Int(v.len() as i64)),
                    other => Err(fail(
                        line,
                        format!("len() of {}", other.type_name()),
                        "a string or a list",
                    )),
                }
            }
        }
    }
}

fn index_value(obj: &Value, idx: &Value, line: u32) -> Result<Value, SyntaxError> {
    let Value::Int(i) = idx else {
        return Err(fail(
            line,
            format!("an index that is {}", idx.type_name()),
            "an integer index",
        ));
    };
    let len = match obj {
        Value::Str(s) => s.chars().count(),
        Value::List(v) | Value::Tuple(v) => v.len(),
        other => {
            return Err(fail(
                line,
                format!("indexing {}", other.type_name()),
                "a string, list or tuple",
            ))
        }
    };
    let pos = if *i < 0 {
        i.checked_add(len as i64)
    } else {
        Some(*i)
    };
    let pos = pos
        .filter(|p| *p >= 0 && (*p as usize) < len)
        .ok_or_else(|| {
            fail(
                line,
                format!("the index {i} into {} of length {len}", obj.type_name()),
                format!("an index from {} to {}", -(len as i64), len as i64 - 1),
            )
        })? as usize;
    Ok(match obj {
        Value::Str(s) => Value::Str(s.chars().nth(pos).map(String::from).unwrap_or_default()),
        Value::List(v) | Value::Tuple(v) => v.get(pos).cloned().unwrap_or(Value::None),
        _ => Value::None,
    })
}

/// `%` formatting with `%s %d %i %x %X %%`.
fn format(fmt: &str, args: Value, line: u32) -> Result<String, SyntaxError> {
    let args = match args {
        Value::Tuple(v) => v,
        single => vec![single],
    };
    let mut next = args.into_iter();
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars.next();
        if spec == Some('%') {
            out.push('%');
            continue;
        }
        let arg = next.next().ok_or_else(|| {
            fail(
                line,
                format!("'{fmt}' with too few values"),
                "one value per % conversion",
            )
        })?;
        match (spec, &arg) {
            (Some('s'), Value::Str(s)) => out.push_str(s),
            (Some('s'), other) => out.push_str(&other.show()),
            (Some('d' | 'i'), Value::Int(i)) => out.push_str(&i.to_string()),
            (Some('x'), Value::Int(i)) => out.push_str(&format!("{i:x}")),
            (Some('X'), Value::Int(i)) => out.push_str(&format!("{i:X}")),
            (Some(s @ ('d' | 'i' | 'x' | 'X')), other) => {
                return Err(fail(
                    line,
                    format!("%{s} given {}", other.type_name()),
                    format!("an integer for %{s}"),
                ))
            }
            (s, _) => {
                return Err(fail(
                    line,
                    format!(
                        "the conversion '%{}' in '{fmt}'",
                        s.map(String::from).unwrap_or_default()
                    ),
                    "%s, %d, %i, %x, %X or %% (flags and widths are not supported)",
                ))
            }
        }
    }
    if next.next().is_some() {
        return Err(fail(
            line,
            format!("'{fmt}' with more values than conversions"),
            "one value per % conversion",
        ));
    }
    Ok(out)
}

/// `os.uname()` as Python returns it: (sysname, nodename, release, version, machine).
fn uname() -> Vec<String> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let machine = match std::env::consts::ARCH {
        "x86" => "i686",
        other => other,
    };
    vec![
        "Linux".to_string(),
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/osrelease"),
        read("/proc/sys/kernel/version"),
        machine.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::{lexer::tokenize, parser::parse};
    use super::*;

    fn run_src(src: &str) -> Result<Evaluated, SyntaxError> {
        let mut st = Evaluated::default();
        run(&parse(tokenize(src)?)?, &mut st)?;
        Ok(st)
    }

    fn get(st: &Evaluated, k: &str) -> Value {
        st.vars[k].value.clone()
    }

    #[test]
    fn xm_idioms() {
        let st = run_src(
            "import os, re\narch = os.uname()[4]\nif re.search('64', arch):\n    arch_libdir = 'lib64'\nelse:\n    arch_libdir = 'lib'\ndevice_model = '/usr/' + arch_libdir + '/xen/bin/qemu-dm'\n",
        )
        .unwrap();
        let dm = get(&st, "device_model");
        assert!(
            dm == Value::Str("/usr/lib64/xen/bin/qemu-dm".into())
                || dm == Value::Str("/usr/lib/xen/bin/qemu-dm".into())
        );
        assert!(st.used.contains("arch_libdir") && st.used.contains("arch"));
        assert!(!st.used.contains("device_model"));
    }

    #[test]
    fn operators() {
        let st = run_src("a = [1] + [2,]\nb = 'n%d-%s%%' % (3, 'x')\nc = 'v%s' % 'y'\nd = 10 - -2 % 5\ne = 'x' in 'xyz' and 5\nf = not []\na += [3]\n").unwrap();
        assert_eq!(
            get(&st, "a"),
            Value::List(vec![Value::Int(1), Value::Int(2), Value::Int(3)])
        );
        assert_eq!(get(&st, "b"), Value::Str("n3-x%".into()));
        assert_eq!(get(&st, "c"), Value::Str("vy".into()));
        assert_eq!(get(&st, "d"), Value::Int(7));
        assert_eq!(get(&st, "e"), Value::Int(5));
        assert_eq!(get(&st, "f"), Value::Bool(true));
    }

    #[test]
    fn errors_say_found_and_expected() {
        let e = run_src("arch_libdir = 'lib'\nx = '/usr/' + arch_libdr").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.found.contains("arch_libdr") && e.found.contains("did you mean 'arch_libdir'"),
            "{e:?}"
        );
        let e = run_src("x = 'a' + 1").unwrap_err();
        assert!(e.found.contains("a string + an integer"), "{e:?}");
        assert!(run_src("import subprocess")
            .unwrap_err()
            .found
            .contains("subprocess"));
        assert!(run_src("x = re.search('a.*', 'b')").is_err());
        assert!(run_src("x = '%5d' % 3")
            .unwrap_err()
            .expected
            .contains("%s"));
        assert!(run_src("x = [1][5]").unwrap_err().found.contains("index 5"));
        assert!(run_src("x = 9223372036854775807 + 1")
            .unwrap_err()
            .found
            .contains("overflow"));
    }

    #[test]
    fn growth_and_value_depth_are_bounded() {
        let doubling = "x = 'abcdefgh'\n".to_string() + &"x = x + x\n".repeat(64);
        assert!(run_src(&doubling).unwrap_err().found.contains("limit"));
        let list_doubling =
            "x = ['abcdefgh' + 'abcdefgh']\n".to_string() + &"x = x + x\n".repeat(64);
        assert!(run_src(&list_doubling).unwrap_err().found.contains("limit"));
        let wrapping = "a = 1\n".to_string() + &"a = [a]\n".repeat(10_000);
        assert!(run_src(&wrapping).unwrap_err().found.contains("nested"));
    }
}
