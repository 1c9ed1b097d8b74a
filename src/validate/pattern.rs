//! A small backtracking matcher for the regular expressions found in
//! Kubernetes CRD `pattern`s: literals and escapes, `.`, character classes
//! with ranges, groups, alternation, `?`, `*`, `+`, `^` and `$`. Anything
//! else makes [`Pattern::parse`] return `None`, and the caller then does not
//! check the pattern (it says so rather than guessing).

/// One atom of a sequence.
#[derive(Debug, Clone)]
enum Atom {
    Char(char),
    Any,
    Class {
        ranges: Vec<(char, char)>,
        negated: bool,
    },
    Group(Vec<Vec<Piece>>),
    Start,
    End,
}

/// An atom with its repetition bounds (`max == None`: unbounded).
#[derive(Debug, Clone)]
struct Piece {
    atom: Atom,
    min: usize,
    max: Option<usize>,
}

/// A parsed pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    alts: Vec<Vec<Piece>>,
}

struct Parser<'a> {
    chars: &'a [char],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn alts(&mut self) -> Option<Vec<Vec<Piece>>> {
        let mut alts = vec![self.seq()?];
        while self.peek() == Some('|') {
            self.i += 1;
            alts.push(self.seq()?);
        }
        Some(alts)
    }

    fn seq(&mut self) -> Option<Vec<Piece>> {
        let mut seq = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            self.i += 1;
            let atom = match c {
                '^' => Atom::Start,
                '$' => Atom::End,
                '.' => Atom::Any,
                '(' => {
                    if self.peek() == Some('?') {
                        return None;
                    }
                    let inner = self.alts()?;
                    if self.peek() != Some(')') {
                        return None;
                    }
                    self.i += 1;
                    Atom::Group(inner)
                }
                '[' => self.class()?,
                '\\' => Atom::Char(self.escape()?),
                '*' | '+' | '?' | '{' | '}' | ']' => return None,
                c => Atom::Char(c),
            };
            let (min, max) = match self.peek() {
                Some('?') => (0, Some(1)),
                Some('*') => (0, None),
                Some('+') => (1, None),
                Some('{') => return None,
                _ => (1, Some(1)),
            };
            if max != Some(1) || min != 1 {
                self.i += 1;
                if matches!(self.peek(), Some('?' | '+')) {
                    return None;
                }
            }
            seq.push(Piece { atom, min, max });
        }
        Some(seq)
    }

    fn escape(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c.is_ascii_alphanumeric() {
            // \d, \w, \s, \b...: not supported.
            return None;
        }
        Some(c)
    }

    fn class(&mut self) -> Option<Atom> {
        let mut negated = false;
        if self.peek() == Some('^') {
            negated = true;
            self.i += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self.peek()?;
            self.i += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' { self.escape()? } else { c };
            if self.peek() == Some('-') && self.chars.get(self.i + 1).is_some_and(|&n| n != ']') {
                self.i += 1;
                let hi = self.peek()?;
                self.i += 1;
                let hi = if hi == '\\' { self.escape()? } else { hi };
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Some(Atom::Class { ranges, negated })
    }
}

impl Pattern {
    /// Parses `re`; `None` when it uses syntax this matcher does not know.
    pub fn parse(re: &str) -> Option<Pattern> {
        let chars: Vec<char> = re.chars().collect();
        let mut p = Parser {
            chars: &chars,
            i: 0,
        };
        let alts = p.alts()?;
        if p.i != chars.len() {
            return None;
        }
        Some(Pattern { alts })
    }

    /// Whether `s` matches anywhere (as Go's and JSON Schema's `pattern`).
    pub fn is_match(&self, s: &str) -> bool {
        let text: Vec<char> = s.chars().collect();
        (0..=text.len()).any(|start| match_alts(&self.alts, &text, start, &mut |_| true))
    }
}

fn match_alts(
    alts: &[Vec<Piece>],
    text: &[char],
    pos: usize,
    k: &mut dyn FnMut(usize) -> bool,
) -> bool {
    alts.iter().any(|seq| match_seq(seq, text, pos, k))
}

fn match_seq(seq: &[Piece], text: &[char], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
    let Some((first, rest)) = seq.split_first() else {
        return k(pos);
    };
    match_piece(first, 0, text, pos, &mut |p| match_seq(rest, text, p, k))
}

/// Matches `piece` having already matched it `count` times, greedily.
fn match_piece(
    piece: &Piece,
    count: usize,
    text: &[char],
    pos: usize,
    k: &mut dyn FnMut(usize) -> bool,
) -> bool {
    let more = piece.max.is_none_or(|m| count < m);
    if more {
        let matched = match_atom(&piece.atom, text, pos, &mut |p| {
            // An empty iteration cannot make progress: stop repeating.
            (p != pos || piece.max.is_some()) && match_piece(piece, count + 1, text, p, k)
        });
        if matched {
            return true;
        }
    }
    count >= piece.min && k(pos)
}

fn match_atom(atom: &Atom, text: &[char], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
    match atom {
        Atom::Start => pos == 0 && k(pos),
        Atom::End => pos == text.len() && k(pos),
        Atom::Any => pos < text.len() && k(pos + 1),
        Atom::Char(c) => text.get(pos) == Some(c) && k(pos + 1),
        Atom::Class { ranges, negated } => match text.get(pos) {
            Some(&c) => {
                let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                inside != *negated && k(pos + 1)
            }
            None => false,
        },
        Atom::Group(alts) => match_alts(alts, text, pos, k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(re: &str, s: &str) -> bool {
        Pattern::parse(re).expect(re).is_match(s)
    }

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

    #[test]
    fn unknown_syntax_is_not_guessed() {
        assert!(Pattern::parse(r"^\d+$").is_none());
        assert!(Pattern::parse("a{2}").is_none());
        assert!(Pattern::parse("(?i)a").is_none());
    }
}
