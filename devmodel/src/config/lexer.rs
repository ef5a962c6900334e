//! Tokens of the Python subset that xm/xl config files are written in.
//!
//! xm executed a config file as a Python 2 script, so the lexer follows Python's rules where real files rely
//! on them: `#` comments, backslash continuation, implicit continuation inside brackets, indentation blocks
//! (for the `if re.search('64', arch):` idiom of xmexample.hvm), string prefixes and escapes, triple quotes,
//! and Python 2 integer forms (`512L`). A leading-zero integer such as `0512` is refused instead of guessed:
//! Python 2 read it as octal, which is almost never what a config author meant.

/// One token kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// An identifier or keyword.
    Name(String),
    /// An integer literal.
    Int(i64),
    /// A string literal, escapes resolved.
    Str(String),
    /// An operator or delimiter.
    Op(&'static str),
    /// End of a logical line.
    Newline,
    /// The next line is indented more than the enclosing block.
    Indent,
    /// The next line returns to an enclosing block's indentation.
    Dedent,
    /// End of input.
    Eof,
}

/// A token and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
}

/// A syntax error: what was found where, and what was expected instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: u32,
    pub found: String,
    pub expected: String,
}

/// Operators, longest first so that `==` wins over `=`.
const OPS: &[&str] = &[
    "==", "!=", "+=", "(", ")", "[", "]", "{", "}", ",", "=", "+", "-", "%", ":", ".", ";", "*",
    "<", ">",
];

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: u32,
    depth: usize,
    indents: Vec<usize>,
    out: Vec<Token>,
}

fn err(line: u32, found: impl Into<String>, expected: impl Into<String>) -> SyntaxError {
    SyntaxError {
        line,
        found: found.into(),
        expected: expected.into(),
    }
}

fn describe_char(c: char) -> String {
    if c.is_control() {
        format!("the control character U+{:04X}", c as u32)
    } else {
        format!("'{c}'")
    }
}

