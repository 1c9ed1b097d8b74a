//! CRD `pattern`s, matched with the `regex` crate.
//!
//! The API server reads a CRD's `pattern` with Go's `regexp` (RE2 syntax)
//! and accepts a value when the pattern matches anywhere in it. `regex`
//! speaks nearly the same language; [`Pattern::parse`] first rewrites the
//! few places where Go reads a pattern otherwise, so that a value matches
//! here exactly when it matches for the API server:
//!
//! - `\d`, `\w`, `\s`, `\b` and their negations are ASCII in Go, Unicode in
//!   `regex` (and Go's `\s` has no vertical tab): they become explicit
//!   ASCII classes;
//! - `\Q...\E` (a literal run) is spelt out with escapes;
//! - octal escapes (`\101`) become `\x{41}`; `\p{^Greek}` becomes
//!   `\P{Greek}`;
//! - a `{` that does not start a repetition (`a{`, `a{,3}`) is a literal;
//! - inside `[...]`, `[`, `&&`, `--` and `~~` are literals in Go but nested
//!   classes and set operations in `regex`, and a `-` after a class escape
//!   (`[\d-z]`) is a literal: every class is rewritten item by item;
//! - `\<` and `\>` are literal in Go, word boundaries in `regex`.
//!
//! What Go itself refuses (a backreference, `\C`, an unknown escape) is
//! refused here too, with a [`PatternError`]; the caller then does not
//! check that pattern rather than guess.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use regex::Regex;

/// Why a CRD pattern cannot be checked.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PatternError {
    /// A construct Go's `regexp` does not accept either (so the CRD would
    /// not have it), or one `regex` cannot express.
    #[error("unsupported in a Go regular expression: {0}")]
    Unsupported(String),
    /// The rewritten pattern does not compile.
    #[error("not a valid regular expression")]
    Invalid(#[source] regex::Error),
}

/// A compiled CRD pattern.
#[derive(Clone, Debug)]
pub struct Pattern(Regex);

impl Pattern {
    /// Compiles the Go regular expression `go`. Patterns are compiled once
    /// per process and reused.
    pub fn parse(go: &str) -> Result<Pattern, PatternError> {
        static CACHE: OnceLock<Mutex<HashMap<String, Result<Pattern, PatternError>>>> =
            OnceLock::new();
        let cache = CACHE.get_or_init(Mutex::default);
        // A poisoned lock only means another thread panicked mid-insert;
        // the map itself is still a valid cache.
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(go.to_string())
            .or_insert_with(|| compile(go))
            .clone()
    }

    /// Whether `s` matches anywhere (as Go's `MatchString` and JSON
    /// Schema's `pattern`).
    pub fn is_match(&self, s: &str) -> bool {
        self.0.is_match(s)
    }
}

fn compile(go: &str) -> Result<Pattern, PatternError> {
    let rust = translate(go)?;
    Regex::new(&rust)
        .map(Pattern)
        .map_err(PatternError::Invalid)
}

/// Go's ASCII `\d`, `\w`, `\s` (and negations), as `regex` classes.
fn perl_class(c: char) -> Option<&'static str> {
    Some(match c {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        'w' => "[0-9A-Za-z_]",
        'W' => "[^0-9A-Za-z_]",
        's' => r"[\t\n\x0C\r ]",
        'S' => r"[^\t\n\x0C\r ]",
        _ => return None,
    })
}

/// A literal character, written so that `regex` reads it as itself
/// anywhere (inside or outside a class).
fn literal(c: char, out: &mut String) {
    if c.is_ascii_alphanumeric() {
        out.push(c);
    } else {
        out.push_str(&format!(r"\x{{{:X}}}", u32::from(c)));
    }
}

/// Rewrites a Go regular expression into `regex` syntax with the same
/// meaning.
fn translate(go: &str) -> Result<String, PatternError> {
    let mut r = Reader {
        chars: go.chars().collect(),
        i: 0,
    };
    let mut out = String::with_capacity(go.len());
    while let Some(c) = r.next() {
        match c {
            '\\' => r.escape(&mut out)?,
            '[' => r.class(&mut out)?,
            '{' if r.repeat_follows() => out.push('{'),
            '{' => out.push_str(r"\{"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// A cursor over the pattern's characters.
struct Reader {
    chars: Vec<char>,
    i: usize,
}

impl Reader {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn rest_starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(k, c)| self.chars.get(self.i + k) == Some(&c))
    }

    /// Whether the `{` just read starts Go's `{n}`, `{n,}` or `{n,m}`.
    fn repeat_follows(&self) -> bool {
        let rest = &self.chars[self.i..];
        let digits = |from: usize| {
            rest[from..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count()
        };
        let n = digits(0);
        if n == 0 {
            return false;
        }
        match rest.get(n) {
            Some('}') => true,
            Some(',') => {
                let m = digits(n + 1);
                rest.get(n + 1 + m) == Some(&'}')
            }
            _ => false,
        }
    }

    /// After a `\` outside a class.
    fn escape(&mut self, out: &mut String) -> Result<(), PatternError> {
        let Some(c) = self.next() else {
            return Err(PatternError::Unsupported("a trailing backslash".into()));
        };
        if let Some(class) = perl_class(c) {
            out.push_str(class);
            return Ok(());
        }
        match c {
            'b' => out.push_str(r"(?-u:\b)"),
            'B' => out.push_str(r"(?-u:\B)"),
            'A' | 'z' => {
                out.push('\\');
                out.push(c);
            }
            'Q' => {
                while self.peek().is_some() && !self.rest_starts_with(r"\E") {
                    literal(self.chars[self.i], out);
                    self.i += 1;
                }
                self.i = (self.i + 2).min(self.chars.len());
            }
            'p' | 'P' => self.unicode_class(c, out)?,
            _ => literal(self.char_escape(c)?, out),
        }
        Ok(())
    }

    /// What stands between `{` (next) and its `}`, both consumed.
    fn braced(&mut self, what: &str) -> Result<String, PatternError> {
        self.i += 1;
        let start = self.i;
        while self.peek().is_some_and(|c| c != '}') {
            self.i += 1;
        }
        if self.next().is_none() {
            return Err(PatternError::Unsupported(format!("an unclosed {what}")));
        }
        Ok(self.chars[start..self.i - 1].iter().collect())
    }

    /// `\p{Greek}`, `\pL`, `\p{^Greek}` (after `\p` or `\P`).
    fn unicode_class(&mut self, p: char, out: &mut String) -> Result<(), PatternError> {
        let name: String = if self.peek() == Some('{') {
            self.braced(r"\p{")?
        } else {
            self.next()
                .ok_or_else(|| PatternError::Unsupported(r"\p without a class".into()))?
                .to_string()
        };
        let (p, name) = match name.strip_prefix('^') {
            Some(inner) => (if p == 'p' { 'P' } else { 'p' }, inner.to_string()),
            None => (p, name),
        };
        out.push_str(&format!(r"\{p}{{{name}}}"));
        Ok(())
    }

    /// The character an escape `\c` (with `c` already read) stands for.
    fn char_escape(&mut self, c: char) -> Result<char, PatternError> {
        let simple = match c {
            'a' => Some('\x07'),
            'f' => Some('\x0C'),
            't' => Some('\t'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            'v' => Some('\x0B'),
            _ => None,
        };
        if let Some(s) = simple {
            return Ok(s);
        }
        match c {
            // Octal: \0 with up to two more digits, or two or three digits
            // from \1 (a lone \1..\7 would be a backreference).
            '0'..='7' => {
                let mut value = c.to_digit(8).unwrap_or(0);
                let mut len = 1;
                while len < 3
                    && let Some(d) = self.peek().and_then(|d| d.to_digit(8))
                {
                    value = value * 8 + d;
                    self.i += 1;
                    len += 1;
                }
                if c != '0' && len == 1 {
                    return Err(PatternError::Unsupported(format!(
                        r"a backreference (\{c})"
                    )));
                }
                char::from_u32(value)
                    .ok_or_else(|| PatternError::Unsupported(format!(r"\{c} out of range")))
            }
            'x' => self.hex_escape(),
            c if c.is_ascii_punctuation() => Ok(c),
            c => Err(PatternError::Unsupported(format!(r"the escape \{c}"))),
        }
    }

    /// `\x41` or `\x{10FFFF}` (after `\x`).
    fn hex_escape(&mut self) -> Result<char, PatternError> {
        let digits: String = if self.peek() == Some('{') {
            self.braced(r"\x{")?
        } else {
            let two: String = self.chars[self.i..].iter().take(2).collect();
            self.i = (self.i + 2).min(self.chars.len());
            two
        };
        u32::from_str_radix(&digits, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| PatternError::Unsupported(format!(r"the escape \x{digits}")))
    }

    /// A character class (after its `[`), item by item as Go reads it.
    fn class(&mut self, out: &mut String) -> Result<(), PatternError> {
        out.push('[');
        if self.peek() == Some('^') {
            self.i += 1;
            out.push('^');
        }
        let mut first = true;
        loop {
            let Some(c) = self.next() else {
                return Err(PatternError::Unsupported("an unclosed [".into()));
            };
            match c {
                ']' if !first => break,
                '[' if self.rest_starts_with(":") => self.posix_class(out)?,
                '\\' if self.peek().is_some_and(|e| perl_class(e).is_some()) => {
                    let e = self.next().unwrap_or_default();
                    out.push_str(perl_class(e).unwrap_or_default());
                }
                '\\' if matches!(self.peek(), Some('p' | 'P')) => {
                    let p = self.next().unwrap_or('p');
                    self.unicode_class(p, out)?;
                }
                c => self.class_range(c, out)?,
            }
            first = false;
        }
        out.push(']');
        Ok(())
    }

    /// `[:alpha:]` or `[:^alpha:]` (after its `[`); `regex` has Go's names.
    /// Without its closing `:]` the `[` is a literal, as in Go.
    fn posix_class(&mut self, out: &mut String) -> Result<(), PatternError> {
        let end = (self.i + 1..self.chars.len().saturating_sub(1))
            .find(|&k| self.chars[k] == ':' && self.chars[k + 1] == ']');
        match end {
            Some(end) => {
                out.push('[');
                out.extend(&self.chars[self.i..end + 2]);
                self.i = end + 2;
                Ok(())
            }
            None => self.class_range('[', out),
        }
    }

    /// A class character `c` (already read), and the range it starts if a
    /// `-` and another character follow.
    fn class_range(&mut self, c: char, out: &mut String) -> Result<(), PatternError> {
        let lo = self.class_char(c)?;
        literal(lo, out);
        if self.peek() == Some('-') && self.chars.get(self.i + 1).is_some_and(|&n| n != ']') {
            self.i += 1;
            let c = self.next().unwrap_or_default();
            let hi = self.class_char(c)?;
            if hi < lo {
                return Err(PatternError::Unsupported(format!(
                    "the backwards range {lo}-{hi}"
                )));
            }
            out.push('-');
            literal(hi, out);
        }
        Ok(())
    }

    fn class_char(&mut self, c: char) -> Result<char, PatternError> {
        if c != '\\' {
            return Ok(c);
        }
        let e = self
            .next()
            .ok_or_else(|| PatternError::Unsupported("a trailing backslash".into()))?;
        self.char_escape(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(re: &str, s: &str) -> bool {
        Pattern::parse(re).expect(re).is_match(s)
    }

    /// The patterns of cert-manager's CRDs.
    #[test]
    fn crd_patterns() {
        let dns = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
        assert!(m(dns, "gateway.networking.k8s.io"));
        assert!(!m(dns, "Gateway"));
        assert!(!m(dns, "a..b"));
        assert!(m(r"^$|^[a-z]+$", ""));
        let dur = r"^([0-9]+(\.[0-9]+)?(s|m|h))+$";
        assert!(m(dur, "1h30m"));
        assert!(m(dur, "1.5h"));
        assert!(!m(dur, "90d"));
        assert!(!m(dur, ""));
        let qty = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";
        assert!(m(qty, "100Mi"));
        assert!(m(qty, "0.5"));
        assert!(!m(qty, "lots"));
        assert!(m("b", "abc"), "unanchored patterns match anywhere");
    }

    /// Syntax the old hand-written matcher did not know is now checked.
    #[test]
    fn counted_repetition_and_perl_classes() {
        assert!(m(r"^\d{2,3}$", "123"));
        assert!(!m(r"^\d{2,3}$", "1234"));
        assert!(m(r"^(?i)abc$", "ABC"));
        assert!(m(r"^\w+@\w+$", "a_1@b"));
    }

    /// Go's `\d`, `\w`, `\s` and `\b` are ASCII; `regex`'s are Unicode.
    #[test]
    fn perl_classes_are_ascii_as_in_go() {
        assert!(!m(r"^\d+$", "١٢٣"), "Arabic-Indic digits are not \\d in Go");
        assert!(!m(r"^\w+$", "é"));
        assert!(m(r"^\W$", "é"));
        assert!(!m(r"^\s$", "\u{B}"), "Go's \\s has no vertical tab");
        assert!(m(r"^\s$", "\u{C}"));
        assert!(!m(r"^\s$", "\u{A0}"), "no-break space is not \\s in Go");
        assert!(m(r"^[\d]+$", "42"));
        assert!(!m(r"^[\d]+$", "٤٢"));
        assert!(m(r"^[^\D]$", "7"));
        // An ASCII word boundary: between `a` and `é` in Go.
        assert!(m(r"a\b", "aé"));
        assert!(!m(r"a\B", "aé"));
    }

    /// Where Go reads a character literally and `regex` would not.
    #[test]
    fn go_literals_stay_literal() {
        assert!(m(r"^\Q*.+\E$", "*.+"));
        assert!(!m(r"^\Q*.+\E$", "a.b"));
        assert!(m(r"^a{,3}$", "a{,3}"), "not a repetition in Go");
        assert!(m(r"^a{$", "a{"));
        assert!(m(r"^a{2}$", "aa"));
        assert!(m(r"^[[]$", "["));
        assert!(m(r"^[a&&b]$", "&"));
        assert!(m(r"^[a~~b]$", "~"));
        assert!(m(r"^[a-c--/]+$", "b-."), "a-c and -../, not a difference");
        assert!(m(r"^[ab-]+$", "a-"));
        assert!(m(r"^[\d-z]+$", "1-z"));
        assert!(m(r"^[]a]+$", "]a"));
        assert!(m(r"^\<\>$", "<>"));
        assert!(m(r"^\101\0$", "A\0"));
        assert!(m(r"^[\x41-\x{43}]+$", "ABC"));
        assert!(m(r"^\p{^Greek}$", "a"));
        assert!(!m(r"^\p{^Greek}$", "α"));
        assert!(m(r"^[\p{Greek}\pN]+$", "α1"));
        assert!(m(r"^[[:alpha:]]+$", "ab"));
        assert!(!m(r"^[[:^alpha:]]$", "a"));
        assert!(m(r"^[[:x]$", ":"), "no closing :] — a literal [");
    }

    /// What Go refuses is refused, never guessed.
    #[test]
    fn what_go_refuses_is_not_checked() {
        for re in [
            r"(a)\1", r"\C", r"a\", r"[a", r"\y", r"[z-a]", r"[a--b]", r"\p{L", r"\x{41",
        ] {
            assert!(
                matches!(Pattern::parse(re), Err(PatternError::Unsupported(_))),
                "{re}"
            );
        }
        assert!(matches!(
            Pattern::parse("(a"),
            Err(PatternError::Invalid(_))
        ));
    }
}