/// Splits `src` into tokens; the result always ends with `Newline`, any pending `Dedent`s and `Eof`.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut lx = Lexer {
        chars: src.chars().collect(),
        pos: 0,
        line: 1,
        depth: 0,
        indents: vec![0],
        out: Vec::new(),
    };
    lx.run()?;
    Ok(lx.out)
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn push(&mut self, tok: Tok, line: u32) {
        self.out.push(Token { tok, line });
    }

    fn run(&mut self) -> Result<(), SyntaxError> {
        let mut at_line_start = true;
        while self.pos < self.chars.len() {
            if at_line_start && self.depth == 0 {
                at_line_start = false;
                if self.indentation()? {
                    continue;
                }
            }
            let Some(c) = self.peek(0) else { break };
            match c {
                ' ' | '\t' | '\x0c' | '\r' => self.pos += 1,
                '#' => self.skip_comment(),
                '\\' => {
                    // A backslash joins the next physical line to this logical line.
                    let next = if self.peek(1) == Some('\r') { 2 } else { 1 };
                    if self.peek(next) == Some('\n') {
                        self.pos += next + 1;
                        self.line += 1;
                    } else {
                        return Err(err(
                            self.line,
                            "'\\' not at the end of a line",
                            "a line continuation",
                        ));
                    }
                }
                '\n' => {
                    let line = self.line;
                    self.pos += 1;
                    self.line += 1;
                    if self.depth == 0 {
                        self.end_line(line);
                        at_line_start = true;
                    }
                }
                '0'..='9' => self.number()?,
                c if c == '_' || c.is_alphabetic() => {
                    if !self.string_with_prefix()? {
                        self.name();
                    }
                }
                '\'' | '"' => self.string(0, false)?,
                _ => self.operator(c)?,
            }
        }
        let line = self.line;
        self.end_line(line);
        while self.indents.len() > 1 {
            self.indents.pop();
            self.push(Tok::Dedent, line);
        }
        self.push(Tok::Eof, line);
        Ok(())
    }

    fn end_line(&mut self, line: u32) {
        if !matches!(
            self.out.last().map(|t| &t.tok),
            None | Some(Tok::Newline) | Some(Tok::Indent) | Some(Tok::Dedent)
        ) {
            self.push(Tok::Newline, line);
        }
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.peek(0) {
            if c == '\n' {
                break;
            }
            self.pos += 1;
        }
    }

    /// Measures the indentation of a new line and emits `Indent`/`Dedent`. Returns true when the line is
    /// blank or only a comment (it is then consumed, newline included).
    fn indentation(&mut self) -> Result<bool, SyntaxError> {
        let mut width = 0usize;
        while let Some(c) = self.peek(0) {
            match c {
                ' ' => width += 1,
                '\t' => width = (width / 8 + 1) * 8,
                '\x0c' | '\r' => {}
                _ => break,
            }
            self.pos += 1;
        }
        match self.peek(0) {
            None => return Ok(true),
            Some('#') => {
                self.skip_comment();
                return Ok(true);
            }
            Some('\n') => {
                self.pos += 1;
                self.line += 1;
                return Ok(true);
            }
            _ => {}
        }
        let current = self.indents.last().copied().unwrap_or(0);
        if width > current {
            self.indents.push(width);
            self.push(Tok::Indent, self.line);
        } else {
            while width < self.indents.last().copied().unwrap_or(0) {
                self.indents.pop();
                self.push(Tok::Dedent, self.line);
            }
            if width != self.indents.last().copied().unwrap_or(0) {
                return Err(err(
                    self.line,
                    format!("an indentation of {width} columns"),
                    "the indentation of an enclosing block",
                ));
            }
        }
        Ok(false)
    }

    fn name(&mut self) {
        let start = self.pos;
        while let Some(c) = self.peek(0) {
            if c == '_' || c.is_alphanumeric() {
                self.pos += 1;
            } else {
                break;
            }
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        self.push(Tok::Name(name), self.line);
    }

    fn number(&mut self) -> Result<(), SyntaxError> {
        let start = self.pos;
        while let Some(c) = self.peek(0) {
            if c == '_' || c.is_ascii_alphanumeric() {
                self.pos += 1;
            } else {
                break;
            }
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            return Err(err(
                self.line,
                format!("the fractional number '{text}.…'"),
                "an integer",
            ));
        }
        let body = text
            .strip_suffix(['L', 'l'])
            .unwrap_or(&text)
            .replace('_', "");
        let lower = body.to_ascii_lowercase();
        let parsed = if let Some(hex) = lower.strip_prefix("0x") {
            i64::from_str_radix(hex, 16)
        } else if let Some(oct) = lower.strip_prefix("0o") {
            i64::from_str_radix(oct, 8)
        } else if let Some(bin) = lower.strip_prefix("0b") {
            i64::from_str_radix(bin, 2)
        } else if lower.len() > 1
            && lower.starts_with('0')
            && lower.bytes().all(|b| b.is_ascii_digit())
        {
            if lower.bytes().all(|b| b == b'0') {
                Ok(0)
            } else {
                return Err(err(
                    self.line,
                    format!("'{text}', which Python 2 (xm) read as an octal number"),
                    format!(
                        "a decimal number without leading zeros (write {} or 0o{} for octal)",
                        lower.trim_start_matches('0'),
                        lower.trim_start_matches('0')
                    ),
                ));
            }
        } else {
            lower.parse::<i64>()
        };
        let value = parsed.map_err(|e| {
            let why = if matches!(
                e.kind(),
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
            ) {
                format!("the integer '{text}', which is too large")
            } else {
                format!("'{text}'")
            };
            err(
                self.line,
                why,
                "an integer (decimal, 0x hex, 0o octal or 0b binary)",
            )
        })?;
        self.push(Tok::Int(value), self.line);
        Ok(())
    }

    /// A string with a prefix such as `r'..'` or `u".."`; returns false (consuming nothing) when the word
    /// at the cursor is not such a prefix.
    fn string_with_prefix(&mut self) -> Result<bool, SyntaxError> {
        let mut len = 0;
        let mut raw = false;
        while len < 2 {
            match self.peek(len) {
                Some('r' | 'R') => raw = true,
                Some('u' | 'U' | 'b' | 'B') => {}
                _ => break,
            }
            len += 1;
        }
        if len == 0 || !matches!(self.peek(len), Some('\'' | '"')) {
            return Ok(false);
        }
        self.string(len, raw)?;
        Ok(true)
    }

    fn string(&mut self, prefix: usize, raw: bool) -> Result<(), SyntaxError> {
        let line = self.line;
        self.pos += prefix;
        let Some(quote) = self.peek(0) else {
            return Err(err(line, "the end of the file", "a string"));
        };
        let triple = self.peek(1) == Some(quote) && self.peek(2) == Some(quote);
        self.pos += if triple { 3 } else { 1 };
        let mut value = String::new();
        loop {
            let Some(c) = self.peek(0) else {
                return Err(err(
                    line,
                    "a string that is never closed",
                    format!(
                        "a closing {}",
                        if triple {
                            format!("{quote}{quote}{quote}")
                        } else {
                            quote.to_string()
                        }
                    ),
                ));
            };
            if c == quote {
                if !triple {
                    self.pos += 1;
                    break;
                }
                if self.peek(1) == Some(quote) && self.peek(2) == Some(quote) {
                    self.pos += 3;
                    break;
                }
            }
            if c == '\n' {
                if !triple {
                    return Err(err(
                        line,
                        "a line break inside a string",
                        format!("a closing {quote} on the same line (or a triple-quoted string)"),
                    ));
                }
                self.line += 1;
            }
            if c == '\\' {
                self.pos += 1;
                self.escape(&mut value, raw, line)?;
                continue;
            }
            value.push(c);
            self.pos += 1;
        }
        self.push(Tok::Str(value), line);
        Ok(())
    }

    /// Resolves the escape after a backslash (the cursor is on the character after it).
    fn escape(&mut self, value: &mut String, raw: bool, line: u32) -> Result<(), SyntaxError> {
        let Some(c) = self.peek(0) else {
            return Err(err(
                line,
                "a string that is never closed",
                "a closing quote",
            ));
        };
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            if raw {
                value.push('\\');
                value.push('\n');
            }
            return Ok(());
        }
        if raw {
            value.push('\\');
            value.push(c);
            return Ok(());
        }
        let simple = match c {
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            _ => None,
        };
        if let Some(s) = simple {
            value.push(s);
            return Ok(());
        }
        match c {
            '0'..='7' => {
                let mut code = c.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.peek(0).and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            code = code * 8 + d;
                            self.pos += 1;
                        }
                        None => break,
                    }
                }
                value.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            'x' | 'u' | 'U' => {
                let digits = match c {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..digits).filter_map(|i| self.peek(i)).collect();
                let code = (hex.len() == digits)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32)
                    .ok_or_else(|| {
                        err(
                            line,
                            format!("the escape '\\{c}{hex}'"),
                            format!("'\\{c}' followed by {digits} hex digits"),
                        )
                    })?;
                self.pos += digits;
                value.push(code);
            }
            other => {
                // Python keeps unknown escapes as they are.
                value.push('\\');
                value.push(other);
            }
        }
        Ok(())
    }

    fn operator(&mut self, c: char) -> Result<(), SyntaxError> {
        for op in OPS {
            let matches = op
                .chars()
                .enumerate()
                .all(|(i, oc)| self.peek(i) == Some(oc));
            if matches {
                self.pos += op.len();
                match *op {
                    "(" | "[" | "{" => self.depth += 1,
                    ")" | "]" | "}" => self.depth = self.depth.saturating_sub(1),
                    _ => {}
                }
                self.push(Tok::Op(op), self.line);
                return Ok(());
            }
        }
        Err(err(
            self.line,
            describe_char(c),
            "a key, a value, an operator (+ %) or a comment",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        tokenize(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_in_python_forms() {
        assert_eq!(
            toks("a = 0x1F + 0o17 + 0b11 + 512L + 0"),
            vec![
                Tok::Name("a".into()),
                Tok::Op("="),
                Tok::Int(31),
                Tok::Op("+"),
                Tok::Int(15),
                Tok::Op("+"),
                Tok::Int(3),
                Tok::Op("+"),
                Tok::Int(512),
                Tok::Op("+"),
                Tok::Int(0),
                Tok::Newline,
                Tok::Eof
            ]
        );
        let e = tokenize("memory = 0512").unwrap_err();
        assert!(e.found.contains("octal"), "{e:?}");
        assert!(tokenize("memory = 1.5")
            .unwrap_err()
            .found
            .contains("fractional"));
        assert!(tokenize("memory = 99999999999999999999")
            .unwrap_err()
            .found
            .contains("too large"));
    }

    #[test]
    fn strings_escapes_prefixes_and_triple_quotes() {
        assert_eq!(
            toks(
                r#"a = 'it\'s\x41\n' r'\d' u"x" """l1
l2""""#
            )[2..6],
            [
                Tok::Str("it'sA\n".into()),
                Tok::Str("\\d".into()),
                Tok::Str("x".into()),
                Tok::Str("l1\nl2".into()),
            ]
        );
        assert!(tokenize("a = 'open\n'").is_err());
        assert!(tokenize("a = '''never").is_err());
        assert!(tokenize("a = '\\x4'").is_err());
    }

    #[test]
    fn continuation_lines_and_brackets_do_not_end_the_line() {
        let t = tokenize("a = 1 + \\\n 2\nb = [1,\n 2]\n").unwrap();
        let newlines: Vec<u32> = t
            .iter()
            .filter(|t| t.tok == Tok::Newline)
            .map(|t| t.line)
            .collect();
        assert_eq!(newlines, vec![2, 4]);
    }

    #[test]
    fn indentation_blocks() {
        let t = toks("if x:\n    a = 1\n    # c\n\n    b = 2\nc = 3\n");
        assert_eq!(t.iter().filter(|t| **t == Tok::Indent).count(), 1);
        assert_eq!(t.iter().filter(|t| **t == Tok::Dedent).count(), 1);
        assert!(tokenize("if x:\n    a = 1\n  b = 2\n").is_err());
    }
}
